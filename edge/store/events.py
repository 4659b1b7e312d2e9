"""The station's event stream and its outbox.

Every event gets the next station-wide `seq` (1, 2, 3, ... across restarts, never reused) and
an outbox row that stays until the cloud acknowledges that seq (CONTRACT.md section 4: a broker
PUBACK is not a cloud commit). The functions here run inside the caller's transaction, so an
event is committed together with whatever it reports, or not at all.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from domain.model import Event
from edge.store.codec import dump_json, load_json, text_time, time_text
from edge.store.ids import IdMaker

_COLUMNS = "seq, id, type, ts, data"


def next_seq(conn: sqlite3.Connection) -> int:
    """Takes the next seq; only meaningful inside a write transaction that then uses it."""
    conn.execute("UPDATE counters SET value = value + 1 WHERE name = 'event_seq'")
    return last_seq(conn)


def last_seq(conn: sqlite3.Connection) -> int:
    seq = conn.execute("SELECT value FROM counters WHERE name = 'event_seq'").fetchone()[0]
    assert isinstance(seq, int)
    return seq


def insert(conn: sqlite3.Connection, event: Event) -> None:
    conn.execute(
        f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
        (event.seq, event.id, event.type, time_text(event.ts), dump_json(event.data)),
    )
    conn.execute("INSERT INTO outbox (seq) VALUES (?)", (event.seq,))


def append(
    conn: sqlite3.Connection, ids: IdMaker, now: datetime, type_: str, data: dict[str, Any]
) -> Event:
    """Appends an event; the returned Event equals what events_since() later reads back."""
    if not type_:
        raise ValueError("an event needs a type")
    # Through JSON before a seq is taken: bad data fails before anything is written.
    stored = load_json(dump_json(data))
    event = Event(seq=next_seq(conn), id=ids.new(now), type=type_, ts=now, data=stored)
    insert(conn, event)
    return event


def _row(row: tuple[Any, ...]) -> Event:
    seq, event_id, type_, ts, data = row
    return Event(seq=seq, id=event_id, type=type_, ts=text_time(ts), data=load_json(data))


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")


def since(conn: sqlite3.Connection, seq: int, limit: int) -> list[Event]:
    _check_limit(limit)
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
    )
    return [_row(r) for r in rows]


def pending(conn: sqlite3.Connection, after_seq: int, limit: int) -> list[Event]:
    _check_limit(limit)
    rows = conn.execute(
        "SELECT e.seq, e.id, e.type, e.ts, e.data FROM outbox AS o JOIN events AS e USING (seq) "
        "WHERE o.seq > ? ORDER BY o.seq LIMIT ?",
        (after_seq, limit),
    )
    return [_row(r) for r in rows]


def ack(conn: sqlite3.Connection, upto_seq: int) -> int:
    return conn.execute("DELETE FROM outbox WHERE seq <= ?", (upto_seq,)).rowcount


def backlog(conn: sqlite3.Connection) -> int:
    count = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    assert isinstance(count, int)
    return count
