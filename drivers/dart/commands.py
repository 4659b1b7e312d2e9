"""DART master-to-pump transactions CD1..CD101, rev 2.11 (PROTOCOLS.md, DART "Master to pump").

Numbers are raw integers in pump units; the decimal point is not on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Self

from ._fields import (
    MAX_NOZZLES,
    TOTAL_COUNTERS,
    Transaction,
    bcd_groups,
    check_length,
    check_prices,
    check_range,
    check_trans,
)
from .codec import RawTransaction, from_bcd, to_bcd
from .errors import DartProtocolError

__all__ = ["CD1", "CD2", "CD3", "CD4", "CD5", "CD101", "PumpCommand"]


class PumpCommand(IntEnum):
    """The CD1 command byte."""

    RETURN_STATUS = 0x00
    RETURN_PARAMETERS = 0x02
    RETURN_IDENTITY = 0x03
    RETURN_FILLING_INFO = 0x04
    RESET = 0x05
    AUTHORIZE = 0x06
    STOP = 0x08
    SWITCH_OFF = 0x0A
    SUSPEND = 0x0D  # rev 2.11
    RESUME = 0x0E  # rev 2.11
    RETURN_PRICES = 0x0F  # rev 2.11


@dataclass(frozen=True)
class CD1(Transaction):
    """Command to the pump (RESET, AUTHORIZE, STOP, return status...)."""

    TRANS: ClassVar[int] = 0x01
    command: PumpCommand

    def __post_init__(self) -> None:
        PumpCommand(self.command)

    def to_raw(self) -> RawTransaction:
        return RawTransaction(self.TRANS, bytes((self.command,)))

    @classmethod
    def from_raw(cls, raw: RawTransaction) -> Self:
        check_trans(cls, raw)
        check_length(raw, "CD1", 1)
        try:
            command = PumpCommand(raw.data[0])
        except ValueError:
            raise DartProtocolError("unknown CD1 command", raw.to_bytes()) from None
        return cls(command)


@dataclass(frozen=True)
class CD2(Transaction):
    """Allowed logical nozzles for the next filling."""

    TRANS: ClassVar[int] = 0x02
    nozzles: tuple[int, ...]

    def __post_init__(self) -> None:
        check_range("CD2 nozzle count", len(self.nozzles), 1, MAX_NOZZLES)
        for nozzle in self.nozzles:
            check_range("CD2 nozzle", nozzle, 1, MAX_NOZZLES)

    def to_raw(self) -> RawTransaction:
        return RawTransaction(self.TRANS, bytes(self.nozzles))

    @classmethod
    def from_raw(cls, raw: RawTransaction) -> Self:
        check_trans(cls, raw)
        if not 1 <= len(raw.data) <= MAX_NOZZLES or not all(
            1 <= n <= MAX_NOZZLES for n in raw.data
        ):
            raise DartProtocolError("CD2 needs 1..15 nozzles numbered 1..15", raw.to_bytes())
        return cls(tuple(raw.data))


@dataclass(frozen=True)
class CD3(Transaction):
    """Preset volume, 4 bytes BCD."""

    TRANS: ClassVar[int] = 0x03
    volume: int

    def __post_init__(self) -> None:
        check_range("CD3 volume", self.volume, 0, 99_999_999)

    def to_raw(self) -> RawTransaction:
        return RawTransaction(self.TRANS, to_bcd(self.volume, 4))

    @classmethod
    def from_raw(cls, raw: RawTransaction) -> Self:
        check_trans(cls, raw)
        check_length(raw, "CD3", 4)
        return cls(from_bcd(raw.data))


@dataclass(frozen=True)
class CD4(Transaction):
    """Preset amount, 4 bytes BCD."""

    TRANS: ClassVar[int] = 0x04
    amount: int

    def __post_init__(self) -> None:
        check_range("CD4 amount", self.amount, 0, 99_999_999)

    def to_raw(self) -> RawTransaction:
        return RawTransaction(self.TRANS, to_bcd(self.amount, 4))

    @classmethod
    def from_raw(cls, raw: RawTransaction) -> Self:
        check_trans(cls, raw)
        check_length(raw, "CD4", 4)
        return cls(from_bcd(raw.data))


@dataclass(frozen=True)
class CD5(Transaction):
    """Unit prices, 3 bytes BCD per logical nozzle, nozzle 1 first.

    The pump ignores the whole transaction unless it names every nozzle it has.
    """

    TRANS: ClassVar[int] = 0x05
    prices: tuple[int, ...]

    def __post_init__(self) -> None:
        check_prices("CD5", self.prices)

    def to_raw(self) -> RawTransaction:
        return RawTransaction(self.TRANS, b"".join(to_bcd(p, 3) for p in self.prices))

    @classmethod
    def from_raw(cls, raw: RawTransaction) -> Self:
        check_trans(cls, raw)
        return cls(bcd_groups(raw, "CD5", 3))


@dataclass(frozen=True)
class CD101(Transaction):
    """Totals request: 0x01..0x08 volume of nozzle n, 0x09 volume sum, 0x11..0x19 amounts."""

    TRANS: ClassVar[int] = 0x65
    counter: int

    def __post_init__(self) -> None:
        if self.counter not in TOTAL_COUNTERS:
            raise ValueError(f"CD101 counter must be 0x01..0x09 or 0x11..0x19, got {self.counter}")

    def to_raw(self) -> RawTransaction:
        return RawTransaction(self.TRANS, bytes((self.counter,)))

    @classmethod
    def from_raw(cls, raw: RawTransaction) -> Self:
        check_trans(cls, raw)
        check_length(raw, "CD101", 1)
        if raw.data[0] not in TOTAL_COUNTERS:
            raise DartProtocolError("unknown CD101 counter", raw.to_bytes())
        return cls(raw.data[0])
