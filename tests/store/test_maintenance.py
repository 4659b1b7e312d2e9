"""`forecourt db backup` and `forecourt db verify` on real SQLite files."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from edge.store import Store
from edge.store.maintenance import backup, verify
from tests.helpers import StationSpec


def station_config(tmp_path: Path) -> tuple[Path, Path]:
    db = tmp_path / "station.db"
    config = tmp_path / "station.toml"
    config.write_text(StationSpec(port_url="socket://127.0.0.1:9", db=db, api_port=8080).toml(),
                      "utf-8")
    return config, db


def test_a_backup_taken_while_events_are_written_is_a_consistent_copy(tmp_path: Path) -> None:
    with Store.open(tmp_path / "station.db") as store:
        for n in range(200):
            store.append_event("test.event", {"n": n})
        stop = threading.Event()

        def writer() -> None:
            n = 200
            while not stop.is_set():
                store.append_event("test.event", {"n": n})
                n += 1

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            size = backup(store, tmp_path / "backups" / "copy.db")
        finally:
            stop.set()
            thread.join()
    assert size > 0
    copy = sqlite3.connect(tmp_path / "backups" / "copy.db")
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    low, high, count = copy.execute("SELECT MIN(seq), MAX(seq), COUNT(*) FROM events").fetchone()
    assert low == 1 and count == high >= 200  # a gapless snapshot, at least what was there
    copy.close()
    with Store.open(tmp_path / "backups" / "copy.db") as restored:
        assert verify(restored).ok


def test_a_backup_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "copy.db").write_text("keep me")
    with Store.open(tmp_path / "station.db") as store, pytest.raises(FileExistsError):
        backup(store, tmp_path / "copy.db")
    assert (tmp_path / "copy.db").read_text() == "keep me"


def test_verify_finds_a_missing_event_still_in_the_outbox(tmp_path: Path) -> None:
    with Store.open(tmp_path / "station.db") as store:
        for n in range(5):
            store.append_event("test.event", {"n": n})
        store.audit_append(actor="test", action="test.action")
        assert verify(store).ok
    raw = sqlite3.connect(tmp_path / "station.db")
    raw.execute("DELETE FROM events WHERE seq = 3")  # foreign keys are off on a raw connection
    raw.commit()
    raw.close()
    with Store.open(tmp_path / "station.db") as store:
        report = verify(store)
    failed = {f.check for f in report.findings if not f.ok}
    assert failed == {"outbox", "event seq"}, report.findings


def test_the_cli_backs_up_and_verifies(tmp_path: Path) -> None:
    config, db = station_config(tmp_path)
    with Store.open(db) as store:
        store.append_event("test.event", {"n": 1})
    run = [sys.executable, "-m", "edge.cli", "db"]
    done = subprocess.run([*run, "backup", "--config", str(config), "--to",
                           str(tmp_path / "b.db")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "b.db").exists()
    ok = subprocess.run([*run, "verify", "--config", str(config)], capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ok   audit chain" in ok.stdout
    raw = sqlite3.connect(db)
    raw.execute("UPDATE counters SET value = value + 5 WHERE name = 'event_seq'")
    raw.commit()
    raw.close()
    broken = subprocess.run([*run, "verify", "--config", str(config)], capture_output=True,
                            text=True, timeout=60)
    assert broken.returncode == 1
    assert "FAIL event seq" in broken.stdout
