"""Grade prices: the ones in force now, and every change ever applied (price_changes).

A price set may name only some grades; the others keep their price. The current price set id
is the last one applied, so a sale can say which set its price came from.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from decimal import Decimal

from edge.store import meta
from edge.store.codec import dec_text, text_dec, time_text

CONFIG_PRICE_SET = "config"
_META_KEY = "price_set_id"


def _check(prices: dict[str, Decimal]) -> None:
    for grade, price in prices.items():
        if not grade:
            raise ValueError("a grade code cannot be empty")
        if not isinstance(price, Decimal) or not price.is_finite() or price <= 0:
            raise ValueError(f"price of grade {grade} must be a positive Decimal, got {price!r}")


def current(conn: sqlite3.Connection) -> tuple[str | None, dict[str, Decimal]]:
    prices = {
        grade: text_dec(price)
        for grade, price in conn.execute("SELECT grade, price FROM prices ORDER BY grade")
    }
    return meta.get(conn, _META_KEY), prices


def _set(
    conn: sqlite3.Connection,
    price_set_id: str,
    grade: str,
    price: Decimal,
    *,
    source: str,
    effective_at: datetime,
    now: datetime,
) -> None:
    old = conn.execute("SELECT price FROM prices WHERE grade = ?", (grade,)).fetchone()
    conn.execute(
        "INSERT INTO prices (grade, price, price_set_id, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (grade) DO UPDATE SET price = excluded.price, "
        "price_set_id = excluded.price_set_id, updated_at = excluded.updated_at",
        (grade, dec_text(price), price_set_id, time_text(now)),
    )
    conn.execute(
        "INSERT INTO price_changes (price_set_id, grade, old_price, new_price, source, "
        "effective_at, applied_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            price_set_id,
            grade,
            None if old is None else old[0],
            dec_text(price),
            source,
            time_text(effective_at),
            time_text(now),
        ),
    )


def seed(conn: sqlite3.Connection, now: datetime, prices: dict[str, Decimal]) -> None:
    """Config prices count only for grades that have no price yet: once the cloud or a
    manager changed a price, restarting with the old config must not undo it."""
    _check(prices)
    current_id, known = current(conn)
    for grade in sorted(prices.keys() - known.keys()):
        _set(
            conn,
            CONFIG_PRICE_SET,
            grade,
            prices[grade],
            source="config",
            effective_at=now,
            now=now,
        )
    if current_id is None and prices:
        meta.put(conn, _META_KEY, CONFIG_PRICE_SET)


def apply(
    conn: sqlite3.Connection,
    now: datetime,
    price_set_id: str,
    prices: dict[str, Decimal],
    *,
    source: str,
    effective_at: datetime,
) -> None:
    if not price_set_id:
        raise ValueError("a price set needs an id")
    if not prices:
        raise ValueError("a price set needs at least one price")
    _check(prices)
    for grade in sorted(prices):
        _set(
            conn,
            price_set_id,
            grade,
            prices[grade],
            source=source,
            effective_at=effective_at,
            now=now,
        )
    meta.put(conn, _META_KEY, price_set_id)
