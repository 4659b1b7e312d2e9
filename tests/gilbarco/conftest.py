"""Every Gilbarco test must leave no thread behind."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

JOIN = 5.0  # seconds a finishing thread (a reaped child's waiter, a closing line) may take


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    for thread in threading.enumerate():
        if thread not in before and thread.is_alive():
            thread.join(JOIN)
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"
