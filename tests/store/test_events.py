from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from edge.store import Store, StoreError

from .conftest import FakeClock, count, peek


def test_seq_starts_at_one_and_grows_by_one(store: Store) -> None:
    seqs = [store.append_event("pump.alarm", {"pump": 1, "n": n}).seq for n in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    assert store.last_seq() == 5


def test_seq_continues_across_close_and_reopen(db_path: Path, clock: FakeClock) -> None:
    with Store.open(db_path, clock=clock) as store:
        assert [store.append_event("a", {}).seq for _ in range(3)] == [1, 2, 3]
    with Store.open(db_path, clock=clock) as store:
        assert store.append_event("b", {}).seq == 4
        assert [e.seq for e in store.events_since(0)] == [1, 2, 3, 4]


def test_seq_is_never_reused_after_old_events_are_archived(db_path: Path) -> None:
    with Store.open(db_path) as store:
        for _ in range(3):
            store.append_event("a", {})
        store.outbox_ack(3)
    # Archiving moves old events elsewhere; MAX(seq)+1 would then hand out 1 again.
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("DELETE FROM events")
    conn.close()
    with Store.open(db_path) as store:
        assert store.append_event("b", {}).seq == 4


def test_event_reads_back_as_written(store: Store, clock: FakeClock) -> None:
    clock.now = datetime(2026, 11, 22, 9, 15, tzinfo=timezone(timedelta(hours=8)))
    written = store.append_event(
        "tank.reading",
        {"tank": 1, "volume": Decimal("12000.50"), "name": "92号汽油", "at": clock.now},
    )
    assert written.data == {
        "tank": 1,
        "volume": "12000.50",
        "name": "92号汽油",
        "at": "2026-11-22T09:15:00+08:00",
    }
    assert written.ts == datetime(2026, 11, 22, 1, 15, tzinfo=UTC)
    assert len(written.id) == 36
    [read] = store.events_since(0)
    assert read == written


def test_unstorable_data_takes_no_seq(store: Store, db_path: Path) -> None:
    store.append_event("a", {})
    with pytest.raises(TypeError):
        store.append_event("b", {"x": object()})
    with pytest.raises(ValueError):
        store.append_event("", {})
    assert store.append_event("c", {}).seq == 2
    assert count(db_path, "events") == 2


def test_events_since_pages_in_seq_order(store: Store) -> None:
    for n in range(10):
        store.append_event("e", {"n": n})
    assert [e.seq for e in store.events_since(3, limit=4)] == [4, 5, 6, 7]
    assert [e.data["n"] for e in store.events_since(8)] == [8, 9]
    assert store.events_since(10) == []
    with pytest.raises(ValueError):
        store.events_since(0, limit=0)


def test_every_event_waits_in_the_outbox_until_acked(store: Store, db_path: Path) -> None:
    for n in range(5):
        store.append_event("e", {"n": n})
    assert store.outbox_backlog() == 5
    assert [e.seq for e in store.outbox_pending()] == [1, 2, 3, 4, 5]
    assert [e.seq for e in store.outbox_pending(after_seq=2, limit=2)] == [3, 4]

    assert store.outbox_ack(3) == 3
    assert store.outbox_backlog() == 2
    assert [e.seq for e in store.outbox_pending()] == [4, 5]
    # An ack may come again (QoS 1) or go backwards: nothing more to remove.
    assert store.outbox_ack(3) == 0
    assert store.outbox_ack(1) == 0
    # Acked events stay in the event log.
    assert count(db_path, "events") == 5
    assert store.outbox_ack(99) == 2
    assert store.outbox_pending() == []


def test_outbox_survives_a_restart(db_path: Path) -> None:
    with Store.open(db_path) as store:
        ids = [store.append_event("e", {"n": n}).id for n in range(3)]
        store.outbox_ack(1)
    with Store.open(db_path) as store:
        pending = store.outbox_pending()
    # Sent again with the same id and seq.
    assert [(e.seq, e.id) for e in pending] == [(2, ids[1]), (3, ids[2])]


def test_meta_and_check_writable(store: Store, db_path: Path) -> None:
    assert store.get_meta("boot_id") is None
    store.set_meta("boot_id", "b1")
    store.set_meta("boot_id", "b2")
    assert store.get_meta("boot_id") == "b2"
    store.check_writable()
    assert peek(db_path, "SELECT value FROM meta WHERE key = 'last_write_check'") == [
        ("2026-11-22T01:15:00.000000+00:00",)
    ]


def test_a_closed_store_says_so(db_path: Path) -> None:
    store = Store.open(db_path)
    store.close()
    store.close()  # twice is fine
    with pytest.raises(StoreError, match="closed"):
        store.append_event("a", {})
