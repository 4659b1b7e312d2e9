"""Shifts in the ledger: opening, the one-transaction close, the report's reconciliation."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from domain.model import TotalsReading
from edge.store import Store
from edge.store.shifts import NoOpenShift
from tests.store.conftest import FakeClock, Pump, peek

GRADES = {1: "92", 2: "95"}


def baseline(store: Store, pump: Pump, clock: FakeClock) -> None:
    store.record_totals(TotalsReading(pump.pump, pump.nozzle, pump.volume_total,
                                      pump.amount_total, clock(), "baseline"))


def test_close_before_any_shift_is_refused(store: Store) -> None:
    with pytest.raises(NoOpenShift):
        store.close_shift(closed_by="boss", grades=GRADES)


def test_first_start_opens_shift_one_and_later_starts_keep_it(store: Store) -> None:
    first, created = store.open_first_shift()
    assert (first.id, created, first.start_seq) == (1, True, 0)
    again, created_again = store.open_first_shift()
    assert (again.id, created_again) == (1, False)
    assert store.current_shift() == first


def test_close_reconciles_each_nozzle_and_opens_the_next(
        store: Store, clock: FakeClock, db_path: Path) -> None:
    nozzle1 = Pump(nozzle=1, clock=clock)
    nozzle2 = Pump(nozzle=2, volume_total=Decimal("500.00"), amount_total=Decimal("4000.00"),
                   clock=clock)
    baseline(store, nozzle1, clock)  # known when the shift opens
    store.open_first_shift()
    baseline(store, nozzle2, clock)  # first read after it opened: opens the shift there
    paid, _ = store.record_sale(nozzle1.fill("40.00", "300.00"))
    store.add_payment(paid.id, method="wechat", amount=Decimal("300.00"), user="cash")
    unpaid, _ = store.record_sale(nozzle1.fill("2.00", "15.00"))
    partly, _ = store.record_sale(nozzle2.fill("10.00", "80.20"))
    store.add_payment(partly.id, method="cash", amount=Decimal("50.00"), user="cash")
    clock.advance(timedelta(hours=8))

    closed, following, event = store.close_shift(closed_by="boss", grades=GRADES)
    report = closed.report
    assert report is not None
    assert (report["shift_id"], report["status"], report["closed_by"]) == (1, "closed", "boss")
    assert report["closed_at"] == "2026-11-22T09:15:00+00:00"
    line1, line2 = report["nozzles"]
    assert line1["open"]["volume_total"] == "10000.00"
    assert line1["close"] == {"volume_total": "10042.00", "amount_total": "75315.00",
                              "read_at": "2026-11-22T01:15:00+00:00"}
    assert line1["delta"] == {"volume": "42.00", "amount": "315.00"}
    assert line1["sales"] == {"count": 2, "volume": "42.00", "amount": "315.00"}
    assert line1["difference"] == {"volume": "0.00", "amount": "0.00"}
    assert line1["mismatch"] is False and line1["grade"] == "92"
    assert line2["open"]["volume_total"] == "500.00"
    assert line2["delta"] == {"volume": "10.00", "amount": "80.20"}
    assert line2["mismatch"] is False and line2["grade"] == "95"
    assert report["grades"] == [{"grade": "92", "count": 3, "volume": "52.00",
                                 "amount": "395.20"}]  # the Pump helper sells 92 only
    assert report["payments"] == [{"method": "cash", "count": 1, "amount": "50.00"},
                                  {"method": "wechat", "count": 1, "amount": "300.00"}]
    assert report["unpaid"] == [
        {"id": unpaid.id, "number": unpaid.number, "nozzle": 1, "amount": "15.00",
         "due": "15.00"},
        {"id": partly.id, "number": partly.number, "nozzle": 2, "amount": "80.20",
         "due": "30.20"}]
    assert report["totals"] == {"volume": "52.00", "amount": "395.20", "paid": "350.00",
                                "due": "45.20"}
    assert report["counts"] == {"sales": 3, "paid": 1, "unpaid": 2, "mismatches": 0}

    assert (event.type, event.data, event.seq) == ("shift.closed", report, closed.end_seq)
    assert store.events_since(event.seq - 1) == [event]
    assert (following.id, following.start_seq, following.opened_by) == (2, event.seq, "boss")
    assert store.get_shift(1) == closed
    # The next shift opens where this one closed, with nothing in it yet.
    running = store.shift_report(None, grades=GRADES)
    assert running is not None and running["shift_id"] == 2 and running["status"] == "open"
    assert [n["open"] for n in running["nozzles"]] == [n["close"] for n in report["nozzles"]]
    assert running["counts"]["sales"] == 0
    assert peek(db_path, "SELECT COUNT(*) FROM shifts WHERE closed_at IS NULL") == [(1,)]


def test_a_centilitre_between_totals_and_sales_is_flagged(
        store: Store, clock: FakeClock) -> None:
    pump = Pump(clock=clock)
    baseline(store, pump, clock)
    store.open_first_shift()
    store.record_sale(pump.fill("20.00", "150.00"))
    store.record_totals(TotalsReading(1, 1, pump.volume_total + Decimal("0.01"),
                                      pump.amount_total, clock(), "pump"))
    closed, _, _ = store.close_shift(closed_by="boss", grades=GRADES)
    assert closed.report is not None
    line = closed.report["nozzles"][0]
    assert line["difference"] == {"volume": "0.01", "amount": "0.00"}
    assert line["mismatch"] is True
    assert closed.report["counts"]["mismatches"] == 1
    # A nozzle with no reading at all and no sale has nothing to flag.
    assert closed.report["nozzles"][1]["mismatch"] is False
    assert closed.report["nozzles"][1]["difference"] is None


def test_sales_no_totalizer_vouches_for_are_flagged(store: Store, clock: FakeClock) -> None:
    store.open_first_shift()
    store.record_sale(Pump(nozzle=2, clock=clock).fill())
    # The sale's own reading opens the nozzle's shift: the sale then cannot reconcile.
    report = store.shift_report(None, grades=GRADES)
    assert report is not None
    line = report["nozzles"][1]
    assert line["delta"] == {"volume": "0.00", "amount": "0.00"}
    assert line["difference"] == {"volume": "-40.00", "amount": "-300.00"}
    assert line["mismatch"] is True


def test_a_sale_after_the_close_belongs_to_the_next_shift(
        store: Store, clock: FakeClock) -> None:
    pump = Pump(clock=clock)
    baseline(store, pump, clock)
    store.open_first_shift()
    store.record_sale(pump.fill("1.00", "7.50"))
    store.close_shift(closed_by="boss", grades=GRADES)
    late, _ = store.record_sale(pump.fill("3.00", "22.50"))
    closed, _, _ = store.close_shift(closed_by="boss", grades=GRADES)
    assert closed.id == 2 and closed.report is not None
    assert closed.report["unpaid"] == [{"id": late.id, "number": late.number, "nozzle": 1,
                                        "amount": "22.50", "due": "22.50"}]
    assert closed.report["nozzles"][0]["open"]["volume_total"] == "10001.00"
    assert closed.report["nozzles"][0]["difference"] == {"volume": "0.00", "amount": "0.00"}
    first = store.shift_report(1, grades=GRADES)
    assert first is not None and first["counts"]["sales"] == 1
    assert store.shift_report(99, grades=GRADES) is None


def test_times_are_shown_in_the_station_zone(db_path: Path, clock: FakeClock) -> None:
    with Store.open(db_path, clock=clock, zone=ZoneInfo("Asia/Shanghai")) as store:
        store.open_first_shift()
        closed, _, _ = store.close_shift(closed_by="boss", grades=GRADES)
    assert closed.report is not None
    assert closed.report["opened_at"] == "2026-11-22T09:15:00+08:00"
