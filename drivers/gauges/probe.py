"""One tank's probe as its gauge presents it: which registers hold which measurement.

A magnetostrictive probe measures the product level and the water level (a second float at the
bottom) and usually the temperature; a console may also compute the volume from its own
strapping table. Only the level is always there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from .registers import Register, RegisterError, WordOrder, words_of
from .strapping import StrappingTable


class Quantity(StrEnum):
    LEVEL = "level"  # product level, mm
    WATER = "water"  # water at the bottom, mm
    TEMPERATURE = "temperature"  # product temperature, degrees Celsius
    VOLUME = "volume"  # product volume, litres


@dataclass(frozen=True)
class ProbeValues:
    """What one probe measured in one read."""

    level_mm: Decimal
    volume_l: Decimal
    water_mm: Decimal | None = None
    temperature_c: Decimal | None = None


@dataclass(frozen=True)
class ProbeMap:
    """The registers of one tank in its gauge; `volume` or `strapping` gives the volume."""

    level: Register
    water: Register | None = None
    temperature: Register | None = None
    volume: Register | None = None
    strapping: StrappingTable | None = None

    def __post_init__(self) -> None:
        if (self.volume is None) == (self.strapping is None):
            raise ValueError("a probe needs a volume register or a strapping table (one of them)")
        taken: dict[int, Quantity] = {}
        for quantity, register in self.registers().items():
            for address in register.addresses:
                other = taken.setdefault(address, quantity)
                if other is not quantity:
                    raise ValueError(f"{quantity} and {other} both use register {address}")

    def registers(self) -> dict[Quantity, Register]:
        found = {
            Quantity.LEVEL: self.level,
            Quantity.WATER: self.water,
            Quantity.TEMPERATURE: self.temperature,
            Quantity.VOLUME: self.volume,
        }
        return {quantity: register for quantity, register in found.items() if register}

    def decode(self, image: Mapping[int, int], order: WordOrder) -> ProbeValues:
        """The measurements in an image of read registers (address -> word).

        Raises RegisterError when a register is missing or holds no measurement (a float NaN is
        how many consoles report a probe fault), or the level is negative.
        """
        level = self.level.decode(words_of(image, self.level), order)
        if level < 0:
            raise RegisterError(f"level {level} mm is negative (probe fault?)")

        def optional(register: Register | None) -> Decimal | None:
            return None if register is None else register.decode(words_of(image, register), order)

        volume = optional(self.volume)
        if volume is None:
            assert self.strapping is not None  # __post_init__: one of the two
            volume = self.strapping.volume_at(level)
        return ProbeValues(
            level_mm=level,
            volume_l=volume,
            water_mm=optional(self.water),
            temperature_c=optional(self.temperature),
        )
