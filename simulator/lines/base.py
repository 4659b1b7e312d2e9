"""What every simulated line offers, whatever its protocol (``simulator.registry``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from domain.fuelling import Decimals

__all__ = ["Fill", "SimNozzle", "SimPump", "SimulatedLine", "Simulation", "grade_numbers"]


@dataclass(frozen=True)
class SimNozzle:
    logical: int  # the nozzle's index on its pump, as the station's config says
    grade: str  # the station's grade code
    price: Decimal  # the unit price the pump shows until the controller programs its own
    totals: tuple[Decimal, Decimal] = (Decimal(0), Decimal(0))  # litres and money metered


@dataclass(frozen=True)
class SimPump:
    """One station pump to simulate, in the station's words; ``profile`` is the protocol's
    own (a DART firmware such as ``legacy``, an IFSF layout ``tqc``/``dit``, a Gilbarco
    ``no-config-answer``); empty means the protocol's default."""

    number: int
    nozzles: tuple[SimNozzle, ...]
    profile: str = ""
    decimals: Decimals = field(default_factory=Decimals)


@dataclass(frozen=True)
class Fill:
    """A filling that really left a nozzle, as the simulated meter measured it."""

    pump: int
    logical: int
    volume: Decimal
    amount: Decimal


class SimulatedLine(Protocol):
    """A running simulated line, seen by the station's configuration and by customers."""

    @property
    def protocol(self) -> str: ...

    @property
    def pumps(self) -> Sequence[int]:
        """The station pump numbers it serves."""
        ...

    @property
    def control_url(self) -> str | None:
        """The simulator's own HTTP control API, when it is served."""
        ...

    def summary(self) -> str:
        """One line for people: where it is served and what runs on it."""
        ...

    def line_keys(self) -> dict[str, object]:
        """The protocol keys of the station's ``[[lines]]`` table that reach this line."""
        ...

    def pump_keys(self, pump: int) -> dict[str, object]:
        """The protocol keys of the station's ``[[pumps]]`` table for ``pump``."""
        ...

    def decimals(self, pump: int) -> Decimals:
        """What the simulated pump really counts with (a firmware may impose its own)."""
        ...

    def nozzles(self, pump: int) -> Sequence[int]:
        """The pump's logical nozzles."""
        ...

    # ---- the customer's hands ------------------------------------------------------------

    def lift(self, pump: int, logical: int) -> None:
        """Lift a nozzle; ``SimulationError`` when another nozzle of the pump is up."""
        ...

    def hang(self, pump: int, logical: int) -> None: ...

    def nozzle_out(self, pump: int) -> int | None:
        """The logical nozzle that is up, if any."""
        ...

    def dispensing(self, pump: int) -> Decimal | None:
        """Litres of the filling under way (released, fuel flowing or about to), else None:
        not released yet, or the filling ended (preset reached, stopped, hung up)."""
        ...

    def fills(self, pump: int) -> list[Fill]:
        """Every filling that ended on the pump, oldest first."""
        ...

    def meter(self, pump: int, logical: int) -> Decimal:
        """Litres on the nozzle's volume totalizer (what a tank has given to it)."""
        ...

    def clock(self) -> float:
        """The simulator's time (monotonic seconds)."""
        ...


class Simulation(Protocol):
    """One protocol's simulator, as ``forecourt simulate`` and the demo run it."""

    @property
    def name(self) -> str:
        """The config's ``protocol`` value."""
        ...

    @property
    def title(self) -> str: ...

    def profiles(self) -> Mapping[str, str]:
        """The pump profiles it knows (name -> what it is), for ``SimPump.profile``."""
        ...

    def run(self, pumps: Sequence[SimPump], *, options: str = "",
            flow_lpm: Decimal = Decimal("40"), seed: int | None = None,
            control_port: int | None = None) -> AbstractAsyncContextManager[SimulatedLine]:
        """Serve ``pumps`` on loopback in the running loop; ``options`` are the line's own
        (``+``-joined: Gilbarco ``8-digit+echo``, IFSF ``bitmask``); with ``control_port``
        (0: a free one) the HTTP control API too."""
        ...

    def main(self, argv: Sequence[str]) -> int:
        """``forecourt simulate --protocol NAME ...``: the exit status."""
        ...


def grade_numbers(codes: Sequence[str], *, low: int = 1, high: int = 255) -> dict[str, int]:
    """A protocol's number for each grade code (a DART grade, an IFSF product): a numeric code
    in ``low..high`` as it is ("92"), any other ("0" for diesel, "E10") the lowest number not
    taken, in order of appearance."""
    numbers = {c: int(c) for c in codes if c.isdigit() and low <= int(c) <= high}
    free = (n for n in range(low, high + 1) if n not in numbers.values())
    for code in codes:
        if code not in numbers:
            numbers[code] = next(free)
    return numbers
