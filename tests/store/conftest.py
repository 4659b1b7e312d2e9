from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from domain.model import NewSale, TotalsReading
from edge.store import Store

T0 = datetime(2026, 11, 22, 1, 15, tzinfo=UTC)


@dataclass
class FakeClock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"test leaked threads: {leaked}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "station.db"


@pytest.fixture
def store(db_path: Path, clock: FakeClock) -> Iterator[Store]:
    with Store.open(db_path, clock=clock) as opened:
        yield opened


def peek(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Reads the file through a connection of its own, as an inspector would."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def count(path: Path, table: str) -> int:
    return int(peek(path, f"SELECT COUNT(*) FROM {table}")[0][0])


def store_connection(store: Store) -> sqlite3.Connection:
    # Per-connection settings (PRAGMA max_page_count) only bite on the store's own connection.
    return store._db._connection()


@dataclass
class Pump:
    """Makes NewSale records the way a pump's totalizers would: every fill moves them on."""

    pump: int = 1
    nozzle: int = 1
    volume_total: Decimal = Decimal("10000.00")
    amount_total: Decimal = Decimal("75000.00")
    clock: FakeClock = field(default_factory=FakeClock)

    def fill(
        self,
        volume: str = "40.00",
        amount: str = "300.00",
        *,
        authorization_id: str | None = None,
        discrepancies: tuple[dict[str, Any], ...] = (),
        order_id: str | None = None,
    ) -> NewSale:
        before = TotalsReading(
            self.pump, self.nozzle, self.volume_total, self.amount_total, self.clock(), "sale"
        )
        self.volume_total += Decimal(volume)
        self.amount_total += Decimal(amount)
        after = TotalsReading(
            self.pump, self.nozzle, self.volume_total, self.amount_total, self.clock(), "sale"
        )
        return NewSale(
            pump=self.pump,
            nozzle=self.nozzle,
            logical=1,
            grade="92",
            price=Decimal("7.50"),
            volume=Decimal(volume),
            amount=Decimal(amount),
            price_set_id="config",
            started_at=self.clock() - timedelta(minutes=2),
            ended_at=self.clock(),
            authorization_id=authorization_id,
            order_id=order_id,
            recovered=False,
            totals_before=before,
            totals_after=after,
            discrepancies=discrepancies,
        )


@pytest.fixture
def pump(clock: FakeClock) -> Pump:
    return Pump(clock=clock)
