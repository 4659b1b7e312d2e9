"""Deployment tests: the systemd units, journald logging, upgrades and the runbook.

The leak checks are the cloud link tests' own, the pump simulator the end-to-end tests' own.
"""

from tests.e2e.conftest import sim
from tests.sync.conftest import no_leaked_tasks, no_leaked_threads, no_leaks

__all__ = ["no_leaked_tasks", "no_leaked_threads", "no_leaks", "sim"]
