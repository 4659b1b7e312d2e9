"""The station's domain records, shared by the controller, the store, the API and the cloud link.

Records are frozen: a `Sale` is a fact, changed only by the store writing a new version of it.
Money and volumes are `Decimal` everywhere; they become integers only inside the wire codecs
and strings only at the edges (JSON, SQLite). Times are timezone-aware.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Literal

from domain.states import AuthorizationState

__all__ = [
    "APP_PAYMENT",
    "AUTHORIZATION_SOURCES",
    "PAYMENT_METHODS",
    "Authorization",
    "Event",
    "NewSale",
    "Order",
    "Payment",
    "Preset",
    "PriceSchedule",
    "Review",
    "Role",
    "Sale",
    "TotalsReading",
    "User",
    "decimal_str",
    "money",
    "quantity_str",
    "rfc3339",
    "sale_to_api",
]

PAYMENT_METHODS: frozenset[str] = frozenset({"cash", "wechat", "alipay", "card", "account"})
#: The payment the station records itself for an app order's sale: the driver paid in the app
#: before fuelling (any refund of paid - amount is the cloud's). Never taken at the console.
APP_PAYMENT = "app"
AUTHORIZATION_SOURCES: frozenset[str] = frozenset({"attendant", "auto", "order"})


class Role(StrEnum):
    """A local user's role; what each may do is decided by the API."""

    ATTENDANT = "attendant"
    CASHIER = "cashier"
    MANAGER = "manager"
    FINANCE = "finance"
    ADMIN = "admin"


def _as_decimal(value: Decimal | str | int) -> Decimal:
    # Floats are refused on purpose: 7.1 as a float is not 7.10 yuan.
    if isinstance(value, bool) or not isinstance(value, Decimal | str | int):
        raise TypeError(f"expected Decimal, str or int, got {type(value).__name__}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"not a decimal number: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return number


def money(value: Decimal | str | int, places: int = 2) -> Decimal:
    """`value` rounded half-up to `places` decimals: money(Decimal("7.625")) == Decimal("7.63")."""
    return _as_decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def decimal_str(value: Decimal, places: int = 2) -> str:
    """The contract's text form of money and volumes: decimal_str(Decimal("300")) == "300.00"."""
    return format(money(value, places), "f")


def quantity_str(value: Decimal, places: int = 2) -> str:
    """A volume or unit price as the pump gave it: its own decimals, at least ``places``.

    quantity_str(Decimal("2.700")) == "2.700" (a pump counting millilitres);
    quantity_str(Decimal("40")) == "40.00". Never rounds a figure the pump reported.
    """
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        return format(value, "f")
    return decimal_str(value, places)


def rfc3339(dt: datetime) -> str:
    """RFC 3339 with the datetime's own offset, e.g. "2026-11-22T09:15:00+08:00"."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime has no offset: {dt!r}")
    return dt.isoformat()


def _positive(name: str, value: Decimal) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        raise ValueError(f"{name} must be a positive Decimal, got {value!r}")


@dataclass(frozen=True)
class Preset:
    """Where the pump stops by itself: after `value` yuan ("amount") or litres ("volume")."""

    kind: Literal["amount", "volume"]
    value: Decimal

    def __post_init__(self) -> None:
        if self.kind not in ("amount", "volume"):
            raise ValueError(f"preset kind must be 'amount' or 'volume', got {self.kind!r}")
        _positive("preset value", self.value)


@dataclass(frozen=True)
class Authorization:
    """A permission to fuel at one pump, from an attendant, the auto mode or an app order."""

    id: str
    pump: int
    nozzle: int | None  # station-wide nozzle number; None: any nozzle of the pump
    preset: Preset | None  # None: fill up
    source: Literal["attendant", "auto", "order"]
    user: str | None
    order_id: str | None
    state: AuthorizationState  # moved only along AUTHORIZATION_TRANSITIONS (domain/states.py)
    reason: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class TotalsReading:
    """The pump's electronic totalizers for one nozzle: they only ever grow, and they are the
    truth a sale is reconciled against."""

    pump: int
    nozzle: int  # station-wide nozzle number
    volume_total: Decimal
    amount_total: Decimal
    read_at: datetime
    source: str  # what took the reading, e.g. "sale", "start", "shift"


@dataclass(frozen=True)
class NewSale:
    """A finished filling as the controller hands it to the store."""

    pump: int
    nozzle: int  # station-wide nozzle number
    logical: int  # nozzle index on the pump, 1..15
    grade: str
    price: Decimal
    volume: Decimal
    amount: Decimal
    price_set_id: str | None
    started_at: datetime | None
    ended_at: datetime
    authorization_id: str | None
    order_id: str | None
    recovered: bool  # read back from the pump after a restart, not seen live
    totals_before: TotalsReading | None
    totals_after: TotalsReading
    discrepancies: tuple[dict[str, Any], ...] = ()  # each becomes a reconciliation.discrepancy
    pump_key: str | None = None  # the pump's own key for the sale, where its protocol has one
    flags: tuple[str, ...] = ()  # "impossible_figures", "standalone", "reviewed"


@dataclass(frozen=True)
class Payment:
    id: str
    sale_id: str
    method: str  # one of PAYMENT_METHODS
    amount: Decimal
    user: str | None
    created_at: datetime


@dataclass(frozen=True)
class Sale:
    """A durable sale. `seq` is the station-wide seq of its `sale.completed` event."""

    id: str
    seq: int
    pump: int
    nozzle: int
    logical: int
    grade: str
    price: Decimal
    volume: Decimal
    amount: Decimal
    price_set_id: str | None
    started_at: datetime | None
    ended_at: datetime
    authorization_id: str | None
    order_id: str | None
    recovered: bool
    totals_volume_before: Decimal | None
    totals_volume_after: Decimal
    totals_amount_before: Decimal | None
    totals_amount_after: Decimal
    payments: tuple[Payment, ...]
    pump_key: str | None = None
    flags: tuple[str, ...] = ()
    number: str | None = None  # "1204-0042": the local day and its place in it (console, receipt)

    @property
    def paid_amount(self) -> Decimal:
        return sum((p.amount for p in self.payments), Decimal(0))

    @property
    def due(self) -> Decimal:
        """What is still to be paid; never negative."""
        return max(self.amount - self.paid_amount, Decimal(0))

    @property
    def paid(self) -> bool:
        return self.paid_amount >= self.amount


@dataclass(frozen=True)
class Event:
    """One entry of the station's event stream; `seq` starts at 1 and never skips or repeats.

    `epoch` is the ledger's epoch the event belongs to (docs/cloud.md, "Epochs"): the cloud
    knows an event by (station, epoch, seq)."""

    seq: int
    id: str
    type: str
    ts: datetime
    data: dict[str, Any]
    epoch: int = 1


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    created_at: datetime
    locked_until: datetime | None  # set while too many wrong PINs keep the user out


def _exact(value: Decimal | None) -> str | None:
    # Totalizers are shown as read, with the pump's own number of decimals.
    return None if value is None else format(value, "f")


def _time(value: datetime | None, zone: tzinfo | None = None) -> str | None:
    if value is None:
        return None
    return rfc3339(value.astimezone(zone) if zone is not None else value)


def sale_to_api(sale: Sale, zone: tzinfo | None = None) -> dict[str, Any]:
    """The sale as `GET /api/v1/sales` and the `sale.completed` event show it.

    Times are shown in `zone` (the station's time zone) when given, else as stored (UTC).
    """
    return {
        "id": sale.id,
        "seq": sale.seq,
        "number": sale.number,
        "pump": sale.pump,
        "nozzle": sale.nozzle,
        "grade": sale.grade,
        "volume": quantity_str(sale.volume),
        "amount": decimal_str(sale.amount),
        "price": quantity_str(sale.price),
        "started_at": _time(sale.started_at, zone),
        "ended_at": _time(sale.ended_at, zone),
        "order_id": sale.order_id,
        "paid": sale.paid,
        "payments": [
            {
                "id": p.id,
                "method": p.method,
                "amount": decimal_str(p.amount),
                "user": p.user,
                "created_at": _time(p.created_at, zone),
            }
            for p in sale.payments
        ],
        "recovered": sale.recovered,
        "authorization_id": sale.authorization_id,
        "price_set_id": sale.price_set_id,
        "flags": list(sale.flags),
        "totals": {
            "volume_before": _exact(sale.totals_volume_before),
            "volume_after": _exact(sale.totals_volume_after),
            "amount_before": _exact(sale.totals_amount_before),
            "amount_after": _exact(sale.totals_amount_after),
        },
    }


@dataclass(frozen=True)
class Order:
    """An app order: prepaid in the phone app, fuelled at the nozzle the driver chose.

    `status` is one of `domain.states.OrderStatus`; which changes are legal is the order
    lifecycle's business, the store only records them. `refund` is paid - amount once the
    sale is known (or everything paid when nothing was dispensed).
    """

    order_id: str
    nozzle: int  # station-wide nozzle number
    grade: str
    price: Decimal
    preset: Preset
    paid: Decimal
    status: str
    reason: str | None
    sale_id: str | None
    refund: Decimal | None
    authorization_id: str | None
    expires_at: datetime
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Review:
    """Fuel that left a nozzle while nothing recorded it, without two agreeing witnesses.

    ``filling`` is what the pump reported as its last filling for the nozzle, when it did
    (volume, amount, price as text); the totals delta is the other, disagreeing or lone,
    witness. A person accepts it (a sale is recorded, flagged "reviewed") or dismisses it.
    """

    id: str
    pump: int
    nozzle: int
    logical: int
    grade: str
    kind: str  # "one_witness", "witnesses_disagree"
    created_at: datetime
    totals_volume_before: Decimal
    totals_volume_after: Decimal
    totals_amount_before: Decimal | None
    totals_amount_after: Decimal | None
    filling: dict[str, str] | None
    authorization_id: str | None
    order_id: str | None
    status: str  # "open", "accepted", "dismissed"
    settled_by: str | None = None
    settled_at: datetime | None = None
    reason: str | None = None
    sale_id: str | None = None

    @property
    def volume_delta(self) -> Decimal:
        return self.totals_volume_after - self.totals_volume_before


@dataclass(frozen=True)
class PriceSchedule:
    """A price set to become current at `effective_at`; `applied_at` once it has."""

    price_set_id: str
    effective_at: datetime
    prices: dict[str, Decimal]  # grade code -> price; grades not named keep theirs
    source: str  # who scheduled it, e.g. "cloud", "manager"
    created_at: datetime
    applied_at: datetime | None
