"""The protocol's timing (PROTOCOLS.md, "Gilbarco two-wire": "Timing"), with the notes' names.

An *answer window* runs from the last byte of a request on the wire to the last byte of the
answer: "allow at least 68 ms for an answer; drivers use 80-200 ms for status, 500-600 ms for a
transaction, 800-1000 ms for totals". A request that gets no answer (authorize, stop, a data
block, all-stop) is followed by a *pause* of about as long before the next byte. The defaults sit
inside the ranges the notes give; every one can be overridden per line.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BITS_PER_CHARACTER",
    "DEFAULT_BAUDRATE",
    "INTER_BYTE_CHARACTERS",
    "MIN_ANSWER_WINDOW",
    "NO_ANSWER_PAUSE",
    "OFFLINE_AFTER",
    "RUNNING_MONEY_DELAY",
    "RUNNING_MONEY_WINDOW",
    "SPECIAL_FUNCTION_WINDOW",
    "STATUS_WINDOW",
    "TOTALS_WINDOW",
    "TRANSACTION_WINDOW",
    "Timing",
    "wire_time",
]

BITS_PER_CHARACTER = 11
"""Start bit, 8 data bits, even parity, stop bit (8E1)."""

DEFAULT_BAUDRATE = 5787
"""Most sources; one Chinese controller uses 5760, some converters 9600."""

MIN_ANSWER_WINDOW = 0.068
"""The least time any answer may take (the notes: "allow at least 68 ms")."""

STATUS_WINDOW = 0.15
"""Status answers (and READY_FOR_DATA): drivers use 80-200 ms."""

TRANSACTION_WINDOW = 0.6
"""The 33- or 39-word transaction: drivers use 500-600 ms."""

TOTALS_WINDOW = 1.0
"""Totals, 30 or 42 words per hose: drivers use 800-1000 ms."""

RUNNING_MONEY_WINDOW = 0.15
"""Six or eight digit words; the notes give no figure, so the status window's."""

SPECIAL_FUNCTION_WINDOW = 0.6
"""A few hex records; the notes give no figure, so the transaction window's."""

NO_ANSWER_PAUSE = 0.1
"""Quiet time after authorize, stop, all-stop and data blocks ("about 100 ms")."""

RUNNING_MONEY_DELAY = 1.5
"""Wait this long after fuelling starts before the first running-money read."""

OFFLINE_AFTER = 3
"""Bad or missing answers in a row after which a pump is offline."""

INTER_BYTE_CHARACTERS = 10
"""While an answer keeps arriving its window is stretched to this many character times after
the latest byte: the notes know no inter-byte timeout, and a slow converter must not cut a
totals answer short."""


def wire_time(nbytes: int, baudrate: int) -> float:
    """Seconds ``nbytes`` take on the line (11 bits each)."""
    return nbytes * BITS_PER_CHARACTER / baudrate


@dataclass(frozen=True)
class Timing:
    """Answer windows and pauses of one line, in seconds."""

    status: float = STATUS_WINDOW
    transaction: float = TRANSACTION_WINDOW
    totals: float = TOTALS_WINDOW
    running_money: float = RUNNING_MONEY_WINDOW
    special_function: float = SPECIAL_FUNCTION_WINDOW
    pause: float = NO_ANSWER_PAUSE
    running_money_delay: float = RUNNING_MONEY_DELAY

    def __post_init__(self) -> None:
        for name in ("status", "transaction", "totals", "running_money", "special_function"):
            if getattr(self, name) < MIN_ANSWER_WINDOW:
                raise ValueError(f"the {name} window must be at least {MIN_ANSWER_WINDOW} s")
        if self.pause < 0 or self.running_money_delay < 0:
            raise ValueError("pauses must not be negative")
