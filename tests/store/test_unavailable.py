from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from edge.store import Store, StoreError, StoreUnavailable
from edge.store.errors import translate

from .conftest import FakeClock, Pump, count, peek, store_connection

LEDGER_TABLES = ("sales", "totals", "events", "outbox", "payments")


def snapshot(path: Path) -> dict[str, int]:
    counts = {table: count(path, table) for table in LEDGER_TABLES}
    counts["event_seq"] = peek(path, "SELECT value FROM counters WHERE name = 'event_seq'")[0][0]
    return counts


def test_disk_full_mid_sale_raises_unavailable_and_writes_nothing(
    store: Store, pump: Pump, db_path: Path
) -> None:
    store.record_sale(pump.fill())
    before = snapshot(db_path)
    conn = store_connection(store)
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    # A real SQLITE_FULL: the database may grow by two pages. The sale row and its
    # sale.completed event fit; the large discrepancy event after them does not.
    conn.execute(f"PRAGMA max_page_count = {pages + 2}")
    failing = pump.fill(discrepancies=({"kind": "volume", "note": "x" * 100_000},))
    with pytest.raises(StoreUnavailable) as raised:
        store.record_sale(failing)
    assert raised.value.reason == "disk_full"
    assert snapshot(db_path) == before

    conn.execute("PRAGMA max_page_count = 1073741823")  # space freed
    store.check_writable()
    sale, created = store.record_sale(failing)
    assert created and sale.seq == 2
    assert [e.type for e in store.events_since(1)] == [
        "sale.completed",
        "reconciliation.discrepancy",
    ]


def test_filling_the_disk_never_leaves_half_a_sale(store: Store, pump: Pump, db_path: Path) -> None:
    conn = store_connection(store)
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + 4}")
    recorded = 0
    with pytest.raises(StoreUnavailable):
        for _ in range(5000):
            store.record_sale(pump.fill(discrepancies=({"n": recorded},)))
            recorded += 1
    assert recorded > 0
    after = snapshot(db_path)
    assert after == {
        "sales": recorded,
        "totals": recorded,
        "events": 2 * recorded,
        "outbox": 2 * recorded,
        "payments": 0,
        "event_seq": 2 * recorded,
    }
    with pytest.raises(StoreUnavailable):
        store.append_event("pump.alarm", {"pump": 1, "padding": "x" * 50_000})
    conn.execute("PRAGMA max_page_count = 1073741823")
    assert store.append_event("pump.alarm", {"pump": 1}).seq == 2 * recorded + 1


def test_a_locked_database_raises_unavailable(db_path: Path, clock: FakeClock, pump: Pump) -> None:
    with Store.open(db_path, clock=clock, busy_timeout_ms=50) as store:
        store.record_sale(pump.fill())
        other = sqlite3.connect(db_path, isolation_level=None)
        try:
            other.execute("BEGIN EXCLUSIVE")
            with pytest.raises(StoreUnavailable) as raised:
                store.record_sale(pump.fill())
            assert raised.value.reason == "locked"
            # Reads go on while another process writes (WAL).
            assert [s.seq for s in store.sales()] == [1]
            other.execute("ROLLBACK")
        finally:
            other.close()
        retried, created = store.record_sale(pump.fill())
        assert created and retried.seq == 2


def test_a_read_only_database_raises_unavailable_and_logs_changes_only(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    conn = store_connection(store)
    conn.execute("PRAGMA query_only = 1")
    caplog.set_level(logging.DEBUG, logger="edge.store")
    for _ in range(3):
        with pytest.raises(StoreUnavailable) as raised:
            store.append_event("a", {})
        assert raised.value.reason == "read_only"
    levels = [r.levelno for r in caplog.records]
    assert levels == [logging.ERROR, logging.DEBUG, logging.DEBUG]

    caplog.clear()
    conn.execute("PRAGMA query_only = 0")
    store.check_writable()
    store.check_writable()
    assert [(r.levelno, "writable again" in r.getMessage()) for r in caplog.records] == [
        (logging.INFO, True)
    ]
    assert store.append_event("a", {}).seq == 1


def test_a_path_that_cannot_be_opened_raises_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable) as raised:
        Store.open(tmp_path)  # a directory
    assert raised.value.reason == "cannot_open"
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreUnavailable):
        Store.open(blocker / "station.db")


@pytest.mark.parametrize(
    ("code", "message", "reason"),
    [
        (13, "database or disk is full", "disk_full"),
        (13, "some other wording", "disk_full"),
        (5, "database is locked", "locked"),
        (517, "database is locked", "locked"),  # SQLITE_BUSY_SNAPSHOT
        (522, "disk I/O error", "io_error"),  # SQLITE_IOERR_SHORT_READ
        (1032, "attempt to write a readonly database", "read_only"),  # SQLITE_READONLY_DBMOVED
        (None, "disk I/O error", "io_error"),  # builds without error codes
        (None, "database or disk is full", "disk_full"),
    ],
)
def test_translate_maps_unavailability(code: int | None, message: str, reason: str) -> None:
    error = sqlite3.OperationalError(message)
    if code is not None:
        error.sqlite_errorcode = code
    translated = translate(error)
    assert isinstance(translated, StoreUnavailable)
    assert translated.reason == reason
    assert message in str(translated)


def test_translate_keeps_other_errors_plain() -> None:
    error = sqlite3.IntegrityError("UNIQUE constraint failed: sales.id")
    error.sqlite_errorcode = 2067
    translated = translate(error)
    assert type(translated) is StoreError
    assert "UNIQUE constraint failed" in str(translated)
