"""How far a manager's price change goes: old -> new, the difference, and the band it may move in.

Each grade has a band (`[[grades]] price_band_percent`, 15 % by default). A change within it is
confirmed once; beyond it the console asks again and for a reason, and the API refuses it
without `confirm_band` and a `reason` (`price_outside_band`). A typing slip (99 元/升 for 92#)
then never goes live on one click. Pure functions: the API and the console agree on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from domain.errors import StationError
from edge.store.schedules import price_text

_TENTH = Decimal("0.1")


class PriceOutsideBand(StationError):
    code = "price_outside_band"


@dataclass(frozen=True)
class PriceStep:
    grade: str
    old: Decimal | None  # None: the grade has no price yet
    new: Decimal
    band_percent: Decimal

    @property
    def difference(self) -> Decimal | None:
        return None if self.old is None else self.new - self.old

    @property
    def percent(self) -> Decimal | None:
        if self.old is None or self.old == 0:
            return None
        return ((self.new - self.old) * 100 / self.old).quantize(_TENTH, ROUND_HALF_UP)

    @property
    def beyond_band(self) -> bool:
        if self.old is None or self.old == 0:
            return False
        return abs(self.new - self.old) * 100 > self.band_percent * self.old

    def to_api(self) -> dict[str, Any]:
        difference = self.difference
        percent = self.percent
        return {"grade": self.grade, "old": None if self.old is None else price_text(self.old),
                "new": price_text(self.new),
                "difference": None if difference is None else _signed(difference),
                "percent": None if percent is None else f"{percent:+}",
                "band_percent": format(self.band_percent, "f"),
                "beyond_band": self.beyond_band}


def _signed(value: Decimal) -> str:
    text = price_text(abs(value))
    return ("-" if value < 0 else "+") + text


def steps(current: Mapping[str, Decimal], wanted: Mapping[str, Decimal],
          bands: Mapping[str, Decimal]) -> list[PriceStep]:
    return [PriceStep(grade, current.get(grade), price, bands.get(grade, Decimal(15)))
            for grade, price in sorted(wanted.items())]


def check_band(found: list[PriceStep], *, confirmed: bool, reason: str | None) -> None:
    """PriceOutsideBand for a step beyond its band without a second confirmation and a reason."""
    beyond = [s for s in found if s.beyond_band]
    if beyond and not (confirmed and reason and reason.strip()):
        described = "; ".join(f"grade {s.grade} {price_text(s.old or Decimal(0))} -> "
                              f"{price_text(s.new)} ({s.percent}%, band {s.band_percent}%)"
                              for s in beyond)
        raise PriceOutsideBand(f"{described}: confirm it again (confirm_band) and give a reason")
