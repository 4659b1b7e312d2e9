"""Strapping tables: a tank's calibration chart, level (mm) to volume (litres).

A buried cylindrical tank holds far more litres per millimetre half-way up than near the
bottom, so a gauge that reports only the level needs the chart its tank was calibrated with.
Between two points the volume is interpolated linearly, as a calibration chart is read by hand;
charts are given every 10 to 100 mm, which keeps that error far below the probe's.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

_Number = Decimal | int | str


@dataclass(frozen=True)
class StrappingTable:
    """Points (level_mm, volume_l): levels strictly increasing, volumes never decreasing."""

    points: tuple[tuple[Decimal, Decimal], ...]

    def __post_init__(self) -> None:
        if len(self.points) < 2:
            raise ValueError("a strapping table needs at least 2 points")
        for (level, volume), (next_level, next_volume) in zip(
            self.points, self.points[1:], strict=False
        ):
            if next_level <= level:
                raise ValueError(f"levels must increase: {next_level} mm comes after {level} mm")
            if next_volume < volume:
                raise ValueError(
                    f"volumes must not decrease: {next_volume} L at {next_level} mm "
                    f"is less than {volume} L at {level} mm"
                )
        if self.points[0][0] < 0 or self.points[0][1] < 0:
            raise ValueError("levels and volumes start at 0 or above")

    @classmethod
    def of(cls, points: Iterable[tuple[_Number, _Number]]) -> StrappingTable:
        return cls(tuple((Decimal(level), Decimal(volume)) for level, volume in points))

    @property
    def levels(self) -> tuple[Decimal, ...]:
        return tuple(level for level, _ in self.points)

    @property
    def max_level(self) -> Decimal:
        return self.points[-1][0]

    @property
    def max_volume(self) -> Decimal:
        return self.points[-1][1]

    def volume_at(self, level: Decimal) -> Decimal:
        """The volume at `level`; below the first point its volume, above the last its volume
        (a probe cannot measure past the chart, and the chart covers the whole tank)."""
        return _interpolate(self.points, level)

    def level_at(self, volume: Decimal) -> Decimal:
        """The level that holds `volume` (the inverse; on a flat stretch, its lowest level)."""
        if volume <= self.points[0][1]:
            return self.points[0][0]
        for (level, litres), (next_level, next_litres) in zip(
            self.points, self.points[1:], strict=False
        ):
            if litres < volume <= next_litres:
                return level + (next_level - level) * (volume - litres) / (next_litres - litres)
        return next(level for level, litres in self.points if litres == self.max_volume)


def _interpolate(points: tuple[tuple[Decimal, Decimal], ...], x: Decimal) -> Decimal:
    xs = [p[0] for p in points]
    if x <= xs[0]:
        return points[0][1]
    if x >= xs[-1]:
        return points[-1][1]
    right = bisect.bisect_right(xs, x)
    (x0, y0), (x1, y1) = points[right - 1], points[right]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
