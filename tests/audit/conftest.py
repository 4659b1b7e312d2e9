from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.store import Store

T0 = datetime(2026, 11, 22, 1, 15, tzinfo=UTC)


@dataclass
class FakeClock:
    now: datetime = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"test leaked threads: {leaked}"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "station.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    with Store.open(db_path, clock=FakeClock()) as opened:
        yield opened


def tamper(path: Path, *statements: str) -> None:
    """What someone with the sqlite3 shell would do: drop the guards, then edit rows."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("DROP TRIGGER IF EXISTS audit_no_update")
        conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")
        for statement in statements:
            conn.execute(statement)
    finally:
        conn.close()


def fill(store: Store, n: int) -> None:
    for i in range(1, n + 1):
        store.audit_append(actor="ann", role="cashier", action="sale.payment",
                           target=f"sale-{i}", details={"amount": f"{i}.00", "method": "cash"})
