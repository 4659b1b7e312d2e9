"""The station's pumps, nozzles and lines as configured, in protocol-neutral form.

``edge.config`` reads the file; every protocol's own keys (DART addresses and baud rates, IFSF
nodes, Gilbarco pump numbers) are read by that protocol's driver into its own ``settings``
object, which only the driver looks inside. The station core sees pump numbers, nozzles and
grades, and asks the driver for everything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from domain.config_reader import Findings, Table
from domain.fuelling import Decimals, FuellingLine

__all__ = [
    "MAX_DECIMALS",
    "Authorize",
    "Driver",
    "LineConfig",
    "NozzleConfig",
    "PumpConfig",
]

MAX_DECIMALS = 3  # pumps show volumes, amounts and prices with 0..3 decimals


class Authorize(StrEnum):
    """Who releases a pump for a sale."""

    ATTENDANT = "attendant"  # every sale is authorized from the console or by a cloud order
    AUTO = "auto"  # the pump is authorized on nozzle lift unless the nozzle is reserved


@dataclass(frozen=True)
class NozzleConfig:
    number: int  # station-wide, as painted: "1号枪"
    logical: int  # the nozzle's index on its pump, as the protocol addresses it
    grade: str  # a grade code
    where: str = field(default="", compare=False, repr=False)  # its place in the file


@dataclass(frozen=True)
class LineConfig:
    """One transport of pumps (an RS-485 line, an IFSF LAN) with one owner: its driver."""

    id: str
    protocol: str  # a key of the driver registry: "dart", "ifsf", "gilbarco"
    settings: Any  # the driver's own frozen dataclass
    where: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class PumpConfig:
    number: int  # as painted on the dispenser
    line: str
    nozzles: tuple[NozzleConfig, ...]
    authorize: Authorize = Authorize.ATTENDANT
    decimals: Decimals = field(default_factory=Decimals)
    settings: Any = None  # the driver's own frozen dataclass (address, node...)
    where: str = field(default="", compare=False, repr=False)

    def nozzle_by_logical(self, logical: int) -> NozzleConfig | None:
        for nozzle in self.nozzles:
            if nozzle.logical == logical:
                return nozzle
        return None


class Driver(Protocol):
    """One pump protocol: its configuration keys and checks, and its lines."""

    @property
    def name(self) -> str:
        """The config's ``protocol`` value."""
        ...

    @property
    def title(self) -> str:
        """What people call it, for ``check-config`` and the logs."""
        ...

    def read_line(self, table: Table) -> Any | None:
        """Read the line keys this protocol owns (not ``id`` or ``protocol``); None on a problem
        (recorded in the table's findings)."""
        ...

    def read_pump(self, table: Table) -> Any | None:
        """Read the pump keys this protocol owns (``address``, ``node``...)."""
        ...

    def check(self, line: LineConfig, pumps: Sequence[PumpConfig], prices: dict[str, Decimal],
              findings: Findings) -> None:
        """Cross-field checks of one line and its pumps: addresses, nozzle numbers the protocol
        can address, prices the pumps can show."""
        ...

    def resources(self, line: LineConfig) -> Sequence[tuple[str, str]]:
        """What the line holds exclusively, as (its key, the resource): a serial port, a UDP
        port. No two lines may share one."""
        ...

    def describe_line(self, line: LineConfig) -> str: ...

    def describe_pump(self, pump: PumpConfig) -> str: ...

    def open_line(self, line: LineConfig, pumps: Sequence[PumpConfig]) -> FuellingLine:
        """The line, not yet entered (an async context manager that owns its tasks)."""
        ...
