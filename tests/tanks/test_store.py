"""Tank rows in the ledger: each event committed with the rows it reports, or neither."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from edge.store import Store, StoreError
from edge.store.schema import MIGRATIONS
from edge.store.tanks import AlertChange, AlertKind, TankReading

from .conftest import SHANGHAI, T0, Clock, new_sale


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[Store]:
    opened = Store.open(tmp_path / "station.db", clock=clock, zone=SHANGHAI)
    yield opened
    opened.close()


def reading(tank: int, volume: str, minutes: float = 0, **extra: Decimal) -> TankReading:
    litres = Decimal(volume)
    return TankReading(tank=tank, grade="92", read_at=T0 + timedelta(minutes=minutes),
                       level_mm=Decimal("1234.5"), volume_l=litres,
                       ullage_l=Decimal(30000) - litres, **extra)


def types(store: Store) -> list[str]:
    return [e.type for e in store.events_since(0, 500)]


def test_the_tank_migration_is_the_third(tmp_path: Path) -> None:
    assert len(MIGRATIONS) >= 3
    with Store.open(tmp_path / "a.db") as store:
        assert store.latest_tank_readings() == []
    conn = sqlite3.connect(tmp_path / "a.db")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert {"tank_readings", "tank_alerts", "tank_deliveries", "tank_reconciliations"} <= tables


def test_readings_are_history_and_events(store: Store) -> None:
    told = store.record_tank_readings([
        reading(1, "12345.5", water_mm=Decimal("12.5"), temperature_c=Decimal("18.3")),
        reading(2, "800"),
    ])
    assert told[0].data == {
        "tank": 1, "grade": "92", "level_mm": "1234.5", "water_mm": "12.5",
        "temperature_c": "18.3", "volume_l": "12345.50", "ullage_l": "17654.50",
        "read_at": "2026-11-22T09:00:00+08:00"}
    assert told[1].data["water_mm"] is None and told[1].data["temperature_c"] is None
    store.record_tank_readings([reading(1, "12300", minutes=10)])
    assert [r.volume_l for r in store.latest_tank_readings()] == [Decimal(12300), Decimal(800)]
    history = store.tank_readings(1, since=T0, until=T0 + timedelta(hours=1))
    assert [r.volume_l for r in history] == [Decimal("12345.5"), Decimal(12300)]
    assert history[0].water_mm == Decimal("12.5")


def test_alerts_change_once_and_survive_a_restart(store: Store, tmp_path: Path,
                                                  clock: Clock) -> None:
    low = AlertChange(1, "92", AlertKind.LOW_STOCK, True, {"volume_l": "2990.00"})
    assert len(store.change_tank_alerts([low])) == 1
    assert store.change_tank_alerts([low]) == []  # already open: nothing written
    [alert] = store.open_tank_alerts()
    assert (alert.tank, alert.kind, alert.data["status"], alert.data["volume_l"]) == (
        1, AlertKind.LOW_STOCK, "raised", "2990.00")
    store.close()
    with Store.open(tmp_path / "station.db", clock=clock, zone=SHANGHAI) as again:
        assert [a.kind for a in again.open_tank_alerts()] == [AlertKind.LOW_STOCK]
        cleared = AlertChange(1, "92", AlertKind.LOW_STOCK, False, {"volume_l": "3010.00"})
        [event] = again.change_tank_alerts([cleared])
        assert event.data["status"] == "cleared" and event.data["kind"] == "low_stock"
        assert again.change_tank_alerts([cleared]) == []
        assert again.open_tank_alerts() == []
        assert types(again) == ["tank.alert", "tank.alert"]


def test_a_delivery_row_and_its_event(store: Store) -> None:
    delivery, event = store.record_delivery(
        tank=1, grade="92", started_at=T0, ended_at=T0 + timedelta(minutes=20),
        volume_l=Decimal("12000.00"), start_volume_l=Decimal(5000),
        end_volume_l=Decimal(16950), sold_l=Decimal(50))
    assert event.type == "delivery.detected"
    assert event.data == {
        "delivery_id": delivery.id, "tank": 1, "grade": "92", "volume_l": "12000.00",
        "started_at": "2026-11-22T09:00:00+08:00", "ended_at": "2026-11-22T09:20:00+08:00",
        "start_volume_l": "5000.00", "end_volume_l": "16950.00", "sold_l": "50.00"}
    assert store.deliveries(tank=1) == [delivery]
    assert store.deliveries(tank=2) == []


def test_the_day_close_reconciles_opening_deliveries_and_sales(store: Store) -> None:
    first = reading(1, "20000", minutes=0)
    assert store.close_tank_day(first, date(2026, 11, 21), nozzles=[1, 3],
                                tolerance=lambda sales: Decimal(20)) == (None, None)
    # Sales inside the window on the tank's nozzles count; nozzle 2 (another tank) does not.
    store.record_sale(new_sale(1, "300", T0 + timedelta(hours=2), total="1300"))
    store.record_sale(new_sale(3, "200", T0 + timedelta(hours=3), total="2200"))
    store.record_sale(new_sale(2, "999", T0 + timedelta(hours=3), total="5999"))
    store.record_delivery(tank=1, grade="92", started_at=T0 + timedelta(hours=4),
                          ended_at=T0 + timedelta(hours=5), volume_l=Decimal(8000),
                          start_volume_l=Decimal(19500), end_volume_l=Decimal(27500),
                          sold_l=Decimal(0))
    close = reading(1, "27430", minutes=24 * 60)
    rec, event = store.close_tank_day(close, date(2026, 11, 22), nozzles=[1, 3],
                                      tolerance=lambda sales: Decimal(20) + sales / 200)
    assert rec is not None
    assert (rec.opening_l, rec.deliveries_l, rec.sales_l, rec.closing_l) == (
        Decimal(20000), Decimal(8000), Decimal(500), Decimal(27430))
    assert rec.expected_l == Decimal(27500) and rec.variance_l == Decimal(-70)
    assert rec.tolerance_l == Decimal("22.5") and rec.flagged
    assert event is not None and event.type == "reconciliation.discrepancy"
    assert event.data == {
        "kind": "wetstock", "tank": 1, "grade": "92", "day": "2026-11-22",
        "opening_at": "2026-11-22T09:00:00+08:00", "closing_at": "2026-11-23T09:00:00+08:00",
        "opening_l": "20000.00", "deliveries_l": "8000.00", "sales_l": "500.00",
        "expected_l": "27500.00", "closing_l": "27430.00", "variance_l": "-70.00",
        "tolerance_l": "22.50"}
    assert store.reconciliations(tank=1) == [rec]
    assert store.last_tank_close(1) == (date(2026, 11, 22), close.read_at)
    # The same day again writes nothing.
    assert store.close_tank_day(close, date(2026, 11, 22), nozzles=[1, 3],
                                tolerance=lambda sales: Decimal(20)) == (None, None)
    assert len(store.reconciliations()) == 1


def test_a_day_within_tolerance_is_recorded_without_an_event(store: Store) -> None:
    store.close_tank_day(reading(1, "20000"), date(2026, 11, 21), nozzles=[1],
                         tolerance=lambda sales: Decimal(20))
    rec, event = store.close_tank_day(reading(1, "19990", minutes=60), date(2026, 11, 22),
                                      nozzles=[1], tolerance=lambda sales: Decimal(20))
    assert rec is not None and rec.variance_l == Decimal(-10) and not rec.flagged
    assert event is None and "reconciliation.discrepancy" not in types(store)


def test_the_close_and_its_discrepancy_commit_together(store: Store) -> None:
    store.close_tank_day(reading(1, "20000"), date(2026, 11, 21), nozzles=[1],
                         tolerance=lambda sales: Decimal(20))
    # Make the event's insert fail inside the transaction.
    conn = store._db._connection()
    conn.execute("CREATE TRIGGER no_events BEFORE INSERT ON events "
                 "BEGIN SELECT RAISE(ABORT, 'events refused'); END")
    with pytest.raises(StoreError):
        store.close_tank_day(reading(1, "19000", minutes=60), date(2026, 11, 22), nozzles=[1],
                             tolerance=lambda sales: Decimal(20))
    assert store.reconciliations() == []
    assert store.last_tank_close(1) == (date(2026, 11, 21), T0)
