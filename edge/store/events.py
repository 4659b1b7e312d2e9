"""The station's event stream and its outbox.

Every event gets the next station-wide `seq` (1, 2, 3, ... across restarts, never reused) and
an outbox row that stays until the cloud acknowledges that seq (CONTRACT.md section 4: a broker
PUBACK is not a cloud commit). The functions here run inside the caller's transaction, so an
event is committed together with whatever it reports, or not at all.

Each event also carries the ledger's epoch (the `epoch` counter when it was written): the cloud
knows an event by (station, epoch, seq). A ledger restored from a backup, or one whose seqs the
cloud reports already taken by other events, starts a new epoch with an `epoch.started` event,
so a seq the cloud committed is never reused under the same key (docs/cloud.md, "Epochs").
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from domain.ids import IdMaker
from domain.model import Event
from edge.store.codec import dump_json, load_json, text_time, time_text

_COLUMNS = "seq, id, type, ts, data, epoch"

EPOCH_STARTED = "epoch.started"


def next_seq(conn: sqlite3.Connection) -> int:
    """Takes the next seq; only meaningful inside a write transaction that then uses it."""
    conn.execute("UPDATE counters SET value = value + 1 WHERE name = 'event_seq'")
    return last_seq(conn)


def last_seq(conn: sqlite3.Connection) -> int:
    seq = conn.execute("SELECT value FROM counters WHERE name = 'event_seq'").fetchone()[0]
    assert isinstance(seq, int)
    return seq


def current_epoch(conn: sqlite3.Connection) -> int:
    epoch = conn.execute("SELECT value FROM counters WHERE name = 'epoch'").fetchone()[0]
    assert isinstance(epoch, int)
    return epoch


def position(conn: sqlite3.Connection) -> tuple[int, int]:
    """(the current epoch, the highest seq ever assigned): what no genuine ack can exceed."""
    return current_epoch(conn), last_seq(conn)


def insert(conn: sqlite3.Connection, event: Event) -> None:
    """Stores `event` in the ledger's current epoch (whatever `event.epoch` says)."""
    conn.execute(
        f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        (event.seq, event.id, event.type, time_text(event.ts), dump_json(event.data),
         current_epoch(conn)),
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
    event = Event(seq=next_seq(conn), id=ids.new(now), type=type_, ts=now, data=stored,
                  epoch=current_epoch(conn))
    insert(conn, event)
    return event


def _row(row: tuple[Any, ...]) -> Event:
    seq, event_id, type_, ts, data, epoch = row
    return Event(seq=seq, id=event_id, type=type_, ts=text_time(ts), data=load_json(data),
                 epoch=epoch)


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
        "SELECT e.seq, e.id, e.type, e.ts, e.data, e.epoch FROM outbox AS o "
        "JOIN events AS e USING (seq) "
        "WHERE o.seq > ? ORDER BY o.seq LIMIT ?",
        (after_seq, limit),
    )
    return [_row(r) for r in rows]


def ack(conn: sqlite3.Connection, upto_seq: int, epoch: int = 1) -> int:
    """The cloud committed every event of `epoch` up to `upto_seq`: their outbox rows go.

    An ack names its epoch: acks of one epoch never remove an event of another (the cloud knows
    (epoch 1, seq 9) and (epoch 2, seq 9) as two events). Each outbox row in range costs one
    primary-key lookup of its event, however long the ledger.
    """
    return conn.execute(
        "DELETE FROM outbox WHERE seq <= ? "
        "AND (SELECT e.epoch FROM events AS e WHERE e.seq = outbox.seq) = ?",
        (upto_seq, epoch),
    ).rowcount


def start_epoch(
    conn: sqlite3.Connection, ids: IdMaker, now: datetime, *, reason: str,
    at_least: int = 0, first_seq: int | None = None, details: dict[str, Any] | None = None,
) -> Event:
    """Moves the ledger to a new epoch, above both the current one and `at_least`, and appends
    its `epoch.started` event (the first event of the new epoch unless `first_seq` says where
    the caller already moved earlier events to)."""
    previous = current_epoch(conn)
    epoch = max(previous, at_least) + 1
    conn.execute("UPDATE counters SET value = ? WHERE name = 'epoch'", (epoch,))
    seq = next_seq(conn)
    data: dict[str, Any] = {"epoch": epoch, "first_seq": seq if first_seq is None else first_seq,
                            "previous_epoch": previous, "reason": reason, **(details or {})}
    event = Event(seq=seq, id=ids.new(now), type=EPOCH_STARTED, ts=now,
                  data=load_json(dump_json(data)), epoch=epoch)
    insert(conn, event)
    return event


def resolve_conflict(
    conn: sqlite3.Connection, ids: IdMaker, now: datetime, *, epoch: int, seq: int,
    cloud_epoch: int,
) -> Event | None:
    """The cloud holds another event under (epoch, seq): starts a new epoch above `cloud_epoch`
    and moves every unacknowledged event from `seq` on into it, so they reach the cloud under
    keys it has never seen. None (nothing changed) unless the outbox still holds (epoch, seq):
    a conflict reported again, or about an event the cloud already acknowledged, is stale.

    Only unacknowledged events move: the cloud reports the lowest conflicting seq and commits
    nothing of the station's from there on, so every event from `seq` on is still in the outbox.
    """
    held = conn.execute(
        "SELECT 1 FROM outbox AS o JOIN events AS e USING (seq) WHERE o.seq = ? AND e.epoch = ?",
        (seq, epoch),
    ).fetchone()
    if held is None:
        return None
    new_epoch = max(current_epoch(conn), cloud_epoch) + 1
    moved = conn.execute(
        "UPDATE events SET epoch = ? WHERE seq IN (SELECT seq FROM outbox WHERE seq >= ?)",
        (new_epoch, seq),
    ).rowcount
    conflict = {"epoch": epoch, "seq": seq, "cloud_epoch": cloud_epoch, "moved": moved}
    return start_epoch(conn, ids, now, reason="conflict", at_least=new_epoch - 1,
                       first_seq=seq, details={"conflict": conflict})


def backlog(conn: sqlite3.Connection) -> int:
    count = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    assert isinstance(count, int)
    return count
