"""The station's durable ledger: sales, events and their outbox, prices and their schedules,
authorizations, app orders, totalizer readings, users and the cloud commands already seen, in
one SQLite file."""

from edge.store.errors import (
    InvalidPayment,
    Overpayment,
    SchemaTooNew,
    StoreError,
    StoreUnavailable,
    UnknownAuthorization,
    UnknownOrder,
    UnknownPriceSchedule,
    UnknownSale,
    UnknownUser,
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
    "UnknownOrder",
    "UnknownPriceSchedule",
    "UnknownSale",
    "UnknownUser",
]
