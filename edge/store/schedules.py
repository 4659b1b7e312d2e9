"""Price schedules (cloud `price.schedule`, or a manager) and what each pump was programmed with.

A schedule is stored when it arrives and applied when it falls due: applying it marks it and
makes its prices the current price set in one transaction, so "applied" and "current" never
disagree after a crash. A schedule id is the sender's: scheduling it again finds the stored one
and writes nothing. Each pump then gets the new prices when it is not fuelling; every pump
programmed is a `price.applied` event.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.ids import IdMaker
from domain.model import Event, PriceSchedule, decimal_str
from edge.store import events, prices
from edge.store.codec import dec_text, opt_text_time, text_time, time_text
from edge.store.errors import UnknownPriceSchedule

log = logging.getLogger(__name__)

PRICE_APPLIED = "price.applied"

_COLUMNS = "price_set_id, effective_at, prices, source, created_at, applied_at"


def _check(price_set_id: str, grade_prices: dict[str, Decimal]) -> None:
    if not price_set_id:
        raise ValueError("a price set needs an id")
    if not grade_prices:
        raise ValueError("a price set needs at least one price")
    for grade, price in grade_prices.items():
        if not grade:
            raise ValueError("a grade code cannot be empty")
        if not isinstance(price, Decimal) or not price.is_finite() or price <= 0:
            raise ValueError(f"price of grade {grade} must be a positive Decimal, got {price!r}")


def price_text(price: Decimal) -> str:
    """A price as the contract writes money ("7.50"), keeping a third decimal when it has one
    ("7.625"): some pumps are set to price in tenths of a fen."""
    exponent = price.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        return format(price, "f")
    return decimal_str(price)


def _row(row: tuple[Any, ...]) -> PriceSchedule:
    price_set_id, effective_at, grade_prices, source, created_at, applied_at = row
    return PriceSchedule(
        price_set_id=price_set_id,
        effective_at=text_time(effective_at),
        prices={grade: Decimal(text) for grade, text in json.loads(grade_prices).items()},
        source=source,
        created_at=text_time(created_at),
        applied_at=opt_text_time(applied_at),
    )


def get(conn: sqlite3.Connection, price_set_id: str) -> PriceSchedule | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM price_schedules WHERE price_set_id = ?", (price_set_id,)
    ).fetchone()
    return None if row is None else _row(row)


def schedule(
    conn: sqlite3.Connection,
    now: datetime,
    price_set_id: str,
    *,
    effective_at: datetime,
    grade_prices: dict[str, Decimal],
    source: str,
) -> tuple[PriceSchedule, bool]:
    existing = get(conn, price_set_id)
    if existing is not None:
        if (existing.effective_at, existing.prices) != (effective_at, grade_prices):
            # The id names the set: a different set under an old id is a sender's mistake,
            # and the first one stays (it may already be on the pumps).
            log.warning(
                "price set %s scheduled again with other contents; kept as stored", price_set_id
            )
        return existing, False
    _check(price_set_id, grade_prices)
    if not source:
        raise ValueError("a price schedule needs a source")
    stored = json.dumps(
        {g: dec_text(p) for g, p in sorted(grade_prices.items())}, ensure_ascii=False
    )
    conn.execute(
        f"INSERT INTO price_schedules ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, NULL)",
        (price_set_id, time_text(effective_at), stored, source, time_text(now)),
    )
    found = get(conn, price_set_id)
    assert found is not None
    return found, True


def due(conn: sqlite3.Connection, now: datetime) -> list[PriceSchedule]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM price_schedules WHERE applied_at IS NULL AND effective_at <= ? "
        "AND cancelled_at IS NULL "
        "ORDER BY effective_at, price_set_id",
        (time_text(now),),
    )
    return [_row(r) for r in rows]


def upcoming(conn: sqlite3.Connection) -> PriceSchedule | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM price_schedules WHERE applied_at IS NULL "
        "AND cancelled_at IS NULL ORDER BY effective_at, price_set_id LIMIT 1"
    ).fetchone()
    return None if row is None else _row(row)


def newest(conn: sqlite3.Connection, limit: int) -> list[PriceSchedule]:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM price_schedules "
        "ORDER BY effective_at DESC, created_at DESC, price_set_id DESC LIMIT ?",
        (limit,),
    )
    return [_row(r) for r in rows]


def apply(conn: sqlite3.Connection, now: datetime, price_set_id: str) -> PriceSchedule:
    """Makes the schedule's prices current; a schedule already applied is left as it is (doing
    it again could put back prices a later set has changed)."""
    found = get(conn, price_set_id)
    if found is None:
        raise UnknownPriceSchedule(price_set_id)
    if found.applied_at is not None:
        return found
    cancelled = conn.execute("SELECT cancelled_at FROM price_schedules WHERE price_set_id = ?",
                             (price_set_id,)).fetchone()
    if cancelled is not None and cancelled[0] is not None:
        return found  # cancelled by a manager after it was found due: never applied
    prices.apply(
        conn, now, price_set_id, found.prices, source=found.source, effective_at=found.effective_at
    )
    conn.execute(
        "UPDATE price_schedules SET applied_at = ? WHERE price_set_id = ?",
        (time_text(now), price_set_id),
    )
    applied = get(conn, price_set_id)
    assert applied is not None
    return applied


def record_pump(
    conn: sqlite3.Connection,
    ids: IdMaker,
    now: datetime,
    pump: int,
    price_set_id: str,
    grade_prices: dict[str, Decimal],
) -> Event:
    if pump < 1:
        raise ValueError("pump numbers start at 1")
    _check(price_set_id, grade_prices)
    conn.execute(
        "INSERT INTO pump_price_sets (pump, price_set_id, at) VALUES (?, ?, ?) "
        "ON CONFLICT (pump) DO UPDATE SET price_set_id = excluded.price_set_id, at = excluded.at",
        (pump, price_set_id, time_text(now)),
    )
    data = {
        "pump": pump,
        "price_set_id": price_set_id,
        "prices": {grade: price_text(p) for grade, p in sorted(grade_prices.items())},
    }
    return events.append(conn, ids, now, PRICE_APPLIED, data)


def pump_price_set(conn: sqlite3.Connection, pump: int) -> str | None:
    row = conn.execute(
        "SELECT price_set_id FROM pump_price_sets WHERE pump = ?", (pump,)
    ).fetchone()
    return None if row is None else str(row[0])
