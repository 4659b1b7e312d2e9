"""The books in the station's reports: what a shift and a day show besides their sales (the
non-sale fills, the totalizer corrections) and each nozzle's litres per price period
(docs/books.md). Reads only, in the caller's transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

from domain.model import TotalsReading
from edge.books.periods import Mark, periods
from edge.store import ledger
from edge.store.books import (
    CORRECTION_COLUMNS,
    correction_view,
    corrections_in_seqs,
    local_time,
    nonsale_between,
    nonsale_in_seqs,
    num_text,
)
from edge.store.codec import text_dec, text_time, time_text

# --- what a shift owns besides its sales -------------------------------------------------------


def shift_extras(conn: sqlite3.Connection, after: int, upto: int | None,
                 zone: tzinfo | None) -> dict[str, Any]:
    """The non-sale fills and totalizer corrections of the seqs (after, upto], and by nozzle
    the litres and yuan they moved the totalizers by (the shift report's `unsold`)."""
    fills = nonsale_in_seqs(conn, after, upto, zone)
    jumps = corrections_in_seqs(conn, after, upto, zone)
    by_nozzle: dict[int, list[Decimal]] = {}
    for fill in fills:
        moved = by_nozzle.setdefault(fill["nozzle"], [Decimal(0)] * 4)
        moved[0] += Decimal(fill["volume"])
        moved[1] += Decimal(fill["amount"])
    for jump in jumps:
        moved = by_nozzle.setdefault(jump["nozzle"], [Decimal(0)] * 4)
        moved[2] += Decimal(jump["jump"]["volume"])
        moved[3] += Decimal(jump["jump"]["amount"])
    return {"nonsale": fills, "corrections": jumps, "by_nozzle": by_nozzle}


def shift_books(conn: sqlite3.Connection, *, after: int, upto: int | None,
                opening: Mapping[int, TotalsReading], closing: Mapping[int, TotalsReading],
                zone: tzinfo | None) -> dict[str, Any]:
    """What the shift report shows besides sales: the shift's non-sale fills and totalizer
    corrections (`shift_extras`), and each nozzle's litres per price period."""
    found = shift_extras(conn, after, upto, zone)
    found["price_periods"] = price_periods(conn, opening, closing, zone)
    return found


def price_periods(conn: sqlite3.Connection, opening: Mapping[int, TotalsReading],
                  closing: Mapping[int, TotalsReading], zone: tzinfo | None
                  ) -> list[dict[str, Any]]:
    """Each nozzle's litres between its opening and closing totals, per price period."""
    by_period: list[dict[str, Any]] = []
    for nozzle, first in sorted(opening.items()):
        last = closing.get(nozzle)
        if last is None:
            continue
        rows = conn.execute(
            "SELECT price, volume_total, read_at FROM price_totals WHERE nozzle = ? AND "
            "read_at > ? AND read_at <= ? ORDER BY read_at, id",
            (nozzle, time_text(first.read_at), time_text(last.read_at))).fetchall()
        before = conn.execute(
            "SELECT price FROM price_totals WHERE nozzle = ? AND read_at <= ? "
            "ORDER BY read_at DESC, id DESC LIMIT 1",
            (nozzle, time_text(first.read_at))).fetchone()
        changes = [Mark(text_time(at), text_dec(volume), text_dec(price))
                   for price, volume, at in rows]
        start = Mark(first.read_at, first.volume_total,
                     None if before is None else text_dec(before[0]))
        for period in periods(start, changes, Mark(last.read_at, last.volume_total, None)):
            by_period.append({"nozzle": nozzle, **period, "from": local_time(period["from"], zone),
                              "to": local_time(period["to"], zone)})
    return by_period


def _totals_at(conn: sqlite3.Connection, pump: int, nozzle: int, at: datetime
               ) -> TotalsReading | None:
    row = conn.execute("SELECT volume_total, amount_total, read_at, source FROM totals WHERE "
                       "pump = ? AND nozzle = ? AND read_at < ? ORDER BY read_at DESC, id DESC "
                       "LIMIT 1", (pump, nozzle, time_text(at))).fetchone()
    if row is None:
        return None
    return TotalsReading(pump, nozzle, text_dec(row[0]), text_dec(row[1]), text_time(row[2]),
                         row[3])


def day_books(conn: sqlite3.Connection, start: datetime, end: datetime,
              zone: tzinfo | None) -> dict[str, Any]:
    """The daily report's books: the day's non-sale fills (and litres by kind), totalizer
    corrections and each nozzle's litres per price period."""
    fills = nonsale_between(conn, start, end, zone)
    by_kind: dict[str, Decimal] = {}
    for fill in fills:
        by_kind[fill["kind"]] = by_kind.get(fill["kind"], Decimal(0)) + Decimal(fill["volume"])
    rows = conn.execute(f"SELECT {CORRECTION_COLUMNS} FROM totals_corrections WHERE "
                        "created_at >= ? AND created_at < ? ORDER BY seq",
                        (time_text(start), time_text(end)))
    opening: dict[int, TotalsReading] = {}
    closing: dict[int, TotalsReading] = {}
    for pump, nozzle in ledger.totalled_nozzles(conn):
        first, last = _totals_at(conn, pump, nozzle, start), _totals_at(conn, pump, nozzle, end)
        if first is not None and last is not None:
            opening[nozzle], closing[nozzle] = first, last
    return {"nonsale": fills,
            "nonsale_by_kind": {kind: num_text(v) for kind, v in sorted(by_kind.items())},
            "corrections": [correction_view(row, zone) for row in rows],
            "price_periods": price_periods(conn, opening, closing, zone)}


