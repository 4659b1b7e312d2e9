"""Queries behind the station's reports: the sales of a span of time, with their payments.

Sums are left to the caller (``edge.reports``): amounts are TEXT decimals here, and SQLite's SUM
would add them as floats.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from domain.model import Sale
from edge.store.codec import time_text
from edge.store.ledger import _SALE_COLUMNS, _with_payments


def sales_ended_between(conn: sqlite3.Connection, start: datetime, end: datetime) -> list[Sale]:
    """Sales whose fill ended in [start, end), in seq order.

    ``ended_at`` is stored as fixed-width UTC text, so text order is time order and the range
    is a plain comparison.
    """
    if end <= start:
        raise ValueError(f"an empty span: {start.isoformat()} .. {end.isoformat()}")
    rows = conn.execute(
        f"SELECT {_SALE_COLUMNS} FROM sales WHERE ended_at >= ? AND ended_at < ? ORDER BY seq",
        (time_text(start), time_text(end)),
    ).fetchall()
    return _with_payments(conn, rows)
