"""The station's durable ledger: sales, events and their outbox, prices, authorizations,
totalizer readings and users, in one SQLite file."""

from edge.store.errors import (
    InvalidPayment,
    Overpayment,
    SchemaTooNew,
    StoreError,
    StoreUnavailable,
    UnknownAuthorization,
    UnknownSale,
    UserLocked,
)
from edge.store.store import Store

__all__ = [
    "InvalidPayment",
    "Overpayment",
    "SchemaTooNew",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "UnknownAuthorization",
    "UnknownSale",
    "UserLocked",
]
