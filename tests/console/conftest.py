"""The console's API, store and command line, without a browser (tests/browser has those):
the store fixtures (a real SQLite file, a fake clock) and the daemon against the simulator."""

from tests.e2e.conftest import running, sim
from tests.store.conftest import clock, db_path, no_leaked_threads, pump, store

__all__ = ["clock", "db_path", "no_leaked_threads", "pump", "running", "sim", "store"]
