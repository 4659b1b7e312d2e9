"""Deliveries received (卸油验收) in the ledger: opened, then received (or cancelled).

A receipt is opened when the truck has settled: the tank's before reading, the nozzles paused
and their totals, the bill of lading. It is received with the after reading, the figures, the
outcome and the names of those who sign; that write appends its `delivery.received` event. A
received receipt is never changed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

from domain.ids import IdMaker
from domain.model import Event, rfc3339
from edge.store import events
from edge.store.books import BooksError, BooksStore
from edge.store.codec import (
    dec_text,
    dump_json,
    load_json,
    opt_text_dec,
    text_time,
    time_text,
)

_COLUMNS = (
    "id, tank, grade, status, delivery_id, opened_at, opened_by, paused_nozzles, nozzle_totals, "
    "bill, before_reading, after_reading, figures, received_l, received_std_l, outcome, driver, "
    "receiver, supervisor, note, closed_at, seq"
)
_NAMES = [c.strip() for c in _COLUMNS.split(",")]


def _at(text: str | None, zone: tzinfo | None) -> str | None:
    if text is None:
        return None
    value = text_time(text)
    return rfc3339(value.astimezone(zone) if zone is not None else value)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def view(row: tuple[Any, ...], zone: tzinfo | None) -> dict[str, Any]:
    r = dict(zip(_NAMES, row, strict=True))
    return {
        "id": r["id"], "tank": r["tank"], "grade": r["grade"], "status": r["status"],
        "delivery_id": r["delivery_id"], "opened_at": _at(r["opened_at"], zone),
        "opened_by": r["opened_by"], "paused_nozzles": _load(r["paused_nozzles"]),
        "nozzle_totals": _load(r["nozzle_totals"]), "bill": _load(r["bill"]),
        "before": _load(r["before_reading"]), "after": _load(r["after_reading"]),
        "figures": _load(r["figures"]), "received_l": r["received_l"],
        "received_std_l": r["received_std_l"], "outcome": r["outcome"], "driver": r["driver"],
        "receiver": r["receiver"], "supervisor": r["supervisor"], "note": r["note"],
        "closed_at": _at(r["closed_at"], zone), "seq": r["seq"],
    }  # fmt: skip


def get(conn: sqlite3.Connection, receipt_id: str, zone: tzinfo | None) -> dict[str, Any] | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM delivery_receipts WHERE id = ?",
                       (receipt_id,)).fetchone()
    return None if row is None else view(row, zone)


def open_receipt(conn: sqlite3.Connection, ids: IdMaker, now: datetime, *, tank: int,
                 grade: str, delivery_id: str | None, user: str, paused: Sequence[int],
                 nozzle_totals: list[dict[str, Any]], bill: dict[str, Any],
                 before: dict[str, Any], zone: tzinfo | None) -> dict[str, Any]:
    found = conn.execute("SELECT id FROM delivery_receipts WHERE tank = ? AND status = 'open'",
                         (tank,)).fetchone()
    if found is not None:
        raise BooksError("receipt_open", f"tank {tank} has receipt {found[0]} open: receive or "
                         "cancel it first")
    if delivery_id is not None:
        taken = conn.execute("SELECT id FROM delivery_receipts WHERE delivery_id = ? AND "
                             "status != 'cancelled'", (delivery_id,)).fetchone()
        if taken is not None:
            raise BooksError("delivery_received", f"delivery {delivery_id} has receipt "
                             f"{taken[0]} already")
        known = conn.execute("SELECT tank FROM tank_deliveries WHERE id = ?",
                             (delivery_id,)).fetchone()
        if known is None or known[0] != tank:
            raise BooksError("unknown_delivery", f"tank {tank} has no detected delivery "
                             f"{delivery_id}", 404)
    receipt_id = ids.new(now)
    conn.execute(
        "INSERT INTO delivery_receipts (id, tank, grade, status, delivery_id, opened_at, "
        "opened_by, paused_nozzles, nozzle_totals, bill, before_reading) "
        "VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?)",
        (receipt_id, tank, grade, delivery_id, time_text(now), user, json.dumps(list(paused)),
         json.dumps(nozzle_totals, ensure_ascii=False), dump_json(bill), dump_json(before)),
    )  # fmt: skip
    opened = get(conn, receipt_id, zone)
    assert opened is not None
    return opened


def _open(conn: sqlite3.Connection, receipt_id: str, zone: tzinfo | None) -> dict[str, Any]:
    found = get(conn, receipt_id, zone)
    if found is None:
        raise BooksError("unknown_receipt", f"there is no delivery receipt {receipt_id}", 404)
    if found["status"] != "open":
        raise BooksError("receipt_closed", f"receipt {receipt_id} is {found['status']}")
    return found


def receive(conn: sqlite3.Connection, ids: IdMaker, now: datetime, receipt_id: str, *,
            after: dict[str, Any], figures: dict[str, Any], received_l: Decimal,
            received_std_l: Decimal, outcome: str, driver: str, receiver: str,
            supervisor: str | None, note: str | None, zone: tzinfo | None) -> dict[str, Any]:
    _open(conn, receipt_id, zone)
    seq = events.next_seq(conn)
    conn.execute(
        "UPDATE delivery_receipts SET status = 'received', after_reading = ?, figures = ?, "
        "received_l = ?, received_std_l = ?, outcome = ?, driver = ?, receiver = ?, "
        "supervisor = ?, note = ?, closed_at = ?, seq = ? WHERE id = ?",
        (dump_json(after), dump_json(figures), dec_text(received_l), dec_text(received_std_l),
         outcome, driver, receiver, supervisor, note, time_text(now), seq, receipt_id),
    )  # fmt: skip
    done = get(conn, receipt_id, zone)
    assert done is not None
    events.insert(conn, Event(seq=seq, id=ids.new(now), type="delivery.received", ts=now,
                              data=load_json(dump_json(done))))
    return done


def cancel(conn: sqlite3.Connection, now: datetime, receipt_id: str, *, note: str,
           zone: tzinfo | None) -> dict[str, Any]:
    _open(conn, receipt_id, zone)
    conn.execute("UPDATE delivery_receipts SET status = 'cancelled', note = ?, closed_at = ? "
                 "WHERE id = ?", (note, time_text(now), receipt_id))
    done = get(conn, receipt_id, zone)
    assert done is not None
    return done


def receipts(conn: sqlite3.Connection, limit: int, zone: tzinfo | None,
             status: str | None = None) -> list[dict[str, Any]]:
    where, params = ("WHERE status = ?", (status, limit)) if status else ("", (limit,))
    rows = conn.execute(f"SELECT {_COLUMNS} FROM delivery_receipts {where} "
                        "ORDER BY opened_at DESC, id DESC LIMIT ?", params)
    return [view(row, zone) for row in rows]


def received_between(conn: sqlite3.Connection, start: datetime, end: datetime
                     ) -> list[tuple[int, str, Decimal, Decimal]]:
    """(tank, grade, received_l, received_std_l) of the receipts received in [start, end)."""
    rows = conn.execute(
        "SELECT tank, grade, received_l, received_std_l FROM delivery_receipts WHERE "
        "status = 'received' AND closed_at >= ? AND closed_at < ?",
        (time_text(start), time_text(end)))
    return [(r[0], r[1], opt_text_dec(r[2]) or Decimal(0), opt_text_dec(r[3]) or Decimal(0))
            for r in rows]


class Deliveries:
    """The receipts' reads and writes, each in one transaction of the station's store."""

    def __init__(self, books: BooksStore) -> None:
        self.books = books
        self.store = books.store

    def open_receipt(self, **kwargs: Any) -> dict[str, Any]:
        return self.store.write_with(lambda conn, now: open_receipt(
            conn, self.books.ids, now, zone=self.books.zone, **kwargs))

    def receive(self, receipt_id: str, **kwargs: Any) -> dict[str, Any]:
        return self.store.write_with(lambda conn, now: receive(
            conn, self.books.ids, now, receipt_id, zone=self.books.zone, **kwargs))

    def cancel(self, receipt_id: str, *, note: str) -> dict[str, Any]:
        return self.store.write_with(lambda conn, now: cancel(
            conn, now, receipt_id, note=note, zone=self.books.zone))

    def get(self, receipt_id: str) -> dict[str, Any] | None:
        return self.store.read_with(get, receipt_id, self.books.zone)

    def receipts(self, limit: int = 100, status: str | None = None) -> list[dict[str, Any]]:
        return self.store.read_with(receipts, limit, self.books.zone, status)

    def open_for_tanks(self) -> dict[int, dict[str, Any]]:
        return {r["tank"]: r for r in self.receipts(100, "open")}
