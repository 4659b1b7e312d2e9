"""Node addresses and database addresses (PROTOCOLS.md, IFSF "Nodes" and "Database addresses").

A node's logical address (LNA) is a subnet and a node number: dispensers are subnet 1,
controller devices (us) subnet 2. A *database address* (Ad, 1 to 6 bytes) names what a
message reads or writes inside a node:

==========================  ============================================  ======
what                        bytes                                         Ad_Lg
==========================  ============================================  ======
communication service       ``00``                                        1
calculator                  ``01``                                        1
all fuelling points         ``20``                                        1
fuelling point 1..4         ``21``..``24``                                1
logical nozzle 1..8         FP, ``11``..``18``                            2
product slot 1..8           ``41``..``48``                                1
product fuelling mode       ``61``, product number (4 BCD), ``11``..``18`` 6
meter                       ``81``..                                      1
transaction                 FP, ``21``, sequence number (2 BCD)           4
error                       FP, ``41``, error id                          3
==========================  ============================================  ======

Transaction sequence 0000 means "all unpaid transactions". One dispenser answers that read on
``FP 20 00 00``; the marker byte is kept as it came so that such an address round-trips.
Anything else decodes as ``UnknownAddress`` with its bytes: a message about something this
driver does not know is still a well-formed message.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import IfsfLocalError, IfsfProtocolError
from .numbers import decode_bcd, encode_bcd

__all__ = [
    "MAX_FUELLING_POINTS",
    "MAX_NOZZLES",
    "MAX_PRODUCTS",
    "Address",
    "AllFuellingPoints",
    "Calculator",
    "CommunicationService",
    "ErrorAddress",
    "FuellingPointAddress",
    "Lna",
    "Meter",
    "NozzleAddress",
    "ProductModeAddress",
    "ProductSlot",
    "TransactionAddress",
    "UnknownAddress",
    "decode_address",
]

MAX_FUELLING_POINTS = 4
MAX_NOZZLES = 8
MAX_PRODUCTS = 8
MAX_METERS = 16

_FP_BASE = 0x20  # FP n is 0x20 + n; 0x20 alone is "all"
_NOZZLE_BASE = 0x10
_PRODUCT_BASE = 0x40
_PRODUCT_MODE = 0x61
_METER_BASE = 0x80
_TRANSACTION = 0x21
_TRANSACTION_ALL = 0x20
_ERROR = 0x41
_MAX_SEQUENCE = 9999
_MAX_PRODUCT_NUMBER = 99_999_999


def _check(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise IfsfLocalError(f"{name} must be {low}..{high}, not {value}")


@dataclass(frozen=True, order=True)
class Lna:
    """A logical node address: subnet and node, shown as ``"1.3"``."""

    subnet: int
    node: int

    def __post_init__(self) -> None:
        _check("subnet", self.subnet, 0, 255)
        _check("node", self.node, 0, 255)

    def __str__(self) -> str:
        return f"{self.subnet}.{self.node}"

    def to_bytes(self) -> bytes:
        return bytes((self.subnet, self.node))


@dataclass(frozen=True)
class CommunicationService:
    def to_bytes(self) -> bytes:
        return b"\x00"


@dataclass(frozen=True)
class Calculator:
    def to_bytes(self) -> bytes:
        return b"\x01"


@dataclass(frozen=True)
class AllFuellingPoints:
    def to_bytes(self) -> bytes:
        return bytes((_FP_BASE,))


@dataclass(frozen=True)
class FuellingPointAddress:
    fp: int  # 1..4

    def __post_init__(self) -> None:
        _check("fuelling point", self.fp, 1, MAX_FUELLING_POINTS)

    def to_bytes(self) -> bytes:
        return bytes((_FP_BASE + self.fp,))


@dataclass(frozen=True)
class NozzleAddress:
    fp: int
    nozzle: int  # logical nozzle 1..8

    def __post_init__(self) -> None:
        _check("fuelling point", self.fp, 1, MAX_FUELLING_POINTS)
        _check("logical nozzle", self.nozzle, 1, MAX_NOZZLES)

    def to_bytes(self) -> bytes:
        return bytes((_FP_BASE + self.fp, _NOZZLE_BASE + self.nozzle))


@dataclass(frozen=True)
class ProductSlot:
    slot: int  # 1..8

    def __post_init__(self) -> None:
        _check("product slot", self.slot, 1, MAX_PRODUCTS)

    def to_bytes(self) -> bytes:
        return bytes((_PRODUCT_BASE + self.slot,))


@dataclass(frozen=True)
class ProductModeAddress:
    """A product's data for one fuelling mode: where its price lives."""

    product: int  # the product number, 8 digits
    mode: int = 1  # fuelling mode 1..8

    def __post_init__(self) -> None:
        _check("product number", self.product, 0, _MAX_PRODUCT_NUMBER)
        _check("fuelling mode", self.mode, 1, MAX_NOZZLES)

    def to_bytes(self) -> bytes:
        return (
            bytes((_PRODUCT_MODE,))
            + encode_bcd(self.product, 4)
            + bytes((_NOZZLE_BASE + self.mode,))
        )


@dataclass(frozen=True)
class Meter:
    meter: int  # 1..16

    def __post_init__(self) -> None:
        _check("meter", self.meter, 1, MAX_METERS)

    def to_bytes(self) -> bytes:
        return bytes((_METER_BASE + self.meter,))


@dataclass(frozen=True)
class TransactionAddress:
    """A transaction in a fuelling point's buffer; sequence 0 is "all unpaid"."""

    fp: int
    sequence: int  # 4 BCD digits, 0..9999
    marker: int = _TRANSACTION  # 0x21; 0x20 as one dispenser sends for "all"

    def __post_init__(self) -> None:
        _check("fuelling point", self.fp, 1, MAX_FUELLING_POINTS)
        _check("transaction sequence number", self.sequence, 0, _MAX_SEQUENCE)
        if self.marker not in (_TRANSACTION, _TRANSACTION_ALL):
            raise IfsfLocalError(f"transaction marker must be 0x21 or 0x20, not {self.marker:#x}")

    @property
    def all_unpaid(self) -> bool:
        return self.sequence == 0 or self.marker == _TRANSACTION_ALL

    def to_bytes(self) -> bytes:
        return bytes((_FP_BASE + self.fp, self.marker)) + encode_bcd(self.sequence, 2)


@dataclass(frozen=True)
class ErrorAddress:
    fp: int
    error: int  # the error id (ErrorCode for the price change results)

    def __post_init__(self) -> None:
        _check("fuelling point", self.fp, 1, MAX_FUELLING_POINTS)
        _check("error id", self.error, 0, 255)

    def to_bytes(self) -> bytes:
        return bytes((_FP_BASE + self.fp, _ERROR, self.error))


@dataclass(frozen=True)
class UnknownAddress:
    """A database address this driver does not interpret, kept as it came."""

    raw: bytes

    def __post_init__(self) -> None:
        if not 1 <= len(self.raw) <= 255:
            raise IfsfLocalError("a database address is 1..255 bytes")

    def to_bytes(self) -> bytes:
        return self.raw


Address = (
    CommunicationService
    | Calculator
    | AllFuellingPoints
    | FuellingPointAddress
    | NozzleAddress
    | ProductSlot
    | ProductModeAddress
    | Meter
    | TransactionAddress
    | ErrorAddress
    | UnknownAddress
)


def _fp_of(byte: int) -> int | None:
    fp = byte - _FP_BASE
    return fp if 1 <= fp <= MAX_FUELLING_POINTS else None


def decode_address(raw: bytes) -> Address:
    """The database address ``raw`` (Ad, without Ad_Lg)."""
    if not raw:
        raise IfsfProtocolError("empty database address")
    first, size = raw[0], len(raw)
    fp = _fp_of(first)
    if size == 1:
        return _decode_single(first, raw)
    if size == 2 and fp is not None and 1 <= raw[1] - _NOZZLE_BASE <= MAX_NOZZLES:
        return NozzleAddress(fp, raw[1] - _NOZZLE_BASE)
    if size == 3 and fp is not None and raw[1] == _ERROR:
        return ErrorAddress(fp, raw[2])
    if size == 4 and fp is not None and raw[1] in (_TRANSACTION, _TRANSACTION_ALL):
        return TransactionAddress(fp, decode_bcd(raw[2:4]), raw[1])
    if size == 6 and first == _PRODUCT_MODE and 1 <= raw[5] - _NOZZLE_BASE <= MAX_NOZZLES:
        return ProductModeAddress(decode_bcd(raw[1:5]), raw[5] - _NOZZLE_BASE)
    return UnknownAddress(bytes(raw))


def _decode_single(byte: int, raw: bytes) -> Address:
    if byte == 0x00:
        return CommunicationService()
    if byte == 0x01:
        return Calculator()
    if byte == _FP_BASE:
        return AllFuellingPoints()
    fp = _fp_of(byte)
    if fp is not None:
        return FuellingPointAddress(fp)
    if 1 <= byte - _PRODUCT_BASE <= MAX_PRODUCTS:
        return ProductSlot(byte - _PRODUCT_BASE)
    if 1 <= byte - _METER_BASE <= MAX_METERS:
        return Meter(byte - _METER_BASE)
    return UnknownAddress(bytes(raw))
