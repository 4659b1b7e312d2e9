"""The console's records in the store (edge/store/console.py): sale numbers people can say
aloud, receipt print counts, acknowledged alarms and cancelled price schedules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge.alarms import RAISING, TYPES, alarm_list
from edge.store import Store, UnknownPriceSchedule
from edge.store.console import (
    ScheduleApplied,
    UnknownAlarm,
    ack_alarm,
    alarm_acks,
    alarm_events,
    cancel_schedule,
    cancelled_schedules,
    number_text,
    receipt_counts,
    receipt_printed,
)
from tests.store.conftest import FakeClock, Pump

BEIJING = ZoneInfo("Asia/Shanghai")


def test_a_number_is_the_local_day_and_its_place_in_it(tmp_path: Path) -> None:
    # 15:59 UTC is 23:59 in Beijing: the first two sales belong to the 22nd, the third (16:01
    # UTC, 00:01 on the 23rd) starts the 23rd's numbers.
    clock = FakeClock(datetime(2026, 11, 22, 15, 58, tzinfo=UTC))
    pump = Pump(clock=clock)
    with Store.open(tmp_path / "station.db", clock=clock, zone=BEIJING) as store:
        first, _ = store.record_sale(pump.fill("10.00", "75.00"))
        clock.advance(timedelta(minutes=1))
        second, _ = store.record_sale(pump.fill("10.00", "75.00"))
        clock.advance(timedelta(minutes=2))
        third, _ = store.record_sale(pump.fill("10.00", "75.00"))
        assert (first.number, second.number, third.number) == (
            "1122-0001", "1122-0002", "1123-0001")
        # Stored with the sale: read back, in the event, and kept when recorded again.
        assert store.get_sale(second.id).number == "1122-0002"  # type: ignore[union-attr]
        event = [e for e in store.events_since(0) if e.type == "sale.completed"][-1]
        assert event.data["number"] == "1123-0001"
        again, created = store.record_sale(pump.fill("0", "0"))  # a zero fill finds the last
        assert not created and again.number == "1123-0001"
        assert [s.number for s in store.sales(since_seq=0, limit=10, unpaid=True)] == [
            "1122-0001", "1122-0002", "1123-0001"]


def test_number_text_grows_past_four_digits() -> None:
    assert number_text("2026-12-04", 42) == "1204-0042"
    assert number_text("2026-12-04", 12345) == "1204-12345"


def test_print_counts_are_kept(store: Store, pump: Pump) -> None:
    sale, _ = store.record_sale(pump.fill())
    assert store.read_with(receipt_counts, [sale.id]) == {}
    assert store.write_with(receipt_printed, sale.id) == 0  # none before: the original
    assert store.write_with(receipt_printed, sale.id) == 1  # one before: a copy (补打)
    assert store.read_with(receipt_counts, [sale.id, "other"]) == {sale.id: 2}


def test_an_alarm_is_acknowledged_once(store: Store) -> None:
    raised = store.append_event("pump.alarm", {"pump": 1, "kind": "leak", "code": "0x0D"})
    sale_like = store.append_event("tank.reading", {"tank": 1})
    ack, new = store.write_with(ack_alarm, raised.seq, RAISING, "站长老张")
    assert new and ack.user == "站长老张"
    again, new = store.write_with(ack_alarm, raised.seq, RAISING, "收银员小李")
    assert not new and again.user == "站长老张"
    with pytest.raises(UnknownAlarm):
        store.write_with(ack_alarm, sale_like.seq, RAISING, "x")  # not an alarm
    with pytest.raises(UnknownAlarm):
        store.write_with(ack_alarm, 999, RAISING, "x")
    assert set(store.read_with(alarm_acks, [raised.seq, sale_like.seq])) == {raised.seq}


def test_the_alarm_list_says_what_holds_what_cleared_and_who_saw_it(
        store: Store, clock: FakeClock) -> None:
    leak = store.append_event("pump.alarm", {"pump": 1, "kind": "leak"})
    stop = store.append_event("pump.alarm", {"pump": 2, "kind": "station_stop", "user": "王"})
    low = store.append_event("tank.alert", {"tank": 1, "kind": "low_stock", "status": "raised"})
    paper = store.append_event("printer.alarm", {"printer": "p", "alarm": "paper_out"})
    clock.advance(timedelta(minutes=1))
    store.append_event("pump.alarm_cleared", {"pump": 2, "kind": "station_stop"})
    store.append_event("tank.alert", {"tank": 1, "kind": "low_stock", "status": "cleared"})
    offline = store.append_event("printer.alarm", {"printer": "p", "alarm": "offline"})
    odd = store.append_event("reconciliation.discrepancy", {"kind": "amount_mismatch"})
    store.write_with(ack_alarm, low.seq, RAISING, "王")
    events = store.read_with(alarm_events, TYPES, 100)
    acks = store.read_with(alarm_acks, [e.seq for e in events])
    shown = alarm_list(events, acks, pump_alarms={1: {"leak"}, 2: set()}, zone=BEIJING)
    status = {a["seq"]: a["status"] for a in shown["alarms"]}
    assert status == {leak.seq: "active", stop.seq: "cleared", low.seq: "cleared",
                      paper.seq: "cleared", offline.seq: "active", odd.seq: "event"}
    assert shown["alarms"][0]["seq"] == odd.seq  # newest first
    by_seq = {a["seq"]: a for a in shown["alarms"]}
    assert by_seq[low.seq]["acknowledged"]["by"] == "王"
    assert by_seq[low.seq]["cleared_at"].endswith("+08:00")
    assert by_seq[paper.seq]["cleared_at"] is not None  # the printer's next condition
    assert (shown["active"], shown["unacknowledged"]) == (2, 5)
    # A pump that no longer has its alarm (the daemon restarted since) shows it cleared.
    again = alarm_list(events, acks, pump_alarms={}, zone=BEIJING)
    assert {a["seq"]: a["status"] for a in again["alarms"]}[leak.seq] == "cleared"


def test_a_cancelled_schedule_is_never_applied(store: Store, clock: FakeClock) -> None:
    at = clock() + timedelta(hours=1)
    store.schedule_prices("P1", effective_at=at, prices={"92": Decimal("7.62")}, source="local:王")
    cancelled, new = store.write_with(cancel_schedule, "P1", "王")
    assert new and cancelled.by == "王"
    assert not store.write_with(cancel_schedule, "P1", "李")[1]  # once is enough
    assert store.due_price_schedules(at + timedelta(hours=1)) == []
    assert store.next_price_schedule() is None
    assert store.apply_price_schedule("P1").applied_at is None  # found due a moment before
    assert store.current_price_set()[1].get("92") != Decimal("7.62")
    assert set(store.read_with(cancelled_schedules, ["P1"])) == {"P1"}
    with pytest.raises(UnknownPriceSchedule):
        store.write_with(cancel_schedule, "P9", "王")
    store.schedule_prices("P2", effective_at=clock(), prices={"92": Decimal("7.70")},
                          source="cloud")
    store.apply_price_schedule("P2")
    with pytest.raises(ScheduleApplied):
        store.write_with(cancel_schedule, "P2", "王")
