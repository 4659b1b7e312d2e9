"""The station's books in the ledger: non-sale fills, totalizer corrections, nozzle totals at
price changes and deliveries received (docs/books.md).

Each record is written in one transaction with its event (whose seq it keeps) and, where it
moves a nozzle's totalizers, with the totals reading the next sale starts from, so a fill that
is no sale never shows up as a discrepancy of the next sale. A non-sale fill is identified like
a sale, by the volume totalizer after it: recorded twice, it is one row.

`BooksStore` (and `Deliveries`, `Months`, `Accounts` beside it) runs each read and write in
one transaction of the station's `Store` through its `read_with`/`write_with`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from domain.ids import IdMaker
from domain.model import Event, TotalsReading, rfc3339
from edge.store import events, ledger
from edge.store.codec import (
    dec_key,
    dec_text,
    dump_json,
    load_json,
    opt_dec_text,
    opt_time_text,
    text_dec,
    text_time,
    time_text,
)
from edge.store.errors import StoreError

if TYPE_CHECKING:
    from edge.store.store import Store

NONSALE_KINDS = ("self_check", "own_use", "returned", "transfer")
CORRECTION_CAUSES = ("reset", "board_swap", "other")


class BooksError(StoreError):
    """A books write refused for what it asks (not for the disk): `code` for the API."""

    def __init__(self, code: str, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def local_time(value: datetime | None, zone: tzinfo | None) -> str | None:
    if value is None:
        return None
    return rfc3339(value.astimezone(zone) if zone is not None else value)


def num_text(value: Decimal) -> str:
    return format(value, "f")


# --- non-sale fills ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NonSaleRequest:
    authorization_id: str
    nozzle: int
    kind: str
    reason: str
    witnesses: tuple[str, ...]
    to_tank: int | None
    user: str
    created_at: datetime


@dataclass(frozen=True)
class NonSaleFill:
    """A fill recorded with its totals but no sale, no payment and no receipt."""

    pump: int
    nozzle: int
    logical: int
    grade: str
    price: Decimal
    volume: Decimal
    amount: Decimal
    started_at: datetime | None
    ended_at: datetime
    authorization_id: str | None
    before: TotalsReading | None
    after: TotalsReading


def save_nonsale_request(conn: sqlite3.Connection, now: datetime, request: NonSaleRequest) -> None:
    conn.execute(
        "INSERT INTO nonsale_requests (authorization_id, nozzle, kind, reason, witnesses, "
        "to_tank, user_name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (request.authorization_id, request.nozzle, request.kind, request.reason,
         json.dumps(list(request.witnesses), ensure_ascii=False), request.to_tank,
         request.user, time_text(now)),
    )  # fmt: skip


def nonsale_request(conn: sqlite3.Connection, auth_id: str) -> NonSaleRequest | None:
    row = conn.execute(
        "SELECT authorization_id, nozzle, kind, reason, witnesses, to_tank, user_name, "
        "created_at FROM nonsale_requests WHERE authorization_id = ?", (auth_id,)).fetchone()
    if row is None:
        return None
    return NonSaleRequest(row[0], row[1], row[2], row[3], tuple(json.loads(row[4])), row[5],
                          row[6], text_time(row[7]))


_FILL_COLUMNS = (
    "id, seq, authorization_id, pump, nozzle, logical, grade, kind, reason, witnesses, to_tank, "
    "tax_notice, price, volume, amount, totals_volume_before, totals_volume_after, "
    "totals_amount_before, totals_amount_after, started_at, ended_at, user_name"
)


def fill_view(row: tuple[Any, ...], zone: tzinfo | None) -> dict[str, Any]:
    names = [c.strip() for c in _FILL_COLUMNS.split(",")]
    r = dict(zip(names, row, strict=True))
    return {
        "id": r["id"], "seq": r["seq"], "authorization_id": r["authorization_id"],
        "pump": r["pump"], "nozzle": r["nozzle"], "grade": r["grade"], "kind": r["kind"],
        "reason": r["reason"], "witnesses": json.loads(r["witnesses"]), "to_tank": r["to_tank"],
        "tax_notice": bool(r["tax_notice"]), "price": r["price"], "volume": r["volume"],
        "amount": r["amount"],
        "totals": {"volume_before": r["totals_volume_before"],
                   "volume_after": r["totals_volume_after"],
                   "amount_before": r["totals_amount_before"],
                   "amount_after": r["totals_amount_after"]},
        "started_at": local_time(None if r["started_at"] is None
                                 else text_time(r["started_at"]), zone),
        "ended_at": local_time(text_time(r["ended_at"]), zone), "user": r["user_name"],
    }  # fmt: skip


def record_nonsale(conn: sqlite3.Connection, ids: IdMaker, now: datetime, fill: NonSaleFill,
                   zone: tzinfo | None) -> tuple[dict[str, Any], bool]:
    """The fill, its totals reading, its authorization completed and its `nonsale.recorded`
    event; (the stored fill, False) when this fill is already recorded."""
    key = dec_key(fill.after.volume_total)
    row = conn.execute(f"SELECT {_FILL_COLUMNS} FROM nonsale_fills WHERE pump = ? AND "
                       "nozzle = ? AND fill_key = ?", (fill.pump, fill.nozzle, key)).fetchone()
    if row is not None:
        return fill_view(row, zone), False
    request = (nonsale_request(conn, fill.authorization_id)
               if fill.authorization_id is not None else None)
    kind = request.kind if request is not None else "unspecified"
    fill_id = ids.new(now)
    seq = events.next_seq(conn)
    before = fill.before
    conn.execute(
        f"INSERT INTO nonsale_fills ({_FILL_COLUMNS}, fill_key) VALUES "
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (fill_id, seq, fill.authorization_id, fill.pump, fill.nozzle, fill.logical, fill.grade,
         kind, request.reason if request else "no non-sale request was found for the fill",
         json.dumps(list(request.witnesses) if request else [], ensure_ascii=False),
         request.to_tank if request else None, int(kind == "transfer"), dec_text(fill.price),
         dec_text(fill.volume), dec_text(fill.amount),
         None if before is None else dec_text(before.volume_total),
         dec_text(fill.after.volume_total),
         None if before is None else dec_text(before.amount_total),
         dec_text(fill.after.amount_total), opt_time_text(fill.started_at),
         time_text(fill.ended_at), request.user if request else None, key),
    )  # fmt: skip
    ledger.record_totals(conn, fill.after)
    if fill.authorization_id is not None:
        conn.execute("UPDATE authorizations SET state = 'completed', updated_at = ? "
                     "WHERE id = ?", (time_text(now), fill.authorization_id))
    stored = conn.execute(f"SELECT {_FILL_COLUMNS} FROM nonsale_fills WHERE id = ?",
                          (fill_id,)).fetchone()
    view = fill_view(stored, zone)
    events.insert(conn, Event(seq=seq, id=ids.new(now), type="nonsale.recorded", ts=now,
                              data=load_json(dump_json(view))))
    return view, True


def nonsale_between(conn: sqlite3.Connection, start: datetime, end: datetime,
                    zone: tzinfo | None) -> list[dict[str, Any]]:
    rows = conn.execute(f"SELECT {_FILL_COLUMNS} FROM nonsale_fills WHERE ended_at >= ? AND "
                        "ended_at < ? ORDER BY seq", (time_text(start), time_text(end)))
    return [fill_view(row, zone) for row in rows]


def nonsale_in_seqs(conn: sqlite3.Connection, after: int, upto: int | None,
                    zone: tzinfo | None) -> list[dict[str, Any]]:
    rows = conn.execute(f"SELECT {_FILL_COLUMNS} FROM nonsale_fills WHERE seq > ? AND seq <= ? "
                        "ORDER BY seq", (after, upto if upto is not None else 2**62))
    return [fill_view(row, zone) for row in rows]


def tank_moves(conn: sqlite3.Connection, tank: int, nozzles: Sequence[int], after: str,
               upto: str) -> tuple[Decimal, Decimal]:
    """(litres out, litres in) of a tank by non-sale fills that ended in (after, upto]
    (stored times): own use and transfers out of its nozzles, transfers into it. Self-checks
    and returns went back into the tank: neither."""
    out = Decimal(0)
    if nozzles:
        marks = ", ".join("?" * len(nozzles))
        for (volume,) in conn.execute(
                f"SELECT volume FROM nonsale_fills WHERE nozzle IN ({marks}) AND kind NOT IN "
                "('self_check', 'returned') AND ended_at > ? AND ended_at <= ?",
                (*nozzles, after, upto)):
            out += text_dec(volume)
    into = Decimal(0)
    for (volume,) in conn.execute(
            "SELECT volume FROM nonsale_fills WHERE kind = 'transfer' AND to_tank = ? AND "
            "ended_at > ? AND ended_at <= ?", (tank, after, upto)):
        into += text_dec(volume)
    return out, into


# --- totalizer corrections --------------------------------------------------------------------

CORRECTION_COLUMNS = ("id, seq, pump, nozzle, cause, before_volume, before_amount, "
                       "after_volume, after_amount, note, user_name, created_at")


def correction_view(row: tuple[Any, ...], zone: tzinfo | None) -> dict[str, Any]:
    (cid, seq, pump, nozzle, cause, bv, ba, av, aa, note, user, created) = row
    jump_v = text_dec(av) - text_dec(bv)
    jump_a = text_dec(aa) - text_dec(ba)
    return {"id": cid, "seq": seq, "pump": pump, "nozzle": nozzle, "cause": cause,
            "before": {"volume_total": bv, "amount_total": ba},
            "after": {"volume_total": av, "amount_total": aa},
            "jump": {"volume": num_text(jump_v), "amount": num_text(jump_a)},
            "note": note, "user": user, "created_at": local_time(text_time(created), zone)}


def record_correction(conn: sqlite3.Connection, ids: IdMaker, now: datetime, *, pump: int,
                      nozzle: int, cause: str, before: tuple[Decimal, Decimal],
                      after: tuple[Decimal, Decimal], note: str, user: str,
                      zone: tzinfo | None) -> dict[str, Any]:
    """A jump of a nozzle's totalizers that moved no fuel; `after` becomes the reference the
    next sale of the nozzle starts from."""
    if cause not in CORRECTION_CAUSES:
        raise BooksError("invalid_cause", f"cause must be one of {', '.join(CORRECTION_CAUSES)}",
                         422)
    cid = ids.new(now)
    seq = events.next_seq(conn)
    conn.execute(
        f"INSERT INTO totals_corrections ({CORRECTION_COLUMNS}) VALUES "
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (cid, seq, pump, nozzle, cause, dec_text(before[0]), dec_text(before[1]),
         dec_text(after[0]), dec_text(after[1]), note, user, time_text(now)),
    )  # fmt: skip
    last = ledger.last_totals(conn, pump, nozzle)
    if last is None or (last.volume_total, last.amount_total) != after:
        ledger.record_totals(conn, TotalsReading(pump, nozzle, after[0], after[1], now,
                                                 "correction"))
    row = conn.execute(f"SELECT {CORRECTION_COLUMNS} FROM totals_corrections WHERE id = ?",
                       (cid,)).fetchone()
    view = correction_view(row, zone)
    events.insert(conn, Event(seq=seq, id=ids.new(now), type="totals.corrected", ts=now,
                              data=load_json(dump_json(view))))
    return view


def corrections_in_seqs(conn: sqlite3.Connection, after: int, upto: int | None,
                        zone: tzinfo | None) -> list[dict[str, Any]]:
    rows = conn.execute(f"SELECT {CORRECTION_COLUMNS} FROM totals_corrections WHERE seq > ? "
                        "AND seq <= ? ORDER BY seq", (after, upto if upto is not None else 2**62))
    return [correction_view(row, zone) for row in rows]


def corrections(conn: sqlite3.Connection, limit: int, zone: tzinfo | None) -> list[dict[str, Any]]:
    rows = conn.execute(f"SELECT {CORRECTION_COLUMNS} FROM totals_corrections ORDER BY seq DESC "
                        "LIMIT ?", (limit,))
    return [correction_view(row, zone) for row in rows]


# --- the reports' books (edge/store/book_reports.py) -------------------------------------------


def shift_books(conn: sqlite3.Connection, *, after: int, upto: int | None,
                opening: Mapping[int, TotalsReading], closing: Mapping[int, TotalsReading],
                zone: tzinfo | None) -> dict[str, Any]:
    """What the shift report shows besides sales (edge/store/shifts.py asks here)."""
    from edge.store import book_reports

    return book_reports.shift_books(conn, after=after, upto=upto, opening=opening,
                                    closing=closing, zone=zone)


# --- nozzle totals at price changes -----------------------------------------------------------


def record_price_totals(conn: sqlite3.Connection, *, seq: int, price_set_id: str, pump: int,
                        nozzles: Mapping[int, tuple[str, Decimal]], at: datetime) -> int:
    """Each nozzle's latest totals read at or before `at` (the price.applied event's time),
    stored against the event's seq; the number stored (0 when already stored)."""
    stored = 0
    for nozzle, (grade, price) in sorted(nozzles.items()):
        row = conn.execute(
            "SELECT volume_total, amount_total, read_at FROM totals WHERE pump = ? AND "
            "nozzle = ? AND read_at <= ? ORDER BY id DESC LIMIT 1",
            (pump, nozzle, time_text(at))).fetchone()
        if row is None:
            continue
        cursor = conn.execute(
            "INSERT OR IGNORE INTO price_totals (seq, price_set_id, pump, nozzle, grade, price, "
            "volume_total, amount_total, read_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, price_set_id, pump, nozzle, grade, dec_text(price), row[0], row[1], row[2]))
        stored += cursor.rowcount
    return stored


def price_totals_between(conn: sqlite3.Connection, start: datetime, end: datetime | None
                         ) -> list[dict[str, Any]]:
    """Price-change totals read in [start, end), oldest first."""
    rows = conn.execute(
        "SELECT seq, price_set_id, pump, nozzle, grade, price, volume_total, amount_total, "
        "read_at FROM price_totals WHERE read_at >= ? AND read_at < ? ORDER BY read_at, nozzle",
        (time_text(start), time_text(end) if end is not None else "9999"))
    return [{"seq": r[0], "price_set_id": r[1], "pump": r[2], "nozzle": r[3], "grade": r[4],
             "price": r[5], "volume_total": r[6], "amount_total": r[7],
             "read_at": text_time(r[8])} for r in rows]


# --- the Store face -----------------------------------------------------------------------------


class BooksStore:
    """The books' reads and writes, each in one transaction of the station's store (its
    `read_with`/`write_with`: one connection, one lock, edge/store/db.py)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.ids = IdMaker()

    @property
    def zone(self) -> tzinfo | None:
        return self.store.zone

    def save_nonsale_request(self, request: NonSaleRequest) -> None:
        self.store.write_with(save_nonsale_request, request)

    def has_nonsale_request(self, auth_id: str) -> bool:
        return self.store.read_with(nonsale_request, auth_id) is not None

    def record_nonsale(self, fill: NonSaleFill) -> tuple[dict[str, Any], bool]:
        return self.store.write_with(
            lambda conn, now: record_nonsale(conn, self.ids, now, fill, self.zone))

    def nonsale_between(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        return self.store.read_with(nonsale_between, start, end, self.zone)

    def nonsale_in_seqs(self, after: int, upto: int | None) -> list[dict[str, Any]]:
        return self.store.read_with(nonsale_in_seqs, after, upto, self.zone)

    def record_correction(self, *, pump: int, nozzle: int, cause: str,
                          before: tuple[Decimal, Decimal], after: tuple[Decimal, Decimal],
                          note: str, user: str) -> dict[str, Any]:
        return self.store.write_with(lambda conn, now: record_correction(
            conn, self.ids, now, pump=pump, nozzle=nozzle, cause=cause, before=before,
            after=after, note=note, user=user, zone=self.zone))

    def corrections(self, limit: int = 100) -> list[dict[str, Any]]:
        return self.store.read_with(corrections, limit, self.zone)

    def record_price_totals(self, *, seq: int, price_set_id: str, pump: int,
                            nozzles: Mapping[int, tuple[str, Decimal]], at: datetime) -> int:
        return self.store.write_with(lambda conn, _now: record_price_totals(
            conn, seq=seq, price_set_id=price_set_id, pump=pump, nozzles=nozzles, at=at))

    def day_books(self, start: datetime, end: datetime) -> dict[str, Any]:
        from edge.store import book_reports

        return self.store.read_with(book_reports.day_books, start, end, self.zone)

    def price_totals_mark(self) -> int | None:
        """The seq of the newest price.applied whose totals are kept (None: none yet)."""
        return self.store.read_with(price_totals_mark)

    def price_totals_between(self, start: datetime, end: datetime | None
                             ) -> list[dict[str, Any]]:
        return self.store.read_with(price_totals_between, start, end)


def price_totals_mark(conn: sqlite3.Connection) -> int | None:
    found = conn.execute("SELECT MAX(seq) FROM price_totals").fetchone()[0]
    return None if found is None else int(found)


__all__ = ["CORRECTION_CAUSES", "NONSALE_KINDS", "BooksError", "BooksStore", "NonSaleFill",
           "NonSaleRequest", "opt_dec_text", "shift_books"]
