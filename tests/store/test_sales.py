from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from domain.model import Preset, Sale, sale_to_api
from edge.store import InvalidPayment, Overpayment, Store, StoreError, UnknownSale

from .conftest import FakeClock, Pump, count, peek


def test_record_sale_writes_sale_totals_event_and_outbox(
    store: Store, pump: Pump, db_path: Path
) -> None:
    auth = store.create_authorization(
        pump=1, nozzle=1, preset=Preset("amount", Decimal("300.00")), source="attendant"
    )
    store.append_event("pump.alarm", {"pump": 2})  # seq 1: the sale's seq follows on
    new = pump.fill(authorization_id=auth.id)
    sale, created = store.record_sale(new)

    assert created
    assert sale.seq == 2
    assert (sale.volume, sale.amount, sale.price) == (Decimal(40), Decimal(300), Decimal("7.5"))
    assert sale.totals_volume_after == Decimal("10040.00")
    assert sale.totals_volume_before == Decimal("10000.00")
    assert not sale.paid
    assert store.get_sale(sale.id) == sale

    [event] = store.events_since(1)
    assert (event.seq, event.type) == (2, "sale.completed")
    assert event.data == sale_to_api(sale)
    assert event.data["volume"] == "40.00"
    assert [e.seq for e in store.outbox_pending()] == [1, 2]

    totals = store.last_totals(1, 1)
    assert totals is not None
    assert (totals.volume_total, totals.amount_total) == (Decimal("10040.00"), Decimal("75300.00"))
    completed = store.get_authorization(auth.id)
    assert completed is not None and completed.state == "completed"
    assert store.active_authorizations() == []


def test_the_same_fill_recorded_again_is_one_sale(store: Store, pump: Pump, db_path: Path) -> None:
    new = pump.fill()
    first, created = store.record_sale(new)
    again, created_again = store.record_sale(new)
    assert created and not created_again
    assert again == first
    # A recovery after restart: same totalizer, written with another exponent, other flags.
    recovered = replace(
        new,
        recovered=True,
        totals_after=replace(new.totals_after, volume_total=Decimal("10040.0")),
    )
    assert store.record_sale(recovered) == (first, False)
    assert count(db_path, "sales") == 1
    assert count(db_path, "events") == 1
    assert count(db_path, "totals") == 1


def test_the_same_totalizer_on_another_nozzle_is_another_fill(store: Store) -> None:
    one = Pump(pump=1, nozzle=1).fill()
    two = Pump(pump=1, nozzle=2).fill()
    assert store.record_sale(one)[1]
    assert store.record_sale(two)[1]


def test_two_identical_consecutive_sales_are_two_sales(
    store: Store, pump: Pump, db_path: Path
) -> None:
    first, _ = store.record_sale(pump.fill("20.00", "150.00"))
    second, created = store.record_sale(pump.fill("20.00", "150.00"))
    assert created
    assert first.id != second.id
    assert (first.volume, first.amount, first.ended_at) == (
        second.volume, second.amount, second.ended_at,
    )  # fmt: skip
    assert [s.seq for s in store.sales()] == [1, 2]


def test_discrepancies_become_events_in_the_same_commit(store: Store, pump: Pump) -> None:
    found = (
        {"kind": "volume", "expected": "40.00", "totalizer": "40.02"},
        {"kind": "amount", "expected": "300.00", "totalizer": "300.15"},
    )
    sale, _ = store.record_sale(pump.fill(discrepancies=found))
    events = store.events_since(0)
    assert [(e.seq, e.type) for e in events] == [
        (1, "sale.completed"),
        (2, "reconciliation.discrepancy"),
        (3, "reconciliation.discrepancy"),
    ]
    assert events[1].data == {**found[0], "sale_id": sale.id}
    assert events[2].data == {**found[1], "sale_id": sale.id}
    assert store.record_sale(pump.fill())[0].seq == 4


def test_a_sale_whose_event_cannot_be_written_leaves_nothing(
    store: Store, pump: Pump, db_path: Path
) -> None:
    auth = store.create_authorization(pump=1, nozzle=1, preset=None, source="attendant")
    store.record_sale(pump.fill())
    # A real failure inside the transaction, after the sale row is in: the event insert fails.
    conn = sqlite3.connect(db_path)
    conn.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.seq = 2 "
        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
    )
    conn.commit()
    failing = pump.fill(authorization_id=auth.id)
    with pytest.raises(StoreError, match="injected failure"):
        store.record_sale(failing)

    assert count(db_path, "sales") == 1
    assert count(db_path, "totals") == 1
    assert count(db_path, "events") == 1
    assert count(db_path, "outbox") == 1
    assert peek(db_path, "SELECT value FROM counters WHERE name = 'event_seq'") == [(1,)]
    unchanged = store.get_authorization(auth.id)
    assert unchanged is not None and unchanged.state == "requested"

    conn.execute("DROP TRIGGER refuse")
    conn.commit()
    conn.close()
    sale, created = store.record_sale(failing)
    assert created and sale.seq == 2


def test_a_sale_with_an_unknown_authorization_is_still_recorded(store: Store, pump: Pump) -> None:
    sale, created = store.record_sale(pump.fill(authorization_id="lost-authorization"))
    assert created
    assert sale.authorization_id == "lost-authorization"


def test_bad_sales_are_refused_before_writing(store: Store, pump: Pump, db_path: Path) -> None:
    new = pump.fill()
    with pytest.raises(ValueError):
        store.record_sale(replace(new, totals_after=replace(new.totals_after, nozzle=2)))
    with pytest.raises(ValueError):
        store.record_sale(replace(new, amount=Decimal(-1)))
    with pytest.raises(ValueError):
        store.record_sale(replace(new, ended_at=new.ended_at.replace(tzinfo=None)))
    assert count(db_path, "sales") == 0
    assert store.record_sale(new)[0].seq == 1


def test_sales_list_in_seq_order_and_by_paid(store: Store, pump: Pump) -> None:
    sales = [store.record_sale(pump.fill())[0] for _ in range(4)]
    store.add_payment(sales[1].id, method="cash", amount=Decimal("300.00"), user="li")
    assert [s.seq for s in store.sales()] == [1, 2, 3, 4]
    assert [s.seq for s in store.sales(since_seq=2, limit=1)] == [3]
    assert [s.seq for s in store.sales(unpaid=True)] == [1, 3, 4]
    assert [s.seq for s in store.sales(unpaid=False)] == [2]
    paid = store.sales(unpaid=False)[0]
    assert paid.paid and paid.payments[0].user == "li"


def test_payments_add_up_to_paid(store: Store, pump: Pump, clock: FakeClock) -> None:
    sale, _ = store.record_sale(pump.fill())
    first = store.add_payment(sale.id, method="wechat", amount=Decimal("100.00"), user=None)
    assert first.created_at == clock.now
    partly = store.get_sale(sale.id)
    assert partly is not None and not partly.paid and partly.due == Decimal("200.00")
    store.add_payment(sale.id, method="cash", amount=Decimal("200.00"), user="li")
    paid = store.get_sale(sale.id)
    assert paid is not None and paid.paid
    assert [p.method for p in paid.payments] == ["wechat", "cash"]
    assert sale_to_api(paid)["paid"] is True
    assert store.sales(unpaid=True) == []
    assert store.sales(unpaid=False) == [paid]


def test_overpayment_and_bad_payments_are_refused(store: Store, pump: Pump, db_path: Path) -> None:
    sale, _ = store.record_sale(pump.fill())
    with pytest.raises(Overpayment, match=r"more than the 300\.00 still due"):
        store.add_payment(sale.id, method="cash", amount=Decimal("300.01"), user=None)
    store.add_payment(sale.id, method="card", amount=Decimal("300.00"), user=None)
    with pytest.raises(Overpayment, match="already paid"):
        store.add_payment(sale.id, method="cash", amount=Decimal("0.01"), user=None)
    with pytest.raises(InvalidPayment, match="method"):
        store.add_payment(sale.id, method="bitcoin", amount=Decimal(1), user=None)
    with pytest.raises(InvalidPayment, match="positive"):
        store.add_payment(sale.id, method="cash", amount=Decimal(0), user=None)
    with pytest.raises(UnknownSale):
        store.add_payment("no-such-sale", method="cash", amount=Decimal(1), user=None)
    assert count(db_path, "payments") == 1


def test_four_threads_recording_sales_get_gapless_unique_seqs(store: Store) -> None:
    per_thread = 25
    pumps = [Pump(pump=n, nozzle=n) for n in range(1, 5)]
    start = threading.Barrier(len(pumps))
    results: list[list[Sale]] = [[] for _ in pumps]
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            start.wait()
            for _ in range(per_thread):
                results[index].append(store.record_sale(pumps[index].fill())[0])
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,), name=f"nozzle-{i}") for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    all_sales = [s for per in results for s in per]
    total = per_thread * len(pumps)
    assert sorted(s.seq for s in all_sales) == list(range(1, total + 1))
    assert len({s.id for s in all_sales}) == total
    for per in results:  # each thread saw its own sales in order
        assert [s.seq for s in per] == sorted(s.seq for s in per)
    events = store.events_since(0, limit=1000)
    assert [e.seq for e in events] == list(range(1, total + 1))
    by_seq = {s.seq: s for s in all_sales}
    assert all(e.data["id"] == by_seq[e.seq].id for e in events)
