"""Month closes (月结) in the ledger: gathering a month's figures per tank, closing it (for good),
and the adjustments that correct a closed month in a later one.

A closed month's row is never updated or deleted (the schema's triggers refuse it); months
close in order, each opening with the previous one's measured closing stock.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from domain.ids import IdMaker
from domain.model import Event
from edge.books.month import TankMonth, next_month, parse_month
from edge.store import deliveries, events
from edge.store.books import BooksError, BooksStore
from edge.store.codec import dec_text, dump_json, load_json, text_dec, text_time, time_text


@dataclass(frozen=True)
class TankBook:
    """What the books need of a configured tank."""

    tank: int
    grade: str
    nozzles: tuple[int, ...]


def _month_text(first: date) -> str:
    return f"{first.year:04d}-{first.month:02d}"


def closed(conn: sqlite3.Connection, month: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT month, seq, closed_at, closed_by, report FROM month_closes "
                       "WHERE month = ?", (month,)).fetchone()
    if row is None:
        return None
    return {"month": row[0], "seq": row[1], "closed_at": text_time(row[2]),
            "closed_by": row[3], "report": load_json(row[4])}


def latest_closed(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT MAX(month) FROM month_closes").fetchone()
    return None if row is None else row[0]


def _volume_at(conn: sqlite3.Connection, tank: int, at: datetime, *, before: bool
               ) -> Decimal | None:
    if before:
        row = conn.execute("SELECT volume_l FROM tank_readings WHERE tank = ? AND read_at < ? "
                           "ORDER BY read_at DESC, id DESC LIMIT 1",
                           (tank, time_text(at))).fetchone()
    else:
        row = conn.execute("SELECT volume_l FROM tank_readings WHERE tank = ? AND read_at >= ? "
                           "ORDER BY read_at, id LIMIT 1", (tank, time_text(at))).fetchone()
    return None if row is None else text_dec(row[0])


def gather(conn: sqlite3.Connection, month: str, start: datetime, end: datetime,
           tanks: Sequence[TankBook], entered: dict[int, Decimal]) -> list[TankMonth]:
    """Each tank's month from the ledger; `entered`: measured closings a person gave."""
    previous = closed(conn, _month_text(_previous(parse_month(month))))
    previous_closing = {}
    if previous is not None:
        previous_closing = {line["tank"]: line["closing_l"]
                            for line in previous["report"]["tanks"]}
    window = (time_text(start), time_text(end))
    by_nozzle = {nozzle: tb.tank for tb in tanks for nozzle in tb.nozzles}
    found: dict[int, TankMonth] = {}
    for tb in tanks:
        opening: Decimal | None
        if previous_closing.get(tb.tank) is not None:
            opening, source = Decimal(previous_closing[tb.tank]), "previous_close"
        else:
            opening = _volume_at(conn, tb.tank, start, before=True)
            if opening is None:
                opening = _volume_at(conn, tb.tank, start, before=False)
            source = "gauge" if opening is not None else "none"
        closing: Decimal | None
        if tb.tank in entered:
            closing, closing_source = entered[tb.tank], "entered"
        else:
            closing = _volume_at(conn, tb.tank, end, before=True)
            closing_source = "gauge" if closing is not None else "none"
        found[tb.tank] = TankMonth(tank=tb.tank, grade=tb.grade, opening_l=opening or Decimal(0),
                                   opening_source=source, closing_l=closing,
                                   closing_source=closing_source)
    for tank, _grade, litres, std in deliveries.received_between(conn, start, end):
        if tank in found:
            found[tank].received_l += litres
            found[tank].received_std_l += std
            found[tank].receipts += 1
    for delivery_id, tank in conn.execute(
            "SELECT d.id, d.tank FROM tank_deliveries d WHERE d.ended_at >= ? AND d.ended_at < ? "
            "AND NOT EXISTS (SELECT 1 FROM delivery_receipts r WHERE r.delivery_id = d.id AND "
            "r.status = 'received')", window):
        if tank in found:
            found[tank].unreceived_deliveries.append(delivery_id)
    for nozzle, volume, amount in conn.execute(
            "SELECT nozzle, volume, amount FROM sales WHERE ended_at >= ? AND ended_at < ?",
            window):
        sold_from = by_nozzle.get(nozzle)
        if sold_from is not None:
            found[sold_from].sold_l += text_dec(volume)
            found[sold_from].sold_amount += text_dec(amount)
            found[sold_from].sales += 1
    for nozzle, kind, volume, to_tank in conn.execute(
            "SELECT nozzle, kind, volume, to_tank FROM nonsale_fills WHERE ended_at >= ? AND "
            "ended_at < ?", window):
        drawn_from = by_nozzle.get(nozzle)
        if drawn_from is None:
            continue
        litres = text_dec(volume)
        if kind in ("self_check", "returned"):
            found[drawn_from].returned_l += litres
        elif kind == "transfer":
            found[drawn_from].transfer_out_l += litres
            if to_tank in found:
                found[to_tank].transfer_in_l += litres
        else:  # own use, and a fill whose kind was lost: fuel out of the tank all the same
            found[drawn_from].own_use_l += litres
    for tank, volume in conn.execute("SELECT tank, volume_l FROM book_adjustments WHERE "
                                     "month = ?", (month,)):
        if tank in found:
            found[tank].adjustments_l += text_dec(volume)
    return list(found.values())


def _previous(first: date) -> date:
    return date(first.year - 1, 12, 1) if first.month == 1 else date(first.year, first.month - 1, 1)


def check_closable(conn: sqlite3.Connection, month: str, now: datetime, end: datetime) -> None:
    if closed(conn, month) is not None:
        raise BooksError("month_closed", f"{month} is closed already; corrections go into an "
                         "open month (POST /api/v1/books/adjustments)")
    if now < end:
        raise BooksError("month_not_over", f"{month} is not over yet")
    latest = latest_closed(conn)
    if latest is not None:
        expected = _month_text(next_month(parse_month(latest)))
        if month != expected:
            raise BooksError("month_order", f"months close in order: the next to close is "
                             f"{expected}")


def close(conn: sqlite3.Connection, ids: IdMaker, now: datetime, month: str, *,
          start: datetime, end: datetime, tanks: Sequence[TankBook],
          entered: dict[int, Decimal],
          make_report: Callable[[list[TankMonth]], dict[str, Any]],
          user: str) -> dict[str, Any]:
    """Gathers, reports and closes the month in one transaction: nothing recorded meanwhile
    can fall between the report and the close."""
    check_closable(conn, month, now, end)
    report = make_report(gather(conn, month, start, end, tanks, entered))
    seq = events.next_seq(conn)
    body = {**report, "closed_at": now, "closed_by": user, "seq": seq}
    stored = load_json(dump_json(body))
    conn.execute("INSERT INTO month_closes (month, seq, start_at, end_at, closed_at, closed_by, "
                 "report) VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (month, seq, time_text(start), time_text(end), time_text(now), user,
                  dump_json(stored)))
    events.insert(conn, Event(seq=seq, id=ids.new(now), type="month.closed", ts=now,
                              data=stored))
    return stored


def adjust(conn: sqlite3.Connection, ids: IdMaker, now: datetime, *, month: str, tank: int,
           grade: str, volume: Decimal, reason: str, corrects: str | None,
           user: str) -> dict[str, Any]:
    if closed(conn, month) is not None:
        raise BooksError("month_closed", f"{month} is closed: an adjustment goes into a later "
                         "month")
    adj_id = ids.new(now)
    seq = events.next_seq(conn)
    conn.execute("INSERT INTO book_adjustments (id, seq, month, corrects_month, tank, grade, "
                 "volume_l, reason, user_name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (adj_id, seq, month, corrects, tank, grade, dec_text(volume), reason, user,
                  time_text(now)))
    data = {"id": adj_id, "seq": seq, "month": month, "corrects_month": corrects, "tank": tank,
            "grade": grade, "volume_l": format(volume, "f"), "reason": reason, "user": user,
            "created_at": now}
    stored = load_json(dump_json(data))
    events.insert(conn, Event(seq=seq, id=ids.new(now), type="books.adjusted", ts=now,
                              data=stored))
    return stored


def adjustments(conn: sqlite3.Connection, month: str | None) -> list[dict[str, Any]]:
    where, params = ("WHERE month = ?", (month,)) if month else ("", ())
    rows = conn.execute("SELECT id, seq, month, corrects_month, tank, grade, volume_l, reason, "
                        f"user_name, created_at FROM book_adjustments {where} ORDER BY seq",
                        params)
    return [{"id": r[0], "seq": r[1], "month": r[2], "corrects_month": r[3], "tank": r[4],
             "grade": r[5], "volume_l": r[6], "reason": r[7], "user": r[8],
             "created_at": text_time(r[9])} for r in rows]


def verify_closes(conn: sqlite3.Connection, first_live_seq: int) -> tuple[bool, str]:
    """`db verify`'s check of the closed months: closed in order with no month left out,
    each as its `month.closed` event says (while the event is live; an archived one is in its
    archive's files, checked there), and the triggers that keep them immutable in place."""
    triggers = {row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'month_closes'")}
    if triggers != {"month_closes_no_update", "month_closes_no_delete"}:
        return False, "the triggers that keep closed months immutable are missing"
    rows = conn.execute("SELECT month, seq, report FROM month_closes ORDER BY month").fetchall()
    expected: date | None = None
    for month, seq, report in rows:
        first = parse_month(month)
        if expected is not None and first != expected:
            return False, f"months closed out of order: {month} after {_month_text(expected)}"
        expected = next_month(first)
        if seq >= first_live_seq:
            event = conn.execute("SELECT type, data FROM events WHERE seq = ?",
                                 (seq,)).fetchone()
            if event is None or event[0] != "month.closed" or \
                    load_json(event[1]) != load_json(report):
                return False, f"month {month} differs from its month.closed event {seq}"
    if not rows:
        return True, "no month closed yet"
    return True, f"{len(rows)} months closed ({rows[0][0]}..{rows[-1][0]}), each as its event says"


class Months:
    """Month closes' reads and writes, each in one transaction of the station's store."""

    def __init__(self, books: BooksStore) -> None:
        self.books = books
        self.store = books.store

    def gather(self, month: str, start: datetime, end: datetime, tanks: Sequence[TankBook],
               entered: dict[int, Decimal]) -> list[TankMonth]:
        return self.store.read_with(gather, month, start, end, tanks, entered)

    def closed(self, month: str) -> dict[str, Any] | None:
        return self.store.read_with(closed, month)

    def closed_months(self) -> list[str]:
        return self.store.read_with(lambda conn: [
            str(r[0]) for r in conn.execute("SELECT month FROM month_closes ORDER BY month")])

    def close(self, month: str, **kwargs: Any) -> dict[str, Any]:
        return self.store.write_with(lambda conn, now: close(
            conn, self.books.ids, now, month, **kwargs))

    def adjust(self, **kwargs: Any) -> dict[str, Any]:
        return self.store.write_with(lambda conn, now: adjust(
            conn, self.books.ids, now, **kwargs))

    def adjustments(self, month: str | None = None) -> list[dict[str, Any]]:
        return self.store.read_with(adjustments, month)


__all__ = ["Months", "TankBook", "json"]
