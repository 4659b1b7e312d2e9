"""Field checks shared by the DART transaction classes (PROTOCOLS.md, DART section).

Constructors check value ranges (``ValueError``: our own bug); decoders check lengths and digits
(``DartProtocolError``: the peer's bytes were wrong).
"""

from __future__ import annotations

from typing import ClassVar

from .codec import RawTransaction, from_bcd
from .errors import DartProtocolError

MAX_NOZZLES = 15
"""Logical nozzles of one pump are numbered 1..15 (a 4-bit field in NOZIO)."""

TOTAL_COUNTERS = frozenset(range(0x01, 0x0A)) | frozenset(range(0x11, 0x1A))
"""CD101/DC101 counters: 01..08 volume of nozzle n, 09 volume sum, 11..18 amounts, 19 sum."""


def check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} must be {low}..{high}, got {value}")


def check_length(raw: RawTransaction, name: str, length: int) -> None:
    if len(raw.data) != length:
        raise DartProtocolError(f"{name} needs LNG {length}, got {len(raw.data)}", raw.to_bytes())


def check_trans(cls: type[Transaction], raw: RawTransaction) -> None:
    if raw.trans != cls.TRANS:
        raise DartProtocolError(f"{cls.__name__} is TRANS 0x{cls.TRANS:02X}", raw.to_bytes())


def bcd_groups(raw: RawTransaction, name: str, size: int) -> tuple[int, ...]:
    data = raw.data
    if not data or len(data) % size or len(data) // size > MAX_NOZZLES:
        raise DartProtocolError(f"{name} needs 1..15 groups of {size} bytes", raw.to_bytes())
    return tuple(from_bcd(data[i : i + size]) for i in range(0, len(data), size))


def check_prices(name: str, prices: tuple[int, ...]) -> None:
    check_range(f"{name} nozzle count", len(prices), 1, MAX_NOZZLES)
    for price in prices:
        check_range(f"{name} price", price, 0, 999_999)


class Transaction:
    """Base of the typed transactions: ``TRANS`` is the transaction code."""

    TRANS: ClassVar[int]
