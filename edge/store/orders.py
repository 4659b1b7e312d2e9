"""App orders (cloud `order.create`) and their `order.updated` events.

Every change of an order is written together with its `order.updated` event in the caller's
transaction, so the cloud hears of exactly the changes that were committed. An order id is the
app's: creating it again finds the stored order and writes nothing. Which status changes are
legal is the order lifecycle's business (domain/states.py); the store only records them.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.ids import IdMaker
from domain.model import Order, Preset, decimal_str
from domain.states import OPEN_ORDER_STATUSES, OrderStatus
from edge.store import events
from edge.store.codec import (
    dec_text,
    opt_dec_text,
    opt_text_dec,
    text_dec,
    text_time,
    time_text,
)
from edge.store.errors import UnknownOrder

EVENT_TYPE = "order.updated"

_FIELDS = (
    "order_id", "nozzle", "grade", "price", "preset_kind", "preset_value", "paid", "status",
    "reason", "sale_id", "refund", "authorization_id", "expires_at", "created_at", "updated_at",
)  # fmt: skip
_COLUMNS = ", ".join(_FIELDS)
# Sorted so that queries (and their plans) do not depend on set order.
_OPEN = tuple(sorted(str(s) for s in OPEN_ORDER_STATUSES))


def _row(row: tuple[Any, ...]) -> Order:
    r = dict(zip(_FIELDS, row, strict=True))
    return Order(
        order_id=r["order_id"],
        nozzle=r["nozzle"],
        grade=r["grade"],
        price=text_dec(r["price"]),
        preset=Preset(kind=r["preset_kind"], value=text_dec(r["preset_value"])),
        paid=text_dec(r["paid"]),
        status=r["status"],
        reason=r["reason"],
        sale_id=r["sale_id"],
        refund=opt_text_dec(r["refund"]),
        authorization_id=r["authorization_id"],
        expires_at=text_time(r["expires_at"]),
        created_at=text_time(r["created_at"]),
        updated_at=text_time(r["updated_at"]),
    )


def _status(status: str) -> str:
    try:
        return str(OrderStatus(status))
    except ValueError:
        known = ", ".join(s.value for s in OrderStatus)
        raise ValueError(f"unknown order status {status!r}; one of {known}") from None


def _positive(name: str, value: Decimal) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        raise ValueError(f"order {name} must be a positive Decimal, got {value!r}")


def event_data(order: Order) -> dict[str, Any]:
    """The `order.updated` event's data (CONTRACT section 4)."""
    return {
        "order_id": order.order_id,
        "status": order.status,
        "reason": order.reason,
        "sale_id": order.sale_id,
        "refund": None if order.refund is None else decimal_str(order.refund),
    }


def get(conn: sqlite3.Connection, order_id: str) -> Order | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM orders WHERE order_id = ?", (order_id,))
    found = row.fetchone()
    return None if found is None else _row(found)


def create(
    conn: sqlite3.Connection,
    ids: IdMaker,
    now: datetime,
    *,
    order_id: str,
    nozzle: int,
    grade: str,
    price: Decimal,
    preset: Preset,
    paid: Decimal,
    expires_at: datetime,
    status: str,
    reason: str | None,
) -> tuple[Order, bool]:
    existing = get(conn, order_id)
    if existing is not None:
        return existing, False
    if not order_id or not grade:
        raise ValueError("an order needs an id and a grade")
    if nozzle < 1:
        raise ValueError("nozzle numbers start at 1")
    if not isinstance(preset, Preset):
        raise ValueError(f"an order needs a Preset, got {preset!r}")
    _positive("price", price)
    _positive("paid", paid)
    stamp = time_text(now)
    conn.execute(
        f"INSERT INTO orders ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            order_id, nozzle, grade, dec_text(price), preset.kind, dec_text(preset.value),
            dec_text(paid), _status(status), reason, None, None, None, time_text(expires_at),
            stamp, stamp,
        ),
    )  # fmt: skip
    order = get(conn, order_id)
    assert order is not None
    events.append(conn, ids, now, EVENT_TYPE, event_data(order))
    return order, True


def update(
    conn: sqlite3.Connection,
    ids: IdMaker,
    now: datetime,
    order_id: str,
    *,
    status: str,
    reason: str | None,
    sale_id: str | None,
    refund: Decimal | None,
    authorization_id: str | None,
) -> Order:
    """Sets the status and reason; sale_id, refund and authorization_id when given (None keeps
    what is stored). A change writes one `order.updated` event; the same values again write
    nothing, so a retried update does not tell the cloud twice."""
    old = get(conn, order_id)
    if old is None:
        raise UnknownOrder(order_id)
    if refund is not None and (not isinstance(refund, Decimal) or not refund.is_finite()):
        raise ValueError(f"an order refund must be a finite Decimal, got {refund!r}")
    new = (
        _status(status),
        reason,
        old.sale_id if sale_id is None else sale_id,
        old.refund if refund is None else refund,
        old.authorization_id if authorization_id is None else authorization_id,
    )
    if new == (old.status, old.reason, old.sale_id, old.refund, old.authorization_id):
        return old
    conn.execute(
        "UPDATE orders SET status = ?, reason = ?, sale_id = ?, refund = ?, authorization_id = ?, "
        "updated_at = ? WHERE order_id = ?",
        (new[0], new[1], new[2], opt_dec_text(new[3]), new[4], time_text(now), order_id),
    )
    order = get(conn, order_id)
    assert order is not None
    events.append(conn, ids, now, EVENT_TYPE, event_data(order))
    return order


def open_orders(conn: sqlite3.Connection) -> list[Order]:
    marks = ", ".join("?" * len(_OPEN))
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM orders WHERE status IN ({marks}) ORDER BY created_at, order_id",
        _OPEN,
    )
    return [_row(r) for r in rows]


def for_authorization(conn: sqlite3.Connection, authorization_id: str) -> Order | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM orders WHERE authorization_id = ? "
        "ORDER BY created_at DESC LIMIT 1",
        (authorization_id,),
    ).fetchone()
    return None if row is None else _row(row)
