"""`forecourt db archive`: old periods out of the live database, into files an auditor can read.

An archive run moves the rows older than a date (station-local midnight) into one gzip'd
JSON-lines file per table, with a manifest, and records itself in the `archives` table:

- events: a seq prefix, seq_low..seq_high (the events recorded before the date);
- sales with a seq in that prefix (a sale's seq is its `sale.completed` event's), their
  payments, and the authorizations and app orders they name that no kept row names;
- totalizer and tank readings taken before the date, except each nozzle's and tank's latest
  (and each tank's latest day close): the live figures, shifts and reconciliations start there.

The audit log, shifts, prices, users and tank alerts/deliveries/reconciliations stay (they are
small, and the audit chain must stay verifiable in one place).

Nothing unsynced leaves: a period that holds an event the cloud has not acknowledged, an unpaid
sale (an app order's sale is paid in the app: the station records an "app" payment; an older
release's, with none, counts as paid once its order completed), or
events of the open shift is refused whole, naming the first such seq. The files are
written, fsynced and read back (row counts and sha256) before any row is deleted, and the rows go
in ONE transaction together with the `archives` row. A run interrupted between the two leaves the
database complete, and running it again rewrites the same files and finishes. The files:
archive_files.py; how to read and keep them: docs/retention.md.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, tzinfo
from pathlib import Path
from typing import Any

from domain.files import private_dir
from domain.model import rfc3339
from domain.states import OPEN_ORDER_STATUSES
from drivers.files import write_durably
from edge.store import events, shifts
from edge.store.archive_files import (
    ArchiveFile,
    TableFile,
    problem,
    read_back,
    sha256,
)
from edge.store.authorizations import ACTIVE_STATES
from edge.store.codec import text_time, time_text
from edge.store.errors import StoreError
from edge.store.store import Store

FORMAT = "forecourt-archive/1"
_PAGE = 2000  # rows per read: each read is short, so the daemon's writers never wait on us
_CHUNK = 500  # ids per IN (...) list, well under SQLite's bound on parameters
_TERMINAL_ORDER = f"status NOT IN ({', '.join(repr(str(s)) for s in sorted(OPEN_ORDER_STATUSES))})"
_ACTIVE_AUTHORIZATION = ", ".join(repr(s) for s in ACTIVE_STATES)


class ArchiveError(StoreError):
    """The archive could not be made; nothing was deleted."""


class ArchiveRefused(ArchiveError):
    """The period holds something not yet safe to move out (`seq`: the first such event)."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"nothing archived: {reason}")
        self.seq = seq
        self.reason = reason


@dataclass(frozen=True)
class Archive:
    """One archive run, as the `archives` table records it."""

    name: str
    created_at: datetime
    before: date
    cutoff: datetime
    seq_low: int
    seq_high: int
    directory: Path
    manifest_text: str

    @property
    def manifest(self) -> dict[str, Any]:
        found = json.loads(self.manifest_text)
        assert isinstance(found, dict)
        return found

    @property
    def files(self) -> list[ArchiveFile]:
        return [ArchiveFile(**entry) for entry in self.manifest["files"]]

    @property
    def manifest_file(self) -> str:
        return f"{self.name}.json"

    def rows(self, table: str) -> int:
        return sum(f.rows for f in self.files if f.table == table)


@dataclass(frozen=True)
class _Plan:
    """What a run moves. Each selection is a key range or a fixed list, so the rows written
    and the rows deleted later are the same rows: archived rows never change any more."""

    cutoff: str  # UTC time text: rows before it
    seq_low: int
    seq_high: int  # seq_low > seq_high: no event
    last_seq: int  # sales after it were recorded after the plan: checked again at delete
    totals_below: int  # totals with id < totals_below ...
    totals_keep: tuple[int, ...]  # ... except these
    tanks_below: int
    tanks_keep: tuple[int, ...]
    authorizations: tuple[str, ...]
    orders: tuple[str, ...]
    first_at: datetime | None  # the oldest row moved


# --- what the archives table holds


def archives(store: Store) -> list[Archive]:
    """Every archive made, oldest first."""
    with store._db.read() as conn:
        rows = conn.execute(
            "SELECT name, created_at, before, cutoff, seq_low, seq_high, directory, manifest "
            "FROM archives ORDER BY id"
        ).fetchall()
    return [
        Archive(name, text_time(created), date.fromisoformat(before), text_time(cutoff), low,
                high, Path(directory), manifest)
        for name, created, before, cutoff, low, high, directory, manifest in rows
    ]  # fmt: skip


def archived_high(conn: sqlite3.Connection) -> int:
    """The newest event seq moved out of the database; the live events start after it."""
    high = conn.execute("SELECT COALESCE(MAX(seq_high), 0) FROM archives").fetchone()[0]
    assert isinstance(high, int)
    return high


def check_files(found: Archive) -> list[str]:
    """What is wrong with an archive's files on disk: missing or changed ones (empty: intact)."""
    expected = [(found.manifest_file, sha256(found.manifest_text.encode()))]
    expected += [(f.file, f.sha256) for f in found.files]
    return [p for name, digest in expected if (p := problem(found.directory / name, digest))]


# --- the run


def archive_months(
    store: Store, before: date, *, zone: tzinfo, directory: Path, station: str | None = None
) -> Iterator[Archive]:
    """Archives what is older than `before` one calendar month per run, oldest first, yielding
    each archive once made: each run's delete stays short (the daemon's writes wait for it),
    and an auditor gets a file set per month. Raises as `archive` does, after the months
    already made."""
    while True:
        with store._db.read() as conn:
            oldest = _one(conn, "SELECT ts FROM events WHERE seq > ? ORDER BY seq LIMIT 1",
                          (archived_high(conn),))  # fmt: skip
        step = before
        if oldest is not None:
            day = text_time(oldest).astimezone(zone).date()
            step = min(before, date(day.year + day.month // 12, day.month % 12 + 1, 1))
        made = archive(store, step, zone=zone, directory=directory, station=station)
        if made is not None:
            yield made
        if made is None or step >= before:
            return


def archive(
    store: Store, before: date, *, zone: tzinfo, directory: Path, station: str | None = None
) -> Archive | None:
    """Moves what is older than local midnight starting `before` into `directory`.

    Returns the archive, or None when there is nothing to move. Raises ArchiveRefused (nothing
    done) when the period is not safe to move, ArchiveError when the files could not be
    written and checked (nothing deleted), StoreError when the database refuses.
    """
    cutoff = datetime.combine(before, time(0), zone)
    if cutoff > store._db.now():
        raise ArchiveError(f"nothing archived: {before.isoformat()} has not begun yet")
    with store._db.read() as conn:
        plan = _plan(conn, time_text(cutoff))
        taken = {row[0] for row in conn.execute("SELECT name FROM archives")}
    if plan is None:
        return None
    assert plan.first_at is not None
    name = f"archive-{plan.first_at.astimezone(zone).date().isoformat()}-{before.isoformat()}"
    # Two runs with the same span (a reading kept as a nozzle's latest, moved later): one name
    # each. A name with files but no archives row is an interrupted run: its files are redone.
    base, n = name, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    directory = directory.resolve()
    private_dir(directory)
    files = _export(store, plan, directory, name)
    for entry in files:
        wrong = read_back(directory, entry)
        if wrong is not None:
            raise ArchiveError(f"{wrong}; nothing was deleted")
    created = store._db.now()
    manifest = {
        "format": FORMAT, "name": name, "station": station,
        "created_at": rfc3339(created.astimezone(zone)),
        "period": {"from": plan.first_at.astimezone(zone).date().isoformat(),
                   "before": before.isoformat(), "timezone": str(zone), "cutoff": plan.cutoff},
        "seq": {"low": plan.seq_low, "high": plan.seq_high},
        "files": [asdict(f) for f in files],
    }  # fmt: skip
    text = json.dumps(manifest, ensure_ascii=False, indent=2) + "\n"
    write_durably(directory / f"{name}.json", text.encode())
    with store._db.write() as conn:
        _delete(conn, plan, files)
        conn.execute(
            "INSERT INTO archives (name, created_at, before, cutoff, seq_low, seq_high, "
            "directory, manifest) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (name, time_text(created), before.isoformat(), plan.cutoff, plan.seq_low,
             plan.seq_high, str(directory), text),
        )  # fmt: skip
    return Archive(name, created, before, text_time(plan.cutoff), plan.seq_low, plan.seq_high,
                   directory, text)  # fmt: skip


def _one(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]


def _plan(conn: sqlite3.Connection, cutoff: str) -> _Plan | None:
    low = archived_high(conn) + 1
    last = events.last_seq(conn)
    # Event times follow their seq (the store reads the clock under its write lock); should the
    # clock ever have stepped back, the prefix ends at the first event on or after the cutoff.
    newer = _one(conn, "SELECT seq FROM events WHERE seq >= ? AND ts >= ? ORDER BY seq LIMIT 1",
                 (low, cutoff))  # fmt: skip
    high = last if newer is None else newer - 1
    if high >= low:
        _refuse_unsynced(conn, high)
    open_shift = shifts.current(conn)
    totals_below = _below(conn, "totals", cutoff)
    if open_shift is not None:
        # The open shift opens a nozzle first read after its mark at that reading.
        totals_below = min(totals_below, open_shift.totals_mark + 1)
    totals_keep = _ids(conn, "SELECT MAX(id) FROM totals GROUP BY pump, nozzle")
    tanks_below = _below(conn, "tank_readings", cutoff)
    tanks_keep = _ids(conn, "SELECT MAX(id) FROM tank_readings GROUP BY tank") | _ids(
        conn, "SELECT id FROM tank_readings WHERE (tank, closes_day) IN (SELECT tank, "
        "MAX(closes_day) FROM tank_readings WHERE closes_day IS NOT NULL GROUP BY tank)")
    auths, orders = _referenced(conn, high)
    firsts = [
        _one(conn, "SELECT ts FROM events WHERE seq = ?", (low,)) if high >= low else None,
        _first(conn, "totals", totals_below, totals_keep),
        _first(conn, "tank_readings", tanks_below, tanks_keep),
    ]
    times = [text_time(t) for t in firsts if t is not None]
    if not times:
        return None
    return _Plan(
        cutoff=cutoff, seq_low=low, seq_high=max(high, low - 1), last_seq=last,
        totals_below=totals_below, totals_keep=tuple(sorted(i for i in totals_keep
                                                            if i < totals_below)),
        tanks_below=tanks_below, tanks_keep=tuple(sorted(i for i in tanks_keep
                                                         if i < tanks_below)),
        authorizations=tuple(sorted(auths)), orders=tuple(sorted(orders)), first_at=min(times),
    )  # fmt: skip


def _refuse_unsynced(conn: sqlite3.Connection, high: int) -> None:
    unacked = conn.execute(
        "SELECT e.seq, e.type, e.ts FROM outbox AS o JOIN events AS e USING (seq) "
        "WHERE o.seq <= ? ORDER BY o.seq LIMIT 1", (high,)).fetchone()  # fmt: skip
    if unacked is not None:
        seq, type_, ts = unacked
        raise ArchiveRefused(seq, f"event {seq} ({type_} at {ts}) is not acknowledged by the "
                                  "cloud yet; archive an earlier date or wait for the sync")
    # A sale of an app order was paid in the app. The station records that as an "app" payment;
    # sales recorded by releases before it did have none, and are settled once their order
    # completed.
    unpaid = conn.execute(
        "SELECT seq, id FROM sales AS s WHERE paid = 0 AND seq <= ? AND NOT EXISTS (SELECT 1 "
        "FROM orders AS o WHERE o.order_id = s.order_id AND o.status = 'completed') "
        "ORDER BY seq LIMIT 1", (high,)).fetchone()  # fmt: skip
    if unpaid is not None:
        raise ArchiveRefused(unpaid[0], f"sale {unpaid[1]} (seq {unpaid[0]}) is not paid")
    shift = shifts.current(conn)
    if shift is not None and shift.start_seq < high:
        raise ArchiveRefused(shift.start_seq + 1, f"shift {shift.id} is still open and holds "
                             f"the events from seq {shift.start_seq + 1}; close it first")


def _below(conn: sqlite3.Connection, table: str, cutoff: str) -> int:
    """The first id read on or after the cutoff (rows before it were read before the date)."""
    found = _one(conn, f"SELECT id FROM {table} WHERE read_at >= ? ORDER BY id LIMIT 1",
                 (cutoff,))  # fmt: skip
    if found is None:
        found = (_one(conn, f"SELECT MAX(id) FROM {table}") or 0) + 1
    assert isinstance(found, int)
    return found


def _ids(conn: sqlite3.Connection, sql: str) -> set[int]:
    return {row[0] for row in conn.execute(sql) if row[0] is not None}


def _not_in(ids: Sequence[int]) -> str:
    return f"id NOT IN ({', '.join(str(int(i)) for i in ids)})"


def _first(conn: sqlite3.Connection, table: str, below: int, keep: set[int]) -> str | None:
    found = _one(conn, f"SELECT read_at FROM {table} WHERE id < ? AND {_not_in(sorted(keep))} "
                       "ORDER BY id LIMIT 1", (below,))  # fmt: skip
    return None if found is None else str(found)


def _sales_refs(
    conn: sqlite3.Connection, after: int, upto: int | None
) -> Iterator[tuple[Any, ...]]:
    """(seq, authorization_id, order_id) of the sales in (after, upto], page by page."""
    while True:
        page = conn.execute(
            "SELECT seq, authorization_id, order_id FROM sales WHERE seq > ? AND seq <= ? "
            "ORDER BY seq LIMIT ?", (after, upto if upto is not None else 2**63 - 1, _PAGE),
        ).fetchall()  # fmt: skip
        yield from page
        if len(page) < _PAGE:
            return
        after = page[-1][0]


def _referenced(conn: sqlite3.Connection, high: int) -> tuple[set[str], set[str]]:
    """The authorizations and finished orders of the archived sales that no kept sale or
    kept order names."""
    auths: set[str] = set()
    orders: set[str] = set()
    for _, auth, order in _sales_refs(conn, 0, high):
        auths.update([auth] if auth else [])
        orders.update([order] if order else [])
    for _, auth, order in _sales_refs(conn, high, None):
        auths.discard(auth)
        orders.discard(order)
    orders = {o for chunk in _chunks(sorted(orders)) for (o,) in conn.execute(
        f"SELECT order_id FROM orders WHERE order_id IN ({_marks(chunk)}) AND {_TERMINAL_ORDER}",
        chunk)}  # fmt: skip
    auths = {a for chunk in _chunks(sorted(auths)) for (a,) in conn.execute(
        f"SELECT id FROM authorizations WHERE id IN ({_marks(chunk)}) "
        f"AND state NOT IN ({_ACTIVE_AUTHORIZATION})", chunk)}  # fmt: skip
    # An order and its authorizations name each other: a kept one keeps the other (an order
    # whose first authorization failed keeps that one, which keeps the order, which keeps ...).
    order_auths = conn.execute("SELECT order_id, authorization_id FROM orders "
                               "WHERE authorization_id IS NOT NULL").fetchall()
    auth_orders = conn.execute("SELECT id, order_id FROM authorizations "
                               "WHERE order_id IS NOT NULL").fetchall()
    while True:
        kept_auths = auths - {a for o, a in order_auths if o not in orders}
        kept_orders = orders - {o for a, o in auth_orders if a not in kept_auths}
        if (kept_auths, kept_orders) == (auths, orders):
            return auths, orders
        auths, orders = kept_auths, kept_orders


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]


def _marks(items: Sequence[Any]) -> str:
    return ", ".join("?" * len(items))


# --- the files


def _columns(cursor: sqlite3.Cursor) -> list[str]:
    return [d[0] for d in cursor.description]


def _export(store: Store, plan: _Plan, directory: Path, name: str) -> list[ArchiveFile]:
    out = {t: TableFile(directory, name, t) for t in (
        "events", "sales", "payments", "authorizations", "orders", "totals", "tank_readings")}
    try:
        keyed = [
            ("events", "seq", f"seq <= {plan.seq_high:d}", plan.seq_low - 1),
            ("sales", "seq", f"seq <= {plan.seq_high:d}", 0),
            ("totals", "id", f"id < {plan.totals_below:d} AND {_not_in(plan.totals_keep)}", 0),
            ("tank_readings", "id",
             f"id < {plan.tanks_below:d} AND {_not_in(plan.tanks_keep)}", 0),
        ]  # fmt: skip
        for table, key, where, after in keyed:
            while True:
                with store._db.read() as conn:
                    cursor = conn.execute(f"SELECT * FROM {table} WHERE {key} > ? AND {where} "
                                          f"ORDER BY {key} LIMIT ?", (after, _PAGE))  # fmt: skip
                    page, columns = cursor.fetchall(), _columns(cursor)
                    if table == "sales" and page:
                        found = conn.execute(
                            f"SELECT * FROM payments WHERE sale_id IN ({_marks(page)}) "
                            "ORDER BY sale_id, created_at, id", [row[0] for row in page])
                        out["payments"].write(_columns(found), found.fetchall())
                out[table].write(columns, page)
                if len(page) < _PAGE:
                    break
                after = page[-1][columns.index(key)]
        for table, key, ids in (("authorizations", "id", plan.authorizations),
                                ("orders", "order_id", plan.orders)):
            for chunk in _chunks(ids):
                with store._db.read() as conn:
                    cursor = conn.execute(f"SELECT * FROM {table} WHERE {key} IN "
                                          f"({_marks(chunk)}) ORDER BY {key}", chunk)
                    out[table].write(_columns(cursor), cursor.fetchall())
    except BaseException:
        for file in out.values():
            file.abandon()
        raise
    return [file.close() for file in out.values()]


def _delete(conn: sqlite3.Connection, plan: _Plan, files: Sequence[ArchiveFile]) -> None:
    """Inside the caller's transaction: deletes exactly the rows the files hold, or raises."""
    for _, auth, order in _sales_refs(conn, plan.last_seq, None):
        if auth in plan.authorizations or order in plan.orders:
            raise ArchiveError("a sale recorded meanwhile names an archived authorization or "
                               "order; nothing was deleted, run the archive again")
    written = {f.table: f.rows for f in files}
    deleted = {
        "payments": conn.execute("DELETE FROM payments WHERE sale_id IN "
                                 "(SELECT id FROM sales WHERE seq <= ?)", (plan.seq_high,)),
        "sales": conn.execute("DELETE FROM sales WHERE seq <= ?", (plan.seq_high,)),
        "events": conn.execute("DELETE FROM events WHERE seq >= ? AND seq <= ?",
                               (plan.seq_low, plan.seq_high)),
        "totals": conn.execute(f"DELETE FROM totals WHERE id < ? AND {_not_in(plan.totals_keep)}",
                               (plan.totals_below,)),
        "tank_readings": conn.execute(f"DELETE FROM tank_readings WHERE id < ? AND "
                                      f"{_not_in(plan.tanks_keep)}", (plan.tanks_below,)),
    }  # fmt: skip
    counts = {table: cursor.rowcount for table, cursor in deleted.items()}
    for table, key, ids in (("authorizations", "id", plan.authorizations),
                            ("orders", "order_id", plan.orders)):
        counts[table] = sum(conn.execute(f"DELETE FROM {table} WHERE {key} IN ({_marks(c)})",
                                         c).rowcount for c in _chunks(ids))  # fmt: skip
    changed = sorted(t for t in written if counts.get(t) != written[t])
    if changed:
        raise ArchiveError(f"rows of {', '.join(changed)} changed while archiving; nothing was "
                           "deleted, run the archive again")


