"""Delivery detection: a tanker dropping fuel shows as the tank's stock rising.

Sans-I/O: the caller feeds one `StockPoint` per gauge reading taken while nothing is dispensed
from the tank (a fill in progress drags the level and its sale is not known yet), with the time
passed in. A point carries the measured volume and a running count of the litres sold from the
tank; their sum, the "net" stock, stays level while pumps sell and only a delivery raises it, so
customers fuelling during the drop do not hide part of it.

A delivery starts when the net stock rises more than `noise` above the reference (the lowest
net stock since the last delivery: it follows falls at once, leaks and cooling, but not small
rises, so a slow drop still shows); it is measured from the last point before that rise, lasts
while the rises continue, and ends once no rise beyond `noise` came for `settle` (foam and
waves settle within minutes).
A rise that ends below `minimum` was thermal expansion or probe drift, not a tanker, and is
dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum


@dataclass(frozen=True)
class StockPoint:
    at: datetime
    volume: Decimal  # litres in the tank, as measured
    sold: Decimal  # litres sold from the tank so far, by any running count

    @property
    def net(self) -> Decimal:
        return self.volume + self.sold


@dataclass(frozen=True)
class DeliveryFound:
    start: StockPoint  # the last point before the rise
    last_rise: StockPoint  # the last point that rose beyond noise: the drop ended about here
    end: StockPoint  # the first point after the stock settled: the volume is read here

    @property
    def volume(self) -> Decimal:
        """Litres delivered: the rise of the net stock, sales during the drop added back."""
        return self.end.net - self.start.net

    @property
    def sold(self) -> Decimal:
        return self.end.sold - self.start.sold


class Phase(StrEnum):
    QUIET = "quiet"
    RISING = "rising"


class DeliveryDetector:
    def __init__(self, *, noise: Decimal, minimum: Decimal, settle: timedelta) -> None:
        if noise < 0 or minimum <= noise:
            raise ValueError("need 0 <= noise < minimum")
        self.noise = noise
        self.minimum = minimum
        self.settle = settle
        self.phase = Phase.QUIET
        self._reference: StockPoint | None = None  # the lowest net since the last delivery
        self._previous: StockPoint | None = None  # the last point seen while quiet
        self._start: StockPoint | None = None
        self._mark: StockPoint | None = None

    @property
    def rising_since(self) -> datetime | None:
        return self._start.at if self._start is not None else None

    def observe(self, point: StockPoint) -> DeliveryFound | None:
        """Feed one quiet reading; returns the delivery that this reading completes."""
        reference, previous = self._reference, self._previous
        if reference is None or previous is None:
            self._reference = self._previous = point
            return None
        if self.phase is Phase.QUIET:
            if point.net > reference.net + self.noise:
                # The drop began after the last point still within the noise: start there.
                self.phase, self._start, self._mark = Phase.RISING, previous, point
            else:
                self._previous = point
                if point.net < reference.net:
                    self._reference = point
            return None
        start, mark = self._start, self._mark
        assert start is not None and mark is not None
        if point.net < start.net:
            # Fell back below where it started: it was never a delivery.
            self._quiet(point)
            return None
        if point.net > mark.net + self.noise:
            self._mark = point
            return None
        if point.at - mark.at < self.settle:
            return None
        self._quiet(point)
        found = DeliveryFound(start=start, last_rise=mark, end=point)
        return found if found.volume >= self.minimum else None

    def _quiet(self, point: StockPoint) -> None:
        self.phase = Phase.QUIET
        self._reference = self._previous = point
        self._start = self._mark = None
