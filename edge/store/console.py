"""The console's records (schema 10): sale numbers, receipt prints, alarm acknowledgements and
cancelled price schedules.

Functions of a connection, run by `Store.read_with` / `Store.write_with` inside the store's own
transactions (a sale's number is assigned in the sale's transaction by `ledger.record_sale`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from edge.store.codec import text_time, time_text
from edge.store.errors import StoreError, UnknownPriceSchedule

# ------------------------------------------------------------------ sale numbers


def number_text(day: str, n: int) -> str:
    """ "2026-12-04", 42 -> "1204-0042": the month and day, then the sale's place in the day."""
    return f"{day[5:7]}{day[8:10]}-{n:04d}"


def assign_sale_number(conn: sqlite3.Connection, sale_id: str, ended_at: datetime,
                       zone: tzinfo | None) -> str:
    """The next number of the station-local day the sale ended; the sale's own if it has one."""
    found = conn.execute("SELECT day, n FROM sale_numbers WHERE sale_id = ?",
                         (sale_id,)).fetchone()
    if found is not None:
        return number_text(found[0], found[1])
    day = ended_at.astimezone(zone or UTC).date().isoformat()
    (last,) = conn.execute("SELECT MAX(n) FROM sale_numbers WHERE day = ?", (day,)).fetchone()
    n = (last or 0) + 1
    conn.execute("INSERT INTO sale_numbers (sale_id, day, n) VALUES (?, ?, ?)",
                 (sale_id, day, n))
    return number_text(day, n)


def sale_numbers(conn: sqlite3.Connection, sale_ids: Sequence[str]) -> dict[str, str]:
    """The numbers of those sales that have one (sales recorded before schema 10 have none)."""
    found: dict[str, str] = {}
    for start in range(0, len(sale_ids), 500):
        chunk = sale_ids[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        for sale_id, day, n in conn.execute(
                f"SELECT sale_id, day, n FROM sale_numbers WHERE sale_id IN ({marks})", chunk):
            found[sale_id] = number_text(day, n)
    return found


# ------------------------------------------------------------------ receipts


def receipt_printed(conn: sqlite3.Connection, now: datetime, sale_id: str) -> int:
    """Counts one more print of the sale's receipt; returns how many there were before it."""
    row = conn.execute("SELECT count FROM receipt_prints WHERE sale_id = ?",
                       (sale_id,)).fetchone()
    if row is None:
        conn.execute("INSERT INTO receipt_prints (sale_id, count, first_at, last_at) "
                     "VALUES (?, 1, ?, ?)", (sale_id, time_text(now), time_text(now)))
        return 0
    conn.execute("UPDATE receipt_prints SET count = count + 1, last_at = ? WHERE sale_id = ?",
                 (time_text(now), sale_id))
    return int(row[0])


def receipt_counts(conn: sqlite3.Connection, sale_ids: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(sale_ids), 500):
        chunk = sale_ids[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        for sale_id, count in conn.execute(
                f"SELECT sale_id, count FROM receipt_prints WHERE sale_id IN ({marks})", chunk):
            found[sale_id] = int(count)
    return found


def last_audit_seq(conn: sqlite3.Connection) -> int:
    (last,) = conn.execute("SELECT MAX(seq) FROM audit").fetchone()
    return int(last or 0)


# ------------------------------------------------------------------ alarms


@dataclass(frozen=True)
class AlarmEvent:
    seq: int
    type: str
    ts: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class Ack:
    user: str
    at: datetime


class UnknownAlarm(StoreError):
    def __init__(self, seq: int) -> None:
        super().__init__(f"there is no alarm with seq {seq}")
        self.seq = seq


def alarm_events(conn: sqlite3.Connection, types: Iterable[str], limit: int) -> list[AlarmEvent]:
    """The newest `limit` events of those types, oldest first."""
    wanted = sorted(set(types))
    marks = ", ".join("?" * len(wanted))
    rows = conn.execute(
        f"SELECT seq, type, ts, data FROM events WHERE type IN ({marks}) "
        "ORDER BY seq DESC LIMIT ?", (*wanted, limit)).fetchall()
    return [AlarmEvent(seq, type_, text_time(ts), json.loads(data))
            for seq, type_, ts, data in reversed(rows)]


def alarm_acks(conn: sqlite3.Connection, seqs: Sequence[int]) -> dict[int, Ack]:
    found: dict[int, Ack] = {}
    for start in range(0, len(seqs), 500):
        chunk = seqs[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        for seq, user, at in conn.execute(
                f"SELECT seq, user_name, at FROM alarm_acks WHERE seq IN ({marks})", chunk):
            found[int(seq)] = Ack(user, text_time(at))
    return found


def ack_alarm(conn: sqlite3.Connection, now: datetime, seq: int, types: Iterable[str],
              user: str) -> tuple[Ack, bool]:
    """Acknowledges the alarm event `seq` (one of `types`): (the acknowledgement, True) or,
    when someone already did, (theirs, False). Raises UnknownAlarm."""
    wanted = sorted(set(types))
    marks = ", ".join("?" * len(wanted))
    if conn.execute(f"SELECT 1 FROM events WHERE seq = ? AND type IN ({marks})",
                    (seq, *wanted)).fetchone() is None:
        raise UnknownAlarm(seq)
    before = alarm_acks(conn, [seq]).get(seq)
    if before is not None:
        return before, False
    conn.execute("INSERT INTO alarm_acks (seq, user_name, at) VALUES (?, ?, ?)",
                 (seq, user, time_text(now)))
    return Ack(user, now), True


# ------------------------------------------------------------------ price schedules


@dataclass(frozen=True)
class Cancelled:
    at: datetime
    by: str


class ScheduleApplied(StoreError):
    def __init__(self, price_set_id: str) -> None:
        super().__init__(f"price set {price_set_id} is already in force")
        self.price_set_id = price_set_id


def cancelled_schedules(conn: sqlite3.Connection,
                        price_set_ids: Sequence[str]) -> dict[str, Cancelled]:
    found: dict[str, Cancelled] = {}
    for start in range(0, len(price_set_ids), 500):
        chunk = price_set_ids[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        for price_set_id, at, by in conn.execute(
                "SELECT price_set_id, cancelled_at, cancelled_by FROM price_schedules "
                f"WHERE cancelled_at IS NOT NULL AND price_set_id IN ({marks})", chunk):
            found[price_set_id] = Cancelled(text_time(at), by)
    return found


def cancel_schedule(conn: sqlite3.Connection, now: datetime, price_set_id: str,
                    user: str) -> tuple[Cancelled, bool]:
    """Cancels a pending schedule: (the cancellation, True), or (the earlier one, False) when it
    was cancelled already. Raises UnknownPriceSchedule, or ScheduleApplied once it is in force.
    """
    row = conn.execute("SELECT applied_at, cancelled_at, cancelled_by FROM price_schedules "
                       "WHERE price_set_id = ?", (price_set_id,)).fetchone()
    if row is None:
        raise UnknownPriceSchedule(price_set_id)
    applied_at, cancelled_at, cancelled_by = row
    if cancelled_at is not None:
        return Cancelled(text_time(cancelled_at), cancelled_by), False
    if applied_at is not None:
        raise ScheduleApplied(price_set_id)
    conn.execute("UPDATE price_schedules SET cancelled_at = ?, cancelled_by = ? "
                 "WHERE price_set_id = ?", (time_text(now), user, price_set_id))
    return Cancelled(now, user), True
