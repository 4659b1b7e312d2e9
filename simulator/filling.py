"""The filling in progress on a simulated pump: its nozzle, locked price, meter and stop limit.

No I/O and no clock: `advance(now)` brings the meter up to `now`; `record(...)` closes the
filling into the `FillRecord` a controller's sale is checked against, and books it on the
pump's totalizer. Values are raw integers in the pump's units (`decimals`).
"""

from __future__ import annotations

from simulator.metering import (
    MAX_RAW,
    Decimals,
    FlowMeter,
    StopLimit,
    amount_for,
    volume_raw,
)
from simulator.records import FillEnd, FillRecord
from simulator.totalizer import Totalizer

__all__ = ["Filling"]


class Filling:
    """One filling, from the nozzle's start to the end the pump reports."""

    def __init__(
        self,
        nozzle: int,
        price: int,
        meter: FlowMeter,
        limit: StopLimit,
        decimals: Decimals,
        now: float,
    ) -> None:
        self.nozzle = nozzle
        self.price = price
        self.meter = meter
        self.limit = limit
        self.decimals = decimals
        self.started_at = now
        self.volume = 0
        self.amount = 0

    def advance(self, now: float) -> tuple[bool, float | None]:
        """Deliver up to `now`: (whether the figures changed, when the limit was reached)."""
        before = (self.volume, self.amount)
        reached = self.meter.advance(now, self.limit.litres)
        if reached is not None:
            self.volume, self.amount = self.limit.volume, self.limit.amount
        else:
            self.volume = min(volume_raw(self.meter.litres, self.decimals), MAX_RAW)
            self.amount = amount_for(self.volume, self.price, self.decimals)
        return (self.volume, self.amount) != before, reached

    @property
    def end_at_limit(self) -> FillEnd:
        return FillEnd.PRESET if self.limit.preset else FillEnd.MAX_AMOUNT

    def record(
        self, *, seq: int, pump: int, grade: int, totalizer: Totalizer, end: FillEnd, now: float
    ) -> FillRecord:
        """Book the filling on `totalizer` and describe it, totals before and after."""
        volume_before, amount_before = totalizer.read(self.nozzle)
        totalizer.add(self.nozzle, self.volume, self.amount)
        volume_after, amount_after = totalizer.read(self.nozzle)
        return FillRecord(
            seq=seq,
            pump=pump,
            nozzle=self.nozzle,
            grade=grade,
            volume=self.volume,
            amount=self.amount,
            price=self.price,
            volume_total_before=volume_before,
            volume_total_after=volume_after,
            amount_total_before=amount_before,
            amount_total_after=amount_after,
            started_at=self.started_at,
            ended_at=now,
            end=end,
            decimals=self.decimals,
        )
