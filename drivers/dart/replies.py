"""DART pump-to-master transactions DC1..DC103, rev 2.11 (PROTOCOLS.md, DART "Pump to master").

Numbers are raw integers in pump units; the decimal point is not on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Self

from domain.fuelling import Decimals

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

__all__ = ["DC1", "DC2", "DC3", "DC5", "DC7", "DC9", "DC101", "DC103", "AlarmCode", "PumpStatus"]


class PumpStatus(IntEnum):
    """The DC1 status byte; there is no 3."""

    NOT_PROGRAMMED = 0
    RESET = 1
    AUTHORIZED = 2
    FILLING = 4
    FILLING_COMPLETED = 5
    MAX_REACHED = 6
    SWITCHED_OFF = 7
    SUSPENDED = 8  # rev 2.11, optional


class AlarmCode(IntEnum):
    """DC5 alarm codes known to the spec; a DC5 may carry others."""

    CPU_RESET = 0x01
    RAM_ERROR = 0x03
    PROM_CHECKSUM_ERROR = 0x04
    PULSER_ERROR = 0x06
    PULSER_CURRENT_ERROR = 0x07
    EMERGENCY_STOP = 0x09
    POWER_FAILURE = 0x0A
    PRESSURE_LOST = 0x0B
    LOW_LEAK = 0x0D
    HIGH_LEAK = 0x0E
    HOSE_LEAK = 0x0F


@dataclass(frozen=True)
class DC1(Transaction):
    """Pump status."""

    TRANS: ClassVar[int] = 0x01
    status: PumpStatus

    def __post_init__(self) -> None:
        PumpStatus(self.status)

    def to_raw(self) -> RawTransaction:
        return RawTransaction(self.TRANS, bytes((self.status,)))

    @classmethod
    def from_raw(cls, raw: RawTransaction) -> Self:
        check_trans(cls, raw)
        check_length(raw, "DC1", 1)
        try:
            status = PumpStatus(raw.data[0])
        except ValueError:
            raise DartProtocolError("unknown DC1 status", raw.to_bytes()) from None
        return cls(status)


@dataclass(frozen=True)
class DC2(Transaction):
    """Volume and amount of the current or last filling, 4 + 4 bytes BCD."""

    TRANS: ClassVar[int] = 0x02
    volume: int
    amount: int

    def __post_init__(self) -> None:
        check_range("DC2 volume", self.volume, 0, 99_999_999)
        check_range("DC2 amount", self.amount, 0, 99_999_999)

    def to_raw(self) -> RawTransaction:
        return RawTransaction(self.TRANS, to_bcd(self.volume, 4) + to_bcd(self.amount, 4))

    @classmethod
    def from_raw(cls, raw: RawTransaction) -> Self:
        check_trans(cls, raw)
        check_length(raw, "DC2", 8)
        return cls(from_bcd(raw.data[:4]), from_bcd(raw.data[4:]))


@dataclass(frozen=True)
class DC3(Transaction):
    """Unit price (3 bytes BCD) and NOZIO: bits 0..3 the selected nozzle, bit 4 nozzle out."""

    TRANS: ClassVar[int] = 0x03
    price: int
    nozzle: int
    nozzle_out: bool

    def __post_init__(self) -> None:
        check_range("DC3 price", self.price, 0, 999_999)
        check_range("DC3 nozzle", self.nozzle, 0, MAX_NOZZLES)

    def to_raw(self) -> RawTransaction:
        nozio = self.nozzle | (0x10 if self.nozzle_out else 0)
        return RawTransaction(self.TRANS, to_bcd(self.price, 3) + bytes((nozio,)))

    @classmethod
    def from_raw(cls, raw: RawTransaction) -> Self:
        check_trans(cls, raw)
        check_length(raw, "DC3", 4)
        # Bits 5..7 of NOZIO are reserved: ignored rather than refused, as pumps differ there.
        nozio = raw.data[3]
        return cls(from_bcd(raw.data[:3]), nozio & 0x0F, bool(nozio & 0x10))


@dataclass(frozen=True)
class DC5(Transaction):
    """Alarm code; see ``AlarmCode`` for the ones the spec names."""

    TRANS: ClassVar[int] = 0x05
    alarm: int

    def __post_init__(self) -> None:
        check_range("DC5 alarm", self.alarm, 0, 0xFF)

    @property
    def code(self) -> AlarmCode | None:
        """The alarm as an ``AlarmCode``, or None for a code the spec does not name."""
        try:
            return AlarmCode(self.alarm)
        except ValueError:
            return None

    def to_raw(self) -> RawTransaction:
        return RawTransaction(self.TRANS, bytes((self.alarm,)))

    @classmethod
    def from_raw(cls, raw: RawTransaction) -> Self:
        check_trans(cls, raw)
        check_length(raw, "DC5", 1)
        return cls(raw.data[0])


# DC7 layout as we read rev 2.11 (byte offsets in DATA): RES 0..21, DPVOL 22, DPAMO 23,
# DPUNP 24, RES 25..29, MAMO 30..33 (4 BCD), RES 34..36, GRADE 37..51 (one byte per logical
# nozzle 1..15, 0 = none). Reserved bytes are sent as 0 and ignored on reception.
_DC7_LENGTH = 52
_DC7_DECIMALS = 22
_DC7_MAX_AMOUNT = 30
_DC7_GRADES = 37


@dataclass(frozen=True)
class DC7(Transaction):
    """Pump parameters: decimals, maximum amount and the grade of each logical nozzle.

    ``grades`` is normalised to 15 entries (nozzles 1..15), missing ones padded with 0 (none).
    """

    TRANS: ClassVar[int] = 0x07
    volume_decimals: int
    amount_decimals: int
    price_decimals: int
    max_amount: int
    grades: tuple[int, ...]

    def __post_init__(self) -> None:
        for name in ("volume_decimals", "amount_decimals", "price_decimals"):
            check_range(f"DC7 {name}", getattr(self, name), 0, 8)
        check_range("DC7 max_amount", self.max_amount, 0, 99_999_999)
        check_range("DC7 grade count", len(self.grades), 0, MAX_NOZZLES)
        for grade in self.grades:
            check_range("DC7 grade", grade, 0, 0xFF)
        padded = tuple(self.grades) + (0,) * (MAX_NOZZLES - len(self.grades))
        object.__setattr__(self, "grades", padded)

    @property
    def decimals(self) -> Decimals:
        """The pump's own decimals (DPVOL, DPAMO, DPUNP): where its raw numbers put the point."""
        return Decimals(
            volume=self.volume_decimals, amount=self.amount_decimals, price=self.price_decimals
        )

    def grade(self, nozzle: int) -> int | None:
        """The grade number of logical nozzle 1..15, None where the pump has no such nozzle."""
        check_range("DC7 nozzle", nozzle, 1, MAX_NOZZLES)
        return self.grades[nozzle - 1] or None

    def to_raw(self) -> RawTransaction:
        data = bytearray(_DC7_LENGTH)
        data[_DC7_DECIMALS : _DC7_DECIMALS + 3] = (
            self.volume_decimals,
            self.amount_decimals,
            self.price_decimals,
        )
        data[_DC7_MAX_AMOUNT : _DC7_MAX_AMOUNT + 4] = to_bcd(self.max_amount, 4)
        data[_DC7_GRADES:] = bytes(self.grades)
        return RawTransaction(self.TRANS, bytes(data))

    @classmethod
    def from_raw(cls, raw: RawTransaction) -> Self:
        check_trans(cls, raw)
        check_length(raw, "DC7", _DC7_LENGTH)
        data = raw.data
        volume, amount, price = data[_DC7_DECIMALS : _DC7_DECIMALS + 3]
        if max(volume, amount, price) > 8:
            raise DartProtocolError("DC7 decimals above 8", raw.to_bytes())
        return cls(
            volume_decimals=volume,
            amount_decimals=amount,
            price_decimals=price,
            max_amount=from_bcd(data[_DC7_MAX_AMOUNT : _DC7_MAX_AMOUNT + 4]),
            grades=tuple(data[_DC7_GRADES:]),
        )


@dataclass(frozen=True)
class DC9(Transaction):
    """Pump identity, 5 bytes BCD."""

    TRANS: ClassVar[int] = 0x09
    identity: int

    def __post_init__(self) -> None:
        check_range("DC9 identity", self.identity, 0, 9_999_999_999)

    @property
    def digits(self) -> str:
        """The identity as the pump's ten BCD digits, leading zeros kept (``"0012345678"``)."""
        return f"{self.identity:010d}"

    def to_raw(self) -> RawTransaction:
        return RawTransaction(self.TRANS, to_bcd(self.identity, 5))

    @classmethod
    def from_raw(cls, raw: RawTransaction) -> Self:
        check_trans(cls, raw)
        check_length(raw, "DC9", 5)
        return cls(from_bcd(raw.data))


# DC101 lengths: rev 2.11's counter + three totals, and the counter + one total that real pumps
# send (PROTOCOLS.md: `50 36 65 06 01 00 00 01 06 34 8E 91 03 FA`, a 6-byte answer to CD101 01).
_DC101_LONG = 16
_DC101_SHORT = 6


@dataclass(frozen=True)
class DC101(Transaction):
    """Electronic totals: the counter asked for by CD101, then its total (5 bytes BCD).

    Rev 2.11 sends three 5-byte totals (LNG 16): ``total`` is the requested counter's total;
    ``total_m1`` and ``total_m2`` follow (the notes say the second field counts the fillings,
    captured pumps repeat the total there), carried through uninterpreted. Older firmware sends
    the counter and ``total`` only (LNG 6): ``total_m1`` and ``total_m2`` are then None
    (``short``), and ``to_raw`` gives the 6-byte form back.
    """

    TRANS: ClassVar[int] = 0x65
    counter: int
    total: int
    total_m1: int | None = 0
    total_m2: int | None = 0

    def __post_init__(self) -> None:
        if self.counter not in TOTAL_COUNTERS:
            raise ValueError(f"DC101 counter must be 0x01..0x09 or 0x11..0x19, got {self.counter}")
        if (self.total_m1 is None) != (self.total_m2 is None):
            raise ValueError("DC101 carries both extra totals (LNG 16) or neither (LNG 6)")
        for name in ("total", "total_m1", "total_m2"):
            value = getattr(self, name)
            if value is not None:
                check_range(f"DC101 {name}", value, 0, 9_999_999_999)

    @property
    def short(self) -> bool:
        """True for the 6-byte form (counter and one total), as older firmware answers."""
        return self.total_m1 is None

    def to_raw(self) -> RawTransaction:
        totals = [self.total]
        if self.total_m1 is not None and self.total_m2 is not None:
            totals += [self.total_m1, self.total_m2]
        data = bytes((self.counter,)) + b"".join(to_bcd(v, 5) for v in totals)
        return RawTransaction(self.TRANS, data)

    @classmethod
    def from_raw(cls, raw: RawTransaction) -> Self:
        check_trans(cls, raw)
        data = raw.data
        if len(data) not in (_DC101_LONG, _DC101_SHORT):
            raise DartProtocolError(
                f"DC101 needs LNG {_DC101_LONG} or {_DC101_SHORT}, got {len(data)}",
                raw.to_bytes(),
            )
        if data[0] not in TOTAL_COUNTERS:
            raise DartProtocolError("unknown DC101 counter", raw.to_bytes())
        if len(data) == _DC101_SHORT:
            return cls(data[0], from_bcd(data[1:6]), None, None)
        return cls(data[0], from_bcd(data[1:6]), from_bcd(data[6:11]), from_bcd(data[11:16]))


@dataclass(frozen=True)
class DC103(Transaction):
    """Unit prices of the pump, 3 bytes BCD per logical nozzle, nozzle 1 first."""

    TRANS: ClassVar[int] = 0x67
    prices: tuple[int, ...]

    def __post_init__(self) -> None:
        check_prices("DC103", self.prices)

    def to_raw(self) -> RawTransaction:
        return RawTransaction(self.TRANS, b"".join(to_bcd(p, 3) for p in self.prices))

    @classmethod
    def from_raw(cls, raw: RawTransaction) -> Self:
        check_trans(cls, raw)
        return cls(bcd_groups(raw, "DC103", 3))
