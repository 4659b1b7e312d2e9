"""Bounds for the integers that come from outside: API requests and cloud commands.

SQLite stores an INTEGER as a signed 64-bit number, and Python's sqlite3 raises OverflowError
for any int beyond it: unchecked, a `since_seq` of 2**63 becomes a 500 instead of a refusal.
Every integer a request or a command carries is checked against one of these before it goes
anywhere near the store; the API puts them in its schema (``le``/``ge``), the command inbox
calls `Bound.check`.
"""

from __future__ import annotations

from dataclasses import dataclass

#: SQLite's INTEGER range (a signed 64-bit two's complement number).
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


class OutOfBounds(ValueError):
    """An integer outside its bound (or not an integer); the message names it and the range."""

    def __init__(self, what: str, value: object, bound: Bound) -> None:
        shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:37]}..."
        super().__init__(f"{what} must be an integer from {bound.low} to {bound.high}, "
                         f"not {shown}")
        self.what, self.value, self.bound = what, value, bound


@dataclass(frozen=True)
class Bound:
    """An inclusive range of integers, never wider than SQLite's."""

    low: int
    high: int

    def __post_init__(self) -> None:
        if not INT64_MIN <= self.low <= self.high <= INT64_MAX:
            raise ValueError(f"bound {self.low}..{self.high} is not within SQLite's INTEGER")

    def __contains__(self, value: object) -> bool:
        # bool is an int in Python, never a number in JSON.
        return (isinstance(value, int) and not isinstance(value, bool)
                and self.low <= value <= self.high)

    def check(self, value: object, what: str) -> int:
        """`value` when it is an integer within the bound; else OutOfBounds naming `what`."""
        if value not in self:
            raise OutOfBounds(what, value, self)
        assert isinstance(value, int)
        return value


#: Any integer that is stored or compared with stored ones (a number nobody should be refused
#: for being large, like an unknown nozzle number: it gets its own "unknown" answer).
INT64 = Bound(INT64_MIN, INT64_MAX)
#: A position in a sequence that starts at 1: a ledger or audit `seq`, an outbox ack; 0 is
#: "from the start" (`since_seq=0`).
SEQ = Bound(0, INT64_MAX)
#: A row id the store assigned (shifts).
ROW_ID = Bound(1, INT64_MAX)
