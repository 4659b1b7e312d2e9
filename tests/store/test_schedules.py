from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from domain.model import TotalsReading
from edge.store import Store, StoreUnavailable, UnknownPriceSchedule

from .conftest import T0, FakeClock, Pump, count, peek, store_connection

HOUR = timedelta(hours=1)


def test_a_schedule_is_stored_and_idempotent_on_its_id(store: Store, db_path: Path) -> None:
    schedule, created = store.schedule_prices(
        "PS-1",
        effective_at=T0 + HOUR,
        prices={"92": Decimal("7.62"), "95": Decimal("8.125")},
        source="cloud",
    )
    assert created
    assert schedule.price_set_id == "PS-1"
    assert schedule.effective_at == T0 + HOUR
    assert schedule.prices == {"92": Decimal("7.62"), "95": Decimal("8.125")}
    assert (schedule.source, schedule.created_at, schedule.applied_at) == ("cloud", T0, None)
    again, created = store.schedule_prices(
        "PS-1", effective_at=T0, prices={"92": Decimal("1")}, source="manager"
    )
    assert not created
    assert again == schedule
    assert count(db_path, "price_schedules") == 1
    # Scheduling changes no price yet, and tells nobody yet.
    assert store.current_price_set() == (None, {})
    assert store.last_seq() == 0


def test_bad_schedules_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="at least one"):
        store.schedule_prices("PS-1", effective_at=T0, prices={}, source="cloud")
    with pytest.raises(ValueError, match="positive"):
        store.schedule_prices("PS-1", effective_at=T0, prices={"92": Decimal("0")}, source="cloud")
    with pytest.raises(ValueError, match="id"):
        store.schedule_prices("", effective_at=T0, prices={"92": Decimal("7")}, source="cloud")
    assert store.price_schedules() == []


def test_due_and_next_follow_effective_time(store: Store, clock: FakeClock) -> None:
    # Received out of order: the third one takes effect first.
    for set_id, hours in (("PS-B", 2), ("PS-C", 3), ("PS-A", 1)):
        clock.advance(timedelta(seconds=1))
        store.schedule_prices(
            set_id,
            effective_at=T0 + hours * HOUR,
            prices={"92": Decimal(f"7.{hours}0")},
            source="cloud",
        )
    assert store.due_price_schedules(T0) == []
    upcoming = store.next_price_schedule()
    assert upcoming is not None and upcoming.price_set_id == "PS-A"
    due = store.due_price_schedules(T0 + 2 * HOUR)  # effective_at <= now
    assert [s.price_set_id for s in due] == ["PS-A", "PS-B"]
    assert [s.price_set_id for s in store.price_schedules()] == ["PS-C", "PS-B", "PS-A"]
    assert [s.price_set_id for s in store.price_schedules(limit=1)] == ["PS-C"]


def test_apply_makes_the_schedule_the_current_price_set(
    store: Store, db_path: Path, clock: FakeClock
) -> None:
    store.seed_prices({"92": Decimal("7.50"), "95": Decimal("8.02")})
    store.schedule_prices(
        "PS-1", effective_at=T0 + HOUR, prices={"92": Decimal("7.62")}, source="cloud"
    )
    clock.advance(HOUR + timedelta(seconds=2))
    applied = store.apply_price_schedule("PS-1")
    assert applied.applied_at == T0 + HOUR + timedelta(seconds=2)
    # Grades the set does not name keep their price.
    assert store.current_price_set() == ("PS-1", {"92": Decimal("7.62"), "95": Decimal("8.02")})
    assert store.due_price_schedules(T0 + 2 * HOUR) == []
    assert store.next_price_schedule() is None
    assert peek(
        db_path,
        "SELECT price_set_id, grade, old_price, new_price, source, effective_at "
        "FROM price_changes WHERE price_set_id = 'PS-1'",
    ) == [
        ("PS-1", "92", "7.50", "7.62", "cloud", "2026-11-22T02:15:00.000000+00:00"),
    ]


def test_applying_twice_changes_nothing(store: Store, clock: FakeClock) -> None:
    store.schedule_prices("PS-1", effective_at=T0, prices={"92": Decimal("7.62")}, source="cloud")
    store.schedule_prices("PS-2", effective_at=T0, prices={"92": Decimal("7.70")}, source="cloud")
    first = store.apply_price_schedule("PS-1")
    store.apply_price_schedule("PS-2")
    clock.advance(HOUR)
    assert store.apply_price_schedule("PS-1") == first  # not put back over PS-2
    assert store.current_price_set() == ("PS-2", {"92": Decimal("7.70")})


def test_apply_of_an_unknown_schedule(store: Store) -> None:
    with pytest.raises(UnknownPriceSchedule, match="PS-9"):
        store.apply_price_schedule("PS-9")


def test_marking_applied_and_changing_prices_are_one_transaction(
    store: Store, db_path: Path
) -> None:
    store.schedule_prices("PS-1", effective_at=T0, prices={"92": Decimal("7.62")}, source="cloud")
    conn = store_connection(store)
    conn.execute(
        "CREATE TRIGGER no_room BEFORE UPDATE ON price_schedules BEGIN "
        "SELECT RAISE(ABORT, 'database or disk is full'); END"
    )
    with pytest.raises(StoreUnavailable):
        store.apply_price_schedule("PS-1")
    assert store.current_price_set() == (None, {})
    assert count(db_path, "price_changes") == 0
    conn.execute("DROP TRIGGER no_room")
    assert store.apply_price_schedule("PS-1").applied_at is not None


def test_record_pump_prices(store: Store, clock: FakeClock) -> None:
    assert store.pump_price_set(1) is None
    event = store.record_pump_prices(1, "PS-1", {"95": Decimal("8.125"), "92": Decimal("7.6")})
    assert (event.seq, event.type) == (1, "price.applied")
    assert event.data == {
        "pump": 1,
        "price_set_id": "PS-1",
        "prices": {"92": "7.60", "95": "8.125"},
    }
    assert store.events_since(0) == [event]
    clock.advance(HOUR)
    store.record_pump_prices(1, "PS-2", {"92": Decimal("7.70")})
    assert (store.pump_price_set(1), store.pump_price_set(2)) == ("PS-2", None)
    with pytest.raises(ValueError):
        store.record_pump_prices(0, "PS-2", {"92": Decimal("7.70")})


def test_latest_totals_per_nozzle(store: Store, clock: FakeClock) -> None:
    assert store.latest_totals() == []
    one, two = Pump(pump=1, nozzle=1, clock=clock), Pump(pump=2, nozzle=3, clock=clock)
    for pump in (two, one, two):
        clock.advance(timedelta(minutes=1))
        store.record_sale(pump.fill())
    # A later reading taken with a clock stepped back still counts as the latest.
    clock.now = T0
    late = TotalsReading(1, 2, Decimal("5.00"), Decimal("37.50"), T0, "start")
    store.record_totals(late)
    latest = store.latest_totals()
    assert [(t.pump, t.nozzle) for t in latest] == [(1, 1), (1, 2), (2, 3)]
    assert latest[0].volume_total == one.volume_total
    assert latest[1] == late
    assert latest[2].volume_total == two.volume_total == Decimal("10080.00")
