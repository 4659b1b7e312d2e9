"""Every sale checked against the pump's own arithmetic and totalizers.

A failed check does not stop the sale from being recorded (the pump's figures are the truth);
it becomes a ``reconciliation.discrepancy`` event in the same transaction, so it is never hidden.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from domain.model import Preset, TotalsReading
from domain.units import step
from edge.config import PumpDecimals


def check_sale(*, pump: int, nozzle: int, volume: Decimal, amount: Decimal, price: Decimal,
               before: TotalsReading | None, after: TotalsReading, preset: Preset | None,
               decimals: PumpDecimals, tolerance_steps: int = 1) -> list[dict[str, Any]]:
    """The discrepancies of one sale; an empty list when it is consistent."""
    found: list[dict[str, Any]] = []
    expected = volume * price
    # One volume step's worth, plus the amount's own rounding: a pump stopped by an amount
    # preset shows the preset exactly, so 13.33 L at 7.50 (99.975) can be 100.00.
    tolerance = price * step(decimals.volume) * tolerance_steps + step(decimals.amount) / 2
    if abs(amount - expected) > tolerance:
        found.append({"kind": "amount_mismatch", "pump": pump, "nozzle": nozzle,
                      "volume": str(volume), "price": str(price), "amount": str(amount),
                      "expected_amount": str(expected.quantize(step(decimals.amount)))})
    if preset is not None and preset.kind == "amount" and amount > preset.value:
        found.append({"kind": "preset_exceeded", "pump": pump, "nozzle": nozzle,
                      "preset": str(preset.value), "amount": str(amount)})
    if preset is not None and preset.kind == "volume" and volume > preset.value:
        found.append({"kind": "preset_exceeded", "pump": pump, "nozzle": nozzle,
                      "preset": str(preset.value), "volume": str(volume)})
    if before is not None:
        delta = after.volume_total - before.volume_total
        if delta != volume:
            found.append({"kind": "totals_mismatch", "pump": pump, "nozzle": nozzle,
                          "volume": str(volume), "totals_delta": str(delta),
                          "totals_before": str(before.volume_total),
                          "totals_after": str(after.volume_total)})
    return found
