from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge.store import SchemaTooNew, Store, StoreError
from edge.store.schema import MIGRATIONS, migrate

from .conftest import peek


def test_an_empty_file_is_migrated_to_the_newest_schema(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.touch()  # an empty file, as a provisioning script might leave
    Store.open(db_path).close()
    assert peek(db_path, "PRAGMA user_version") == [(len(MIGRATIONS),)]
    tables = {row[0] for row in peek(db_path, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"events", "outbox", "sales", "payments", "totals", "users", "prices"} <= tables
    assert peek(db_path, "PRAGMA journal_mode") == [("wal",)]


def test_open_creates_the_directory(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "station.db"
    with Store.open(path) as store:
        assert store.path == path
    assert path.exists()


def test_reopening_migrates_nothing_again(db_path: Path) -> None:
    with Store.open(db_path) as store:
        store.append_event("a", {})
    with Store.open(db_path) as store:
        assert store.last_seq() == 1


def test_a_newer_database_is_refused_untouched(db_path: Path) -> None:
    Store.open(db_path).close()
    newer = len(MIGRATIONS) + 1
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {newer}")
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(SchemaTooNew, match=f"schema version {newer}") as raised:
        Store.open(db_path)
    assert isinstance(raised.value, StoreError)
    assert (raised.value.found, raised.value.known) == (newer, len(MIGRATIONS))
    assert db_path.read_bytes() == before


def test_a_failing_migration_leaves_the_previous_version(tmp_path: Path) -> None:
    steps = (
        ("CREATE TABLE a (x INTEGER)",),
        ("CREATE TABLE b (x INTEGER)", "INSERT INTO a VALUES (1)", "THIS IS NOT SQL"),
    )
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    try:
        with pytest.raises(sqlite3.OperationalError):
            migrate(conn, steps)
        assert conn.execute("PRAGMA user_version").fetchone() == (1,)
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert names == {"a"}
        assert conn.execute("SELECT COUNT(*) FROM a").fetchone() == (0,)
        assert migrate(conn, steps[:1]) == 1
    finally:
        conn.close()


def test_sales_have_the_indexes_the_queries_need(db_path: Path) -> None:
    Store.open(db_path).close()
    plan = peek(db_path, "EXPLAIN QUERY PLAN SELECT * FROM sales WHERE seq > 5 AND paid = 0")
    assert any("sales_unpaid" in str(row) for row in plan)
    plan = peek(
        db_path, "EXPLAIN QUERY PLAN SELECT * FROM sales WHERE pump=1 AND nozzle=1 AND fill_key='1'"
    )
    assert any("INDEX" in str(row) for row in plan)
