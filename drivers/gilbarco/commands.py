"""Command bytes, status nibbles and the digit layouts of Gilbarco two-wire (PROTOCOLS.md,
"Gilbarco two-wire": "Commands", "Status answer", the 8-digit mode).

A command is one byte: the command in the high nibble, the pump in the low nibble, pump 16 sent
as 0. ``0xFC`` stops every pump of the line. A status answer is one byte too: the pump's state in
the high nibble, the pump in the low nibble.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

from .errors import GilbarcoProtocolError

__all__ = [
    "ALL_STOP",
    "LAYOUTS",
    "MAX_PUMP",
    "MIN_PUMP",
    "Command",
    "DigitsMode",
    "Layout",
    "PumpStatus",
    "check_pump",
    "command_byte",
    "decode_status",
    "status_byte",
]

MIN_PUMP = 1
MAX_PUMP = 16

ALL_STOP = 0xFC
"""Stops every pump of the line; no pump answers it."""


class Command(IntEnum):
    """High nibble of a command byte."""

    STATUS = 0x0
    AUTHORIZE = 0x1  # also resumes a stopped pump
    DATA_FOLLOWS = 0x2  # the pump answers READY_FOR_DATA when it takes a block
    STOP = 0x3
    TRANSACTION = 0x4
    TOTALS = 0x5
    RUNNING_MONEY = 0x6


class PumpStatus(IntEnum):
    """High nibble of a status answer."""

    DATA_ERROR = 0x0  # reading the totals clears it (one driver's experience)
    IDLE = 0x6
    CALLING = 0x7  # a nozzle is up, nothing authorized
    AUTHORIZED = 0x8
    FUELLING = 0x9
    END_OF_SALE_A = 0xA  # the notes do not say how A and B differ; both end a sale
    END_OF_SALE_B = 0xB
    STOPPED = 0xC  # stopped while fuelling; AUTHORIZE resumes
    READY_FOR_DATA = 0xD  # the answer to DATA_FOLLOWS

    @property
    def ends_sale(self) -> bool:
        return self in (PumpStatus.END_OF_SALE_A, PumpStatus.END_OF_SALE_B)


_STATUSES = {s.value: s for s in PumpStatus}


def check_pump(pump: int) -> None:
    if not MIN_PUMP <= pump <= MAX_PUMP:
        raise ValueError(f"a Gilbarco pump is 1..16, not {pump}")


def command_byte(command: Command, pump: int) -> int:
    """``command`` for ``pump`` (1..16; 16 goes on the wire as 0)."""
    check_pump(pump)
    return Command(command) << 4 | (pump & 0x0F)


def status_byte(status: PumpStatus, pump: int) -> int:
    """The status answer ``pump`` gives (for simulators and tests)."""
    check_pump(pump)
    return PumpStatus(status) << 4 | (pump & 0x0F)


def decode_status(byte: int, pump: int) -> PumpStatus:
    """The status in a one-byte answer from ``pump``; another pump's nibble, or a state the notes
    do not know, is a protocol error."""
    status = _STATUSES.get(byte >> 4)
    if status is None:
        raise GilbarcoProtocolError("unknown status", bytes((byte,)))
    if byte & 0x0F != pump & 0x0F:
        raise GilbarcoProtocolError("status from another pump", bytes((byte,)))
    return status


class DigitsMode(StrEnum):
    """How many digits a pump puts in its answers: the standard mode or the 8-digit mode."""

    STANDARD = "standard"
    EIGHT = "8-digit"


@dataclass(frozen=True)
class Layout:
    """Digit counts and answer sizes of one mode (PROTOCOLS.md, the answers' descriptions)."""

    price_digits: int  # unit price in the transaction, the totals and a price change
    sale_digits: int  # volume and money of the transaction
    totals_digits: int  # volume and money totals
    running_digits: int  # running money
    preset_digits: int  # the preset value the master sends
    transaction_words: int
    totals_record_words: int

    @property
    def totals_modulo(self) -> int:
        """Totals wrap here (10**8 in the standard mode)."""
        return int(10**self.totals_digits)


LAYOUTS = {
    DigitsMode.STANDARD: Layout(
        price_digits=4,
        sale_digits=6,
        totals_digits=8,
        running_digits=6,
        preset_digits=6,
        transaction_words=33,
        totals_record_words=30,
    ),
    DigitsMode.EIGHT: Layout(
        price_digits=6,
        sale_digits=8,
        totals_digits=12,
        running_digits=8,
        preset_digits=8,
        transaction_words=39,
        totals_record_words=42,
    ),
}
