"""The one SQLite connection of a store, and its transactions.

Threading: the controller writes from one worker thread while the API reads from others. They
share ONE connection (opened with check_same_thread=False) and every use of it holds one
re-entrant lock, so transactions never interleave. Reads are short and WAL lets other
processes (backups, the sqlite3 shell) read while we write. A second connection per reader
thread would buy little on a station PC and would make "what is committed" harder to reason
about.

Every write is `BEGIN IMMEDIATE ... COMMIT`: the write lock is taken up front, so a busy
database fails at BEGIN (after the busy timeout) rather than half-way through. Any failure rolls
back the whole transaction, and sqlite3 errors leave as StoreError/StoreUnavailable.

Upgrades: before a database that has data (schema version 1 or later) is migrated to a newer
schema, a copy of it is written beside it as `<name>.pre-v<N>.bak`, N being the version it is
about to get, with SQLite's backup API. Only then do the migrations run (each in its own
transaction, schema.py). The copy is the rollback path: the previous release opens it as it is.
When the copy cannot be written (disk full) nothing is migrated and the open fails, so an
upgrade never changes a database that has no copy. The newest KEEP_MIGRATION_COPIES copies are
kept. Under systemd the copy and the migration report progress and extend the start timeout.

Modes: the database, its `-wal`, `-shm` and journal, and the pre-migration copies hold PIN
hashes and the books, so they are 0600 whatever the umask (domain/files.py). The file is made
0600 before SQLite opens it (SQLite gives its `-wal` and `-shm` the database file's mode), a
file an older release left readable is tightened at open, and folders created here are 0700.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

from domain.files import create_private, private_dir, tighten
from edge.notify import SystemdNotifier
from edge.store.codec import to_utc
from edge.store.errors import StoreError, StoreUnavailable, translate
from edge.store.schema import MIGRATIONS, check_version, migrate

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

KEEP_MIGRATION_COPIES = 3  # pre-migration copies kept beside a database, newest first
_COPY_STEP_PAGES = 1024  # pages per backup step: progress (and systemd) hear of each step
_COPY_STALE_SECONDS = 600  # a partial copy untouched this long was left by a process that died
# How long systemd should wait for the next progress report before it gives up on the start.
_EXTEND_COPY_USEC = 60_000_000
_EXTEND_MIGRATION_USEC = 600_000_000  # a migration step reports nothing until it is done


def utc_now() -> datetime:
    return datetime.now(UTC)


class Database:
    def __init__(self, conn: sqlite3.Connection, clock: Clock, path: Path) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._clock = clock
        self._lock = threading.RLock()
        self.path = path
        # The reason of the last failed write, so that a long outage logs once, not per write.
        self._unavailable: str | None = None

    @classmethod
    def open(cls, path: Path, *, clock: Clock, busy_timeout_ms: int) -> Database:
        try:
            private_dir(path.parent)
        except OSError as exc:
            raise StoreUnavailable("cannot_open", f"cannot create {path.parent}: {exc}") from exc
        _make_private(path)
        try:
            conn = sqlite3.connect(
                path,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,  # see the module docstring: one lock guards it
                timeout=busy_timeout_ms / 1000,
            )
        except sqlite3.Error as exc:
            raise translate(exc) from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms):d}")
            found = check_version(conn)  # before anything below changes the file
            target = len(MIGRATIONS)
            # Version 0 is a new, empty file: nothing to keep, nothing to report.
            upgrading = 0 < found < target
            notifier = SystemdNotifier()
            if upgrading:
                copy_before_migration(conn, path, found, target, notifier)
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                # Still correct (rollback journal), only readers block the writer more.
                log.warning("%s: WAL is not available here, using journal mode %s", path, mode)
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            if upgrading:
                notifier.notify(f"STATUS=migrating {path.name} from schema v{found} to v{target}",
                                f"EXTEND_TIMEOUT_USEC={_EXTEND_MIGRATION_USEC}")
            migrate(conn)
            if upgrading:
                log.info("%s: migrated from schema v%d to v%d", path, found, target)
        except sqlite3.Error as exc:
            conn.close()
            raise translate(exc) from exc
        except BaseException:
            conn.close()
            raise
        return cls(conn, clock, path)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def now(self) -> datetime:
        """The clock's time, in UTC: what is stored is what is returned."""
        return to_utc(self._clock())

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("the store is closed")
        return self._conn

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connection()
            try:
                yield conn
            except sqlite3.Error as exc:
                raise translate(exc) from exc

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One transaction: all of the block's writes are committed, or none."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    self._rollback(conn)
                    raise
            except sqlite3.Error as exc:
                error = translate(exc)
                self._note_failure(error)
                raise error from exc
            self._note_success()

    def _rollback(self, conn: sqlite3.Connection) -> None:
        # SQLite rolls back by itself on some errors (SQLITE_FULL, SQLITE_IOERR, ...).
        if not conn.in_transaction:
            return
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            # The journal still undoes the transaction when the database is next opened.
            log.error("%s: rollback failed: %s", self.path, exc)

    def _note_failure(self, error: StoreError) -> None:
        if not isinstance(error, StoreUnavailable):
            log.error("%s: %s", self.path, error)
            return
        if self._unavailable is None:
            log.error("%s: %s", self.path, error)
        else:
            log.debug("%s: still unavailable: %s", self.path, error)
        self._unavailable = error.reason

    def _note_success(self) -> None:
        if self._unavailable is not None:
            log.info("%s: writable again (was %s)", self.path, self._unavailable)
            self._unavailable = None


# --- the copy kept before a migration


def copy_path(path: Path, version: int) -> Path:
    """Where the copy of `path` taken before migrating it to schema `version` is kept."""
    return path.with_name(f"{path.name}.pre-v{version:d}.bak")


def migration_copies(path: Path) -> list[tuple[int, Path]]:
    """The pre-migration copies beside `path`, newest (highest version) first."""
    pattern = re.compile(re.escape(path.name) + r"\.pre-v(\d+)\.bak")
    found: list[tuple[int, Path]] = []
    for candidate in path.parent.glob(f"{path.name}.pre-v*.bak"):
        match = pattern.fullmatch(candidate.name)
        if match is not None:
            found.append((int(match.group(1)), candidate))
    return sorted(found, reverse=True)


def copy_before_migration(conn: sqlite3.Connection, path: Path, found: int, target: int,
                          notifier: SystemdNotifier) -> Path:
    """Copies the database open on `conn` (at schema `found`) before it is migrated to `target`.

    Raises StoreUnavailable, leaving no partial file behind, when the copy cannot be written.
    """
    final = copy_path(path, target)
    # The pid keeps two processes opening the database at once from writing one file.
    partial = final.with_name(f"{final.name}.{os.getpid()}.partial")
    _remove_stale_partials(path)
    _discard(partial)  # one left by an earlier process that had the same pid (after a reboot)
    notifier.notify(f"STATUS=copying {path.name} (schema v{found}) to {final.name} before "
                    f"migrating it to v{target}", f"EXTEND_TIMEOUT_USEC={_EXTEND_COPY_USEC}")
    last_report = time.monotonic()

    def progress(status: int, remaining: int, total: int) -> None:
        nonlocal last_report
        now = time.monotonic()
        if now - last_report >= 1.0:  # a datagram a second is plenty for systemd
            last_report = now
            notifier.notify(f"STATUS=copying {path.name}: {total - remaining} of {total} pages",
                            f"EXTEND_TIMEOUT_USEC={_EXTEND_COPY_USEC}")

    try:
        create_private(partial)
        copy = sqlite3.connect(partial, isolation_level=None)
        try:
            conn.backup(copy, pages=_COPY_STEP_PAGES, progress=progress, sleep=0)
            # One self-contained file: no -wal beside it to forget when it is moved or restored.
            copy.execute("PRAGMA journal_mode = DELETE")
        finally:
            copy.close()
        os.replace(partial, final)
        _sync_directory(final.parent)
    except (sqlite3.Error, OSError) as exc:
        _discard(partial)
        raise StoreUnavailable(
            _failure_reason(exc), f"cannot keep a copy of {path} (schema v{found}) as {final} "
            f"before migrating it to v{target}: {exc}; the database was not changed") from exc
    log.info("%s: schema v%d will be migrated to v%d; the database as it was is kept as %s "
             "(%d bytes)", path, found, target, final, final.stat().st_size)
    for _version, old in migration_copies(path)[KEEP_MIGRATION_COPIES:]:
        with suppress(OSError):
            old.unlink()
            log.info("%s: removed the old pre-migration copy %s", path, old)
    return final


def _make_private(path: Path) -> None:
    """The database file exists and is 0600 before SQLite opens it; its companions too."""
    try:
        create_private(path)
    except OSError as exc:
        # SQLite's own open says what is wrong, in its words (a read-only folder, a full disk).
        log.debug("%s: cannot create it here: %s", path, exc)
    for suffix in ("-wal", "-shm", "-journal"):
        companion = path.with_name(path.name + suffix)
        if not tighten(companion) and companion.exists():
            log.warning("%s can be read by other users and is not ours to change; ask its "
                        "owner to run chmod 600 %s", companion, companion)


def _failure_reason(exc: sqlite3.Error | OSError) -> str:
    if isinstance(exc, sqlite3.Error):
        error = translate(exc)
        return error.reason if isinstance(error, StoreUnavailable) else "io_error"
    return "disk_full" if exc.errno == errno.ENOSPC else "io_error"


def _remove_stale_partials(path: Path) -> None:
    now = time.time()
    for partial in path.parent.glob(f"{path.name}.pre-v*.bak.*.partial"):
        with suppress(OSError):
            if now - partial.stat().st_mtime > _COPY_STALE_SECONDS:
                _discard(partial)


def _discard(partial: Path) -> None:
    """Removes a partial copy and the journal files SQLite may have left beside it (a hot
    journal left beside a new file of the same name would be played into it)."""
    for name in (partial.name, f"{partial.name}-journal", f"{partial.name}-wal",
                 f"{partial.name}-shm"):
        with suppress(OSError):
            partial.with_name(name).unlink()


def _sync_directory(folder: Path) -> None:
    """Makes a rename in `folder` durable (a power cut right after it keeps the new name)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
