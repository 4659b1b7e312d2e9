"""Price periods: a nozzle's litres between price changes, valued at the price of each period.

A pump is programmed with a new price only while it is idle, and each fill's closing totals
are in the ledger before the pump is free again; so the ledger's latest totals when the pump
took the new price (`price.applied`) are the pump's totals at that moment (docs/books.md,
"Price periods"). Pure: readings in, periods out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise
from typing import Any

__all__ = ["Mark", "periods"]


@dataclass(frozen=True)
class Mark:
    """A nozzle's volume total at a moment, and the price from then on (None: unknown)."""

    at: datetime
    volume_total: Decimal
    price: Decimal | None


def periods(opening: Mark, changes: Sequence[Mark], closing: Mark) -> list[dict[str, Any]]:
    """[{from, to, price, volume, amount}] for the span opening..closing."""
    marks = [opening, *sorted(changes, key=lambda m: m.at), closing]
    found = []
    for start, end in pairwise(marks):
        litres = end.volume_total - start.volume_total
        amount = (None if start.price is None
                  else (litres * start.price).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
        found.append({"from": start.at, "to": end.at,
                      "price": None if start.price is None else format(start.price, "f"),
                      "volume": format(litres, "f"),
                      "amount": None if amount is None else format(amount, "f")})
    return found
