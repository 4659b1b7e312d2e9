"""The store's errors: one small tree, so no raw `sqlite3` error ever leaves the store.

`StoreUnavailable` is the one the controller acts on: it means "nothing can be written now"
(disk full, locked, I/O error, read-only) and the controller goes fail-safe, refusing to
authorize, until `Store.check_writable()` succeeds again.
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal

__all__ = [
    "InvalidPayment",
    "Overpayment",
    "SchemaTooNew",
    "StoreError",
    "StoreUnavailable",
    "UnknownAuthorization",
    "UnknownOrder",
    "UnknownPriceSchedule",
    "UnknownSale",
    "UnknownUser",
    "translate",
]


class StoreError(Exception):
    """Something the store could not do; the message says what."""


class StoreUnavailable(StoreError):
    """The database cannot be written now. `reason` is one of "disk_full", "locked",
    "io_error", "read_only", "cannot_open"."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"store unavailable ({reason}): {message}")
        self.reason = reason


class SchemaTooNew(StoreError):
    """The database was written by a newer forecourt than this one."""

    def __init__(self, found: int, known: int) -> None:
        super().__init__(
            f"the database has schema version {found}, but this forecourt only knows versions "
            f"up to {known}: run the forecourt version that wrote it (or newer)"
        )
        self.found = found
        self.known = known


class UnknownSale(StoreError):
    def __init__(self, sale_id: str) -> None:
        super().__init__(f"no sale with id {sale_id!r}")
        self.sale_id = sale_id


class UnknownAuthorization(StoreError):
    def __init__(self, auth_id: str) -> None:
        super().__init__(f"no authorization with id {auth_id!r}")
        self.auth_id = auth_id


class UnknownOrder(StoreError):
    def __init__(self, order_id: str) -> None:
        super().__init__(f"no order with id {order_id!r}")
        self.order_id = order_id


class UnknownPriceSchedule(StoreError):
    def __init__(self, price_set_id: str) -> None:
        super().__init__(f"no price schedule with id {price_set_id!r}")
        self.price_set_id = price_set_id


class InvalidPayment(StoreError):
    """A payment that can never be right: unknown method, zero or negative amount."""


class Overpayment(InvalidPayment):
    def __init__(self, sale_id: str, amount: Decimal, due: Decimal) -> None:
        if due == 0:
            message = f"sale {sale_id} is already paid"
        else:
            message = f"payment of {amount} is more than the {due} still due on sale {sale_id}"
        super().__init__(message)
        self.sale_id = sale_id
        self.amount = amount
        self.due = due


class UnknownUser(StoreError):
    def __init__(self, name: str) -> None:
        super().__init__(f"there is no user {name!r}")
        self.name = name


# Primary result codes (https://www.sqlite.org/rescode.html); extended codes carry the
# primary one in their low byte.
_UNAVAILABLE_CODES = {
    5: "locked",  # SQLITE_BUSY: another connection held the lock past the busy timeout
    6: "locked",  # SQLITE_LOCKED
    8: "read_only",  # SQLITE_READONLY
    10: "io_error",  # SQLITE_IOERR
    13: "disk_full",  # SQLITE_FULL
    14: "cannot_open",  # SQLITE_CANTOPEN
}
# Older builds do not set sqlite_errorcode everywhere; the messages are stable.
_UNAVAILABLE_MESSAGES = (
    ("database or disk is full", "disk_full"),
    ("database is locked", "locked"),
    ("disk i/o error", "io_error"),
    ("readonly database", "read_only"),
    ("unable to open database", "cannot_open"),
)


def translate(exc: sqlite3.Error) -> StoreError:
    """The store error for an sqlite3 error."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in _UNAVAILABLE_CODES:
        return StoreUnavailable(_UNAVAILABLE_CODES[code & 0xFF], str(exc))
    text = str(exc).lower()
    for needle, reason in _UNAVAILABLE_MESSAGES:
        if needle in text:
            return StoreUnavailable(reason, str(exc))
    return StoreError(f"database error: {exc}")
