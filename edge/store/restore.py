"""`forecourt db restore`: a backup put back as the station's database, in a new epoch.

A backup holds the ledger as it was: its seq counter is behind what the station went on to
assign, and behind what the cloud may have committed. Sales recorded after the restore would
reuse those seqs; under a new epoch they are new keys for the cloud, which deduplicates by
(station, epoch, seq) (docs/cloud.md, "Epochs"). So the restore is one step that cannot be half
done: the backup is copied and checked, moved to a new epoch with its `epoch.started` event
(migrated first if it is from an older release), and only then written over the database.

- The daemon must be stopped: the restore takes SQLite's exclusive lock on the database and
  holds it until the end, so a daemon that is running refuses it (`in use`) and one that starts
  meanwhile waits, then opens the restored database.
- What is replaced is kept: a copy beside it, `<name>.replaced-<UTC time>`, written with SQLite's
  backup API (or, for a file SQLite cannot read any more, its files as they were).
- The restored content is written into the database with SQLite's backup API, the way the
  sqlite3 shell's `.restore` does it: the file keeps its name, owner and mode. A database that
  is missing, or damaged beyond SQLite's reading, is replaced by renaming the copy into place.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from domain.files import create_private
from edge.store.schema import MIGRATIONS
from edge.store.store import Store

__all__ = ["RestoreError", "Restored", "restore"]

_SIDE_FILES = ("-wal", "-shm")


class _Unreadable(Exception):
    """The database to replace is not one SQLite can lock and read (damaged)."""


class RestoreError(Exception):
    """The restore was refused or failed; the database is as it was. `code` names why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Restored:
    database: Path
    replaced: Path | None  # the copy of what the database held before, None when it had none
    epoch: int  # the epoch the restored ledger is in now
    first_seq: int  # the seq of its epoch.started event: new events follow it
    backup_last_seq: int  # the highest seq in the backup


def _check_backup(backup: Path) -> int:
    """The backup's schema version, once it is known to be a whole ledger SQLite can read."""
    if not backup.is_file():
        raise RestoreError("no_backup", f"{backup} is not a file")
    try:
        with closing(sqlite3.connect(f"{backup.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            tables = {row[0] for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error as exc:
        raise RestoreError("bad_backup", f"{backup} is not a database SQLite can read: {exc}"
                           ) from None
    if problems != ["ok"]:
        raise RestoreError("bad_backup", f"{backup} fails its integrity check: "
                           f"{'; '.join(problems[:3])}")
    if version < 1 or not {"counters", "events", "outbox"} <= tables:
        raise RestoreError("bad_backup", f"{backup} is not a forecourt ledger")
    if version > len(MIGRATIONS):
        raise RestoreError("bad_backup", f"{backup} was written by a newer release (schema "
                           f"v{version}, this release knows v{len(MIGRATIONS)})")
    return version


@contextmanager
def _exclusive(database: Path) -> Iterator[sqlite3.Connection]:
    """A connection holding the database's exclusive lock until the block ends (EXCLUSIVE
    locking mode keeps the lock after the transaction that took it)."""
    try:
        conn = sqlite3.connect(database, timeout=0, isolation_level=None)
    except sqlite3.Error as exc:
        raise RestoreError("in_use", f"cannot open {database}: {exc}") from None
    try:
        try:
            conn.execute("PRAGMA locking_mode = EXCLUSIVE")
            conn.execute("BEGIN EXCLUSIVE")
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise RestoreError(
                    "in_use", f"{database} is in use: stop the daemon first "
                    "(systemctl stop forecourt), then restore") from None
            raise _Unreadable(str(exc)) from None
        except sqlite3.DatabaseError as exc:  # not a database any more: what a restore is for
            raise _Unreadable(str(exc)) from None
        yield conn
    finally:
        conn.close()


def _keep(conn: sqlite3.Connection | None, database: Path, kept: Path) -> None:
    """A copy of what `database` holds now, at `kept` (0600)."""
    create_private(kept)
    if conn is not None:
        try:
            with closing(sqlite3.connect(kept)) as copy:
                conn.backup(copy)
            return
        except sqlite3.Error:
            pass  # a database SQLite cannot read: keep its files exactly as they are instead
    shutil.copyfile(database, kept)
    for suffix in _SIDE_FILES:
        side = database.with_name(database.name + suffix)
        if side.exists():
            target = kept.with_name(kept.name + suffix)
            create_private(target)
            shutil.copyfile(side, target)


def restore(backup: Path, database: Path, *, now: datetime) -> Restored:
    """Restores `backup` (a `forecourt db backup` file) as `database`, in a new epoch.

    Raises RestoreError, with the database untouched, when the backup is not a readable ledger,
    or the database is in use.
    """
    backup, database = Path(backup), Path(database)
    if backup.exists() and database.exists() and backup.resolve() == database.resolve():
        raise RestoreError("same_file", f"{backup} is the database itself")
    _check_backup(backup)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    staged = database.with_name(f"{database.name}.restoring-{stamp}")
    kept = database.with_name(f"{database.name}.replaced-{stamp}")
    if kept.exists():
        raise RestoreError("exists", f"{kept} exists; wait a second and try again")
    database.parent.mkdir(parents=True, exist_ok=True)
    try:
        # 1. The backup, copied and moved to its new epoch beside the database (migrated on the
        #    way if it is older).
        create_private(staged)
        with closing(sqlite3.connect(f"{backup.resolve().as_uri()}?mode=ro", uri=True)) as src, \
                closing(sqlite3.connect(staged)) as copy:
            src.backup(copy)
        with Store.open(staged) as store:
            _, backup_last_seq = store.ledger_position()
            started = store.start_epoch(
                "restore", {"backup": backup.name, "backup_last_seq": backup_last_seq})
        # 2. Over the database, under its exclusive lock, keeping what it held. A database
        #    SQLite cannot read any more is kept as its files and replaced by a rename.
        existed = database.exists()
        if not existed:
            os.replace(staged, database)
        else:
            try:
                with _exclusive(database) as target:
                    _keep(target, database, kept)
                    with closing(sqlite3.connect(staged)) as source:
                        source.backup(target)
            except _Unreadable:
                _keep(None, database, kept)
                for suffix in _SIDE_FILES:
                    with suppress(FileNotFoundError):
                        database.with_name(database.name + suffix).unlink()
                os.replace(staged, database)
    except sqlite3.Error as exc:
        raise RestoreError("failed", f"restore failed: {exc}") from None
    finally:
        for leftover in (staged, *staged.parent.glob(f"{staged.name}*")):
            with suppress(FileNotFoundError):
                leftover.unlink()
    return Restored(database=database, replaced=kept if existed else None,
                    epoch=started.epoch, first_seq=started.seq,
                    backup_last_seq=backup_last_seq)
