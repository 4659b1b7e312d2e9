"""`forecourt db backup --dir`: copies on another disk, kept to a number, each read back and
verified, the last good one in health."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domain.files import mode_of
from edge.backups import BackupRefused, backup_into, check_copy, last_backup, status_file
from edge.cli import main
from edge.store import Store
from tests.store.conftest import FakeClock, Pump

NOW = datetime(2026, 11, 22, 19, 30, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "state" / "station.db"
    path.parent.mkdir()
    clock = FakeClock(NOW - timedelta(hours=1))
    with Store.open(path, clock=clock) as store:
        pump = Pump(clock=clock)
        for _ in range(3):
            clock.advance(timedelta(minutes=5))
            store.record_sale(pump.fill("10.00", "75.00"))
    return path


@pytest.fixture
def other_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on another file system than tmp_path: /dev/shm (tmpfs) where it is one."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second file system here (/dev/shm is not a tmpfs of its own)")
    folder = Path(os.path.realpath(shm)) / f"forecourt-test-{os.getpid()}-{tmp_path.name}"
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def config_for(db: Path) -> Path:
    config = db.parent.parent / "station.toml"
    text = (Path(__file__).parents[2] / "config" / "minimal.toml").read_text()
    config.write_text(text + f'\n[storage]\npath = "{db}"\n')
    return config


def test_a_copy_on_the_databases_own_disk_is_refused_unless_asked(db: Path) -> None:
    folder = db.parent / "backups"
    folder.mkdir()
    with Store.open(db) as store:
        with pytest.raises(BackupRefused, match="same file system"):
            backup_into(store, db, folder, keep=3, same_disk=False, now=NOW)
        assert list(folder.iterdir()) == []
        done = backup_into(store, db, folder, keep=3, same_disk=True, now=NOW)
    assert not done.offsite and done.file.parent == folder
    assert last_backup(db, NOW + timedelta(minutes=1))["offsite"] is False  # type: ignore[index]


def test_a_missing_folder_is_not_made_on_the_system_disk(db: Path, tmp_path: Path) -> None:
    config = config_for(db)
    assert main(["db", "backup", "--config", str(config), "--dir",
                 str(tmp_path / "usb-not-mounted" / "forecourt")]) == 1
    assert not (tmp_path / "usb-not-mounted").exists()
    assert last_backup(db, NOW) is None


def test_copies_on_another_disk_are_verified_and_kept_to_a_number(db: Path,
                                                                  other_disk: Path) -> None:
    with Store.open(db) as store:
        made = [backup_into(store, db, other_disk, keep=2, same_disk=False,
                            now=NOW + timedelta(days=day)) for day in range(4)]
    assert all(done.offsite for done in made)
    assert sorted(p.name for p in other_disk.iterdir()) == [
        "station-20261124T193000Z.db", "station-20261125T193000Z.db"]
    assert made[-1].removed == (other_disk / "station-20261123T193000Z.db",)
    assert made[-1].last_seq >= 3
    assert mode_of(made[-1].file) == 0o600
    shown = last_backup(db, NOW + timedelta(days=3, hours=2))
    assert shown == {"at": "2026-11-25T19:30:00+00:00", "age_seconds": 7200,
                     "file": str(made[-1].file), "offsite": True,
                     "last_seq": made[-1].last_seq}
    assert mode_of(status_file(db)) == 0o600


def test_the_command_line_reports_what_it_kept(db: Path, other_disk: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    config = config_for(db)
    assert main(["db", "backup", "--config", str(config), "--dir", str(other_disk),
                 "--keep", "1"]) == 0
    out = capsys.readouterr().out
    assert "on another disk" in out and "verified" in out
    assert len(list(other_disk.iterdir())) == 1


def test_a_copy_that_does_not_read_back_whole_is_refused(db: Path, tmp_path: Path) -> None:
    with sqlite3.connect(db) as conn:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        seq = conn.execute("SELECT value FROM counters WHERE name = 'event_seq'").fetchone()[0]
    bad = tmp_path / "bad.db"
    shutil.copy(db, bad)
    with pytest.raises(BackupRefused, match="schema"):
        check_copy(bad, version=version + 1, at_least_seq=seq)
    with pytest.raises(BackupRefused, match="ends at event"):
        check_copy(bad, version=version, at_least_seq=seq + 1)
    data = bytearray(bad.read_bytes())
    page = 4096
    data[page * 2: page * 3] = b"\xff" * page
    bad.write_bytes(bytes(data))
    with pytest.raises(BackupRefused):
        check_copy(bad, version=version, at_least_seq=seq)
    assert check_copy(db, version=version, at_least_seq=seq) == seq
