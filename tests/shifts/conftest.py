"""Shift tests reuse the store fixtures (a real SQLite file, a fake clock) and the end-to-end
ones (the daemon against the pump simulator over a real socket)."""

from tests.e2e.conftest import running, sim
from tests.store.conftest import clock, db_path, no_leaked_threads, store

__all__ = ["clock", "db_path", "no_leaked_threads", "running", "sim", "store"]
