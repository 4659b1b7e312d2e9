"""Typed DART transactions, rev 2.11 (PROTOCOLS.md, "Master to pump" and "Pump to master").

Master to pump are the commands ``CDn``, pump to master the replies ``DCn``. Every number here is
the raw integer on the wire in pump units: the decimal point is not on the wire, it is the
pump's own decimals (DPVOL, DPAMO, DPUNP in DC7, ``DC7.decimals``) that say whether ``750`` is
7.50 or 0.750. Converting to ``Decimal`` is the caller's job, with the decimals the pump reported
(or, for a pump that does not answer CD1 02, the ones configured).

What real pumps send beside rev 2.11 is accepted too (../shared/captures/dart-frames.txt, all of
which decode: ``tests/dart/test_captures.py``): DC101 with LNG 6 (counter and one total,
``DC101.short``) as well as LNG 16, and DC1 status 8 and CD1 0D/0E/0F from rev 2.11's optional
part.

Each class has ``to_raw()`` and ``from_raw()``; lengths and BCD digits are checked on decoding
(``DartProtocolError``), value ranges in the constructors (``ValueError``).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Self

from ._fields import MAX_NOZZLES
from .codec import RawTransaction
from .commands import CD1, CD2, CD3, CD4, CD5, CD101, PumpCommand
from .replies import DC1, DC2, DC3, DC5, DC7, DC9, DC101, DC103, AlarmCode, PumpStatus

__all__ = [
    "CD1",
    "CD2",
    "CD3",
    "CD4",
    "CD5",
    "CD101",
    "DC1",
    "DC2",
    "DC3",
    "DC5",
    "DC7",
    "DC9",
    "DC101",
    "DC103",
    "MAX_NOZZLES",
    "AlarmCode",
    "Command",
    "PumpCommand",
    "PumpStatus",
    "Reply",
    "UnknownTransaction",
    "decode_command",
    "decode_commands",
    "decode_replies",
    "decode_reply",
]


@dataclass(frozen=True)
class UnknownTransaction:
    """A transaction this driver does not interpret, kept as it came."""

    trans: int
    data: bytes

    def to_raw(self) -> RawTransaction:
        return RawTransaction(self.trans, self.data)

    @classmethod
    def from_raw(cls, raw: RawTransaction) -> Self:
        return cls(raw.trans, raw.data)


Command = CD1 | CD2 | CD3 | CD4 | CD5 | CD101
Reply = DC1 | DC2 | DC3 | DC5 | DC7 | DC9 | DC101 | DC103

_COMMANDS: dict[int, type[Command]] = {c.TRANS: c for c in (CD1, CD2, CD3, CD4, CD5, CD101)}
_REPLIES: dict[int, type[Reply]] = {
    c.TRANS: c for c in (DC1, DC2, DC3, DC5, DC7, DC9, DC101, DC103)
}


def decode_command(raw: RawTransaction) -> Command | UnknownTransaction:
    """One master-to-pump transaction; an unknown TRANS is kept as ``UnknownTransaction``."""
    cls = _COMMANDS.get(raw.trans)
    return UnknownTransaction.from_raw(raw) if cls is None else cls.from_raw(raw)


def decode_reply(raw: RawTransaction) -> Reply | UnknownTransaction:
    """One pump-to-master transaction; an unknown TRANS is kept as ``UnknownTransaction``."""
    cls = _REPLIES.get(raw.trans)
    return UnknownTransaction.from_raw(raw) if cls is None else cls.from_raw(raw)


def decode_commands(raws: Iterable[RawTransaction]) -> tuple[Command | UnknownTransaction, ...]:
    return tuple(decode_command(raw) for raw in raws)


def decode_replies(raws: Iterable[RawTransaction]) -> tuple[Reply | UnknownTransaction, ...]:
    return tuple(decode_reply(raw) for raw in raws)
