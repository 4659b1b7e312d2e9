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
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from edge.store.codec import to_utc
from edge.store.errors import StoreError, StoreUnavailable, translate
from edge.store.schema import check_version, migrate

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


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
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable("cannot_open", f"cannot create {path.parent}: {exc}") from exc
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
            check_version(conn)  # before anything below changes the file
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                # Still correct (rollback journal), only readers block the writer more.
                log.warning("%s: WAL is not available here, using journal mode %s", path, mode)
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            migrate(conn)
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
