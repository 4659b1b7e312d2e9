"""Backups into a folder, kept to a number, each verified, the last good one remembered.

`forecourt db backup --dir DIR --keep N` (the nightly timer) writes `DIR/station-<UTC time>.db`
with SQLite's online backup (edge/store/maintenance.py), then checks the copy on its own, read
back from where it landed: SQLite's integrity check, the schema version, and an event log that
runs on to at least where the database stood when the copy began. Only a verified copy counts:
then the oldest copies beyond N are deleted, and `<database>.last-backup.json` records it, which
the daemon shows in `GET /api/v1/health` (`backup`), so the console can show its age.

A copy meant to leave the box (a second disk, a USB stick) is refused when its folder is on the
database's own file system: a USB stick that is not mounted leaves an empty mount point on the
system disk, and copies there would die with the disk they were meant to outlive. Copies on the
same disk are taken only when asked for (`--same-disk`, the default unit's local copies).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from domain.files import create_private
from edge.store.maintenance import backup
from edge.store.store import Store

NAME = re.compile(r"^station-\d{8}T\d{6}Z\.db$")
STATUS_SUFFIX = ".last-backup.json"


class BackupRefused(Exception):
    """The copy was not made, or not kept: nothing older was deleted."""


@dataclass(frozen=True)
class Done:
    file: Path
    size: int
    offsite: bool
    removed: tuple[Path, ...]
    last_seq: int


def status_file(database: Path) -> Path:
    return database.with_name(database.name + STATUS_SUFFIX)


def same_file_system(a: Path, b: Path) -> bool:
    return a.stat().st_dev == b.stat().st_dev


def _facts(conn: sqlite3.Connection) -> tuple[int, int]:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    seq = int(conn.execute("SELECT value FROM counters WHERE name = 'event_seq'").fetchone()[0])
    return version, seq


def check_copy(copy: Path, *, version: int, at_least_seq: int) -> int:
    """Read the copy back, read-only: intact, the same schema, events up to `at_least_seq`.
    Returns the copy's last event seq."""
    try:
        # immutable: nobody writes a finished copy, so SQLite needs no -wal or -shm beside it.
        conn = sqlite3.connect(f"{copy.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
        try:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            copy_version, seq = _facts(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BackupRefused(f"the copy {copy} cannot be read back: {exc}") from None
    if problems != ["ok"]:
        raise BackupRefused(f"the copy {copy} fails its integrity check: {problems[:3]}")
    if copy_version != version:
        raise BackupRefused(f"the copy {copy} has schema {copy_version}, the database {version}")
    if seq < at_least_seq:
        raise BackupRefused(f"the copy {copy} ends at event {seq}, before {at_least_seq}")
    return seq


def backup_into(store: Store, database: Path, folder: Path, *, keep: int, same_disk: bool,
                now: datetime) -> Done:
    if keep < 1:
        raise BackupRefused("--keep must be 1 or more")
    if not folder.is_dir():
        raise BackupRefused(f"{folder} does not exist: mount the backup disk (or create the "
                            "folder on it); it is not made here, where it might land on the "
                            "system disk")
    offsite = not same_file_system(folder, database)
    if not offsite and not same_disk:
        raise BackupRefused(f"{folder} is on the same file system as {database}: a copy there "
                            "dies with that disk (is the backup disk mounted?); --same-disk "
                            "takes it anyway")
    with store._db.read() as conn:
        version, seq_before = _facts(conn)
    target = folder / f"station-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}.db"
    try:
        size = backup(store, target)
    except (OSError, sqlite3.Error, ValueError) as exc:
        raise BackupRefused(f"the copy to {target} failed: {exc}") from None
    try:
        last_seq = check_copy(target, version=version, at_least_seq=seq_before)
    except BackupRefused:
        target.rename(target.with_name(target.name + ".bad"))
        raise
    copies = sorted((p for p in folder.iterdir() if NAME.match(p.name)), reverse=True)
    removed = tuple(copies[keep:])
    for old in removed:
        for leftover in (old, old.with_name(old.name + "-wal"), old.with_name(old.name + "-shm")):
            leftover.unlink(missing_ok=True)
    record(database, {"at": now.astimezone(UTC).isoformat(timespec="seconds"),
                      "file": str(target), "size": size, "offsite": offsite,
                      "last_seq": last_seq})
    return Done(target, size, offsite, removed, last_seq)


def record(database: Path, facts: dict[str, Any]) -> None:
    """The last good backup, beside the database (0600, replaced whole)."""
    path = status_file(database)
    partial = path.with_name(path.name + ".partial")
    create_private(partial)
    partial.write_text(json.dumps(facts, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(partial, path)


def last_backup(database: Path, now: datetime) -> dict[str, Any] | None:
    """What health shows: when the last verified copy was made, how long ago, where; None
    when there was none (or its record cannot be read)."""
    try:
        facts = json.loads(status_file(database).read_text(encoding="utf-8"))
        at = datetime.fromisoformat(facts["at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return {"at": at.isoformat(timespec="seconds"),
            "age_seconds": max(0, int((now - at).total_seconds())),
            "file": facts.get("file"), "offsite": bool(facts.get("offsite")),
            "last_seq": facts.get("last_seq")}
