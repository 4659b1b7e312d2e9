"""Sales, their payments, and the totalizer readings they are reconciled against.

A sale is identified by the fill it records, and a fill by the pump's volume totalizer after
it: (pump, nozzle, totals_after.volume_total). Recording the same fill again (a retry, or the
recovery of a sale read back from the pump after a restart) finds the sale already there and
writes nothing. Volume, amount and time never identify a sale: two identical consecutive
fills are two sales, and their totalizers differ.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

from domain.ids import IdMaker
from domain.model import (
    APP_PAYMENT,
    PAYMENT_METHODS,
    Event,
    NewSale,
    Payment,
    Sale,
    TotalsReading,
    sale_to_api,
)
from domain.states import AuthorizationState
from edge.store import authorizations, events
from edge.store.codec import (
    dec_key,
    dec_text,
    opt_dec_text,
    opt_text_dec,
    opt_text_time,
    opt_time_text,
    text_dec,
    text_time,
    time_text,
    to_utc,
)
from edge.store.console import assign_sale_number, sale_numbers
from edge.store.errors import InvalidPayment, Overpayment, UnknownAuthorization, UnknownSale

log = logging.getLogger(__name__)

# Named as the Sale fields they hold.
_SALE_FIELDS = (
    "id", "seq", "pump", "nozzle", "logical", "grade", "price", "volume", "amount",
    "price_set_id", "started_at", "ended_at", "authorization_id", "order_id", "recovered",
    "totals_volume_before", "totals_volume_after", "totals_amount_before", "totals_amount_after",
    "pump_key", "flags",
)  # fmt: skip
_SALE_COLUMNS = ", ".join(_SALE_FIELDS)
_PAYMENT_COLUMNS = "id, sale_id, method, amount, user_name, created_at"


# --- totalizer readings


def record_totals(conn: sqlite3.Connection, reading: TotalsReading) -> None:
    conn.execute(
        "INSERT INTO totals (pump, nozzle, volume_total, amount_total, read_at, source) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (
            reading.pump,
            reading.nozzle,
            dec_text(reading.volume_total),
            dec_text(reading.amount_total),
            time_text(reading.read_at),
            reading.source,
        ),
    )


_NEXT_PUMP = "SELECT MIN(pump) FROM totals WHERE pump > ?"
_NEXT_NOZZLE = "SELECT MIN(nozzle) FROM totals WHERE pump = ? AND nozzle > ?"


def latest_totals(conn: sqlite3.Connection) -> list[TotalsReading]:
    """The latest reading of every (pump, nozzle), in that order.

    One index seek per nozzle (totals_by_nozzle), not a GROUP BY over every reading ever taken:
    the station keeps years of readings (docs/retention.md). Pumps and nozzles count from 1.
    """
    found: list[TotalsReading] = []
    for pump, nozzle in totalled_nozzles(conn):
        reading = last_totals(conn, pump, nozzle)
        assert reading is not None
        found.append(reading)
    return found


def totalled_nozzles(conn: sqlite3.Connection) -> Iterator[tuple[int, int]]:
    """Every (pump, nozzle) with a totals reading, in order: a skip-scan of totals_by_nozzle."""
    pump = conn.execute(_NEXT_PUMP, (0,)).fetchone()[0]
    while pump is not None:
        nozzle = conn.execute(_NEXT_NOZZLE, (pump, 0)).fetchone()[0]
        while nozzle is not None:
            yield pump, nozzle
            nozzle = conn.execute(_NEXT_NOZZLE, (pump, nozzle)).fetchone()[0]
        pump = conn.execute(_NEXT_PUMP, (pump,)).fetchone()[0]


def last_totals(conn: sqlite3.Connection, pump: int, nozzle: int) -> TotalsReading | None:
    # By insertion order, not read_at: the latest reading taken is the latest truth, even if
    # the clock stepped back in between.
    row = conn.execute(
        "SELECT volume_total, amount_total, read_at, source FROM totals "
        "WHERE pump = ? AND nozzle = ? ORDER BY id DESC LIMIT 1",
        (pump, nozzle),
    ).fetchone()
    if row is None:
        return None
    volume, amount, read_at, source = row
    return TotalsReading(
        pump, nozzle, text_dec(volume), text_dec(amount), text_time(read_at), source
    )


# --- sales


def _sale(row: tuple[Any, ...], payments: tuple[Payment, ...]) -> Sale:
    r = dict(zip(_SALE_FIELDS, row, strict=True))
    return Sale(
        id=r["id"],
        seq=r["seq"],
        pump=r["pump"],
        nozzle=r["nozzle"],
        logical=r["logical"],
        grade=r["grade"],
        price=text_dec(r["price"]),
        volume=text_dec(r["volume"]),
        amount=text_dec(r["amount"]),
        price_set_id=r["price_set_id"],
        started_at=opt_text_time(r["started_at"]),
        ended_at=text_time(r["ended_at"]),
        authorization_id=r["authorization_id"],
        order_id=r["order_id"],
        recovered=bool(r["recovered"]),
        totals_volume_before=opt_text_dec(r["totals_volume_before"]),
        totals_volume_after=text_dec(r["totals_volume_after"]),
        totals_amount_before=opt_text_dec(r["totals_amount_before"]),
        totals_amount_after=text_dec(r["totals_amount_after"]),
        payments=payments,
        pump_key=r["pump_key"],
        flags=tuple(json.loads(r["flags"])),
    )


def _payment(row: tuple[Any, ...]) -> Payment:
    pay_id, sale_id, method, amount, user, created = row
    return Payment(pay_id, sale_id, method, text_dec(amount), user, text_time(created))


def _with_payments(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> list[Sale]:
    by_sale: dict[str, list[Payment]] = {row[0]: [] for row in rows}
    if by_sale:
        marks = ", ".join("?" * len(by_sale))
        found = conn.execute(
            f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE sale_id IN ({marks}) "
            "ORDER BY created_at, id",
            tuple(by_sale),
        )
        for row in found:
            by_sale[row[1]].append(_payment(row))
    numbers = sale_numbers(conn, list(by_sale)) if by_sale else {}
    return [replace(_sale(row, tuple(by_sale[row[0]])), number=numbers.get(row[0]))
            for row in rows]


def get_sale(conn: sqlite3.Connection, sale_id: str) -> Sale | None:
    row = conn.execute(f"SELECT {_SALE_COLUMNS} FROM sales WHERE id = ?", (sale_id,)).fetchone()
    return None if row is None else _with_payments(conn, [row])[0]


def list_sales(
    conn: sqlite3.Connection, *, since_seq: int, limit: int, unpaid: bool | None
) -> list[Sale]:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    where = "seq > ?"
    if unpaid is not None:
        where += " AND paid = 0" if unpaid else " AND paid = 1"
    rows = conn.execute(
        f"SELECT {_SALE_COLUMNS} FROM sales WHERE {where} ORDER BY seq LIMIT ?", (since_seq, limit)
    ).fetchall()
    return _with_payments(conn, rows)


def _check_new_sale(sale: NewSale) -> None:
    for name in ("price", "volume", "amount"):
        value = getattr(sale, name)
        if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
            raise ValueError(f"sale {name} must be a non-negative Decimal, got {value!r}")
    for reading in (sale.totals_before, sale.totals_after):
        if reading is not None and (reading.pump, reading.nozzle) != (sale.pump, sale.nozzle):
            raise ValueError(
                f"totals of pump {reading.pump} nozzle {reading.nozzle} given for a sale "
                f"on pump {sale.pump} nozzle {sale.nozzle}"
            )
    for item in sale.discrepancies:
        if not isinstance(item, dict):
            raise ValueError("each discrepancy must be a dict")


def _sale_by_fill(conn: sqlite3.Connection, pump: int, nozzle: int, key: str) -> Sale | None:
    row = conn.execute(
        f"SELECT {_SALE_COLUMNS} FROM sales WHERE pump = ? AND nozzle = ? AND fill_key = ?",
        (pump, nozzle, key),
    ).fetchone()
    return None if row is None else _with_payments(conn, [row])[0]


def _sale_by_pump_key(conn: sqlite3.Connection, pump: int, pump_key: str) -> Sale | None:
    row = conn.execute(
        f"SELECT {_SALE_COLUMNS} FROM sales WHERE pump = ? AND pump_key = ?", (pump, pump_key)
    ).fetchone()
    return None if row is None else _with_payments(conn, [row])[0]


def last_sale_of_pump(conn: sqlite3.Connection, pump: int) -> Sale | None:
    row = conn.execute(f"SELECT {_SALE_COLUMNS} FROM sales WHERE pump = ? ORDER BY seq DESC "
                       "LIMIT 1", (pump,)).fetchone()
    return None if row is None else _with_payments(conn, [row])[0]


def sale_by_pump_key(conn: sqlite3.Connection, pump: int, pump_key: str) -> Sale | None:
    return _sale_by_pump_key(conn, pump, pump_key)


def record_sale(
    conn: sqlite3.Connection, ids: IdMaker, now: datetime, new: NewSale,
    zone: tzinfo | None = None,
) -> tuple[Sale, bool]:
    """Inside the caller's transaction: the sale, its totals reading, its authorization's
    completion and its events, or (existing sale, False) when this fill is already recorded."""
    _check_new_sale(new)
    key = dec_key(new.totals_after.volume_total)
    existing = _sale_by_fill(conn, new.pump, new.nozzle, key)
    if existing is None and new.pump_key is not None:
        existing = _sale_by_pump_key(conn, new.pump, new.pump_key)
    if existing is not None:
        if (existing.volume, existing.amount) != (new.volume, new.amount):
            log.warning(
                "sale %s recorded again with volume %s amount %s (stored: %s, %s); kept as stored",
                existing.id, new.volume, new.amount, existing.volume, existing.amount,
            )  # fmt: skip
        return existing, False

    before = new.totals_before
    sale = Sale(
        id=ids.new(now),
        seq=events.next_seq(conn),  # the seq of its sale.completed event, below
        pump=new.pump,
        nozzle=new.nozzle,
        logical=new.logical,
        grade=new.grade,
        price=new.price,
        volume=new.volume,
        amount=new.amount,
        price_set_id=new.price_set_id,
        started_at=None if new.started_at is None else to_utc(new.started_at),
        ended_at=to_utc(new.ended_at),
        authorization_id=new.authorization_id,
        order_id=new.order_id,
        recovered=new.recovered,
        totals_volume_before=None if before is None else before.volume_total,
        totals_volume_after=new.totals_after.volume_total,
        totals_amount_before=None if before is None else before.amount_total,
        totals_amount_after=new.totals_after.amount_total,
        payments=(),
        pump_key=new.pump_key,
        flags=new.flags,
    )
    conn.execute(
        f"INSERT INTO sales ({_SALE_COLUMNS}, fill_key, paid) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            sale.id, sale.seq, sale.pump, sale.nozzle, sale.logical, sale.grade,
            dec_text(sale.price), dec_text(sale.volume), dec_text(sale.amount),
            sale.price_set_id, opt_time_text(sale.started_at), time_text(sale.ended_at),
            sale.authorization_id, sale.order_id, int(sale.recovered),
            opt_dec_text(sale.totals_volume_before), dec_text(sale.totals_volume_after),
            opt_dec_text(sale.totals_amount_before), dec_text(sale.totals_amount_after),
            sale.pump_key, json.dumps(list(sale.flags)), key, int(sale.paid),
        ),
    )  # fmt: skip
    # The number people say aloud ("1204-0042"), in the sale's transaction: the event has it.
    sale = replace(sale, number=assign_sale_number(conn, sale.id, sale.ended_at, zone))
    if sale.order_id is not None and sale.amount > 0:
        # Prepaid in the app: the sale is settled as it is recorded, never in the unpaid list.
        payment = Payment(ids.new(now), sale.id, APP_PAYMENT, sale.amount, None, now)
        conn.execute(
            f"INSERT INTO payments ({_PAYMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
            (payment.id, sale.id, APP_PAYMENT, dec_text(sale.amount), None, time_text(now)),
        )
        conn.execute("UPDATE sales SET paid = 1 WHERE id = ?", (sale.id,))
        sale = replace(sale, payments=(payment,))
    record_totals(conn, new.totals_after)
    if new.authorization_id is not None:
        try:
            authorizations.set_state(conn, now, new.authorization_id,
                                     AuthorizationState.COMPLETED, None)
        except UnknownAuthorization:
            # The fuel is gone either way; losing the sale over a missing record would be worse.
            log.warning("sale %s names unknown authorization %s", sale.id, new.authorization_id)
    events.insert(
        conn, Event(seq=sale.seq, id=ids.new(now), type="sale.completed", ts=now,
                    data=sale_to_api(sale, zone))
    )  # fmt: skip
    for item in new.discrepancies:
        events.append(conn, ids, now, "reconciliation.discrepancy", {**item, "sale_id": sale.id})
    return sale, True


# --- payments


def add_payment(
    conn: sqlite3.Connection,
    ids: IdMaker,
    now: datetime,
    sale_id: str,
    *,
    method: str,
    amount: Decimal,
    user: str | None,
) -> Payment:
    if method not in PAYMENT_METHODS:
        known = ", ".join(sorted(PAYMENT_METHODS))
        raise InvalidPayment(f"unknown payment method {method!r}; expected one of {known}")
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise InvalidPayment(f"a payment amount must be a positive Decimal, got {amount!r}")
    sale = get_sale(conn, sale_id)
    if sale is None:
        raise UnknownSale(sale_id)
    if amount > sale.due:
        raise Overpayment(sale_id, amount, sale.due)
    payment = Payment(ids.new(now), sale_id, method, amount, user, now)
    conn.execute(
        f"INSERT INTO payments ({_PAYMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        (payment.id, sale_id, method, dec_text(amount), user, time_text(now)),
    )
    if amount == sale.due:
        conn.execute("UPDATE sales SET paid = 1 WHERE id = ?", (sale_id,))
    return payment
