from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from domain.model import Order, Preset
from edge.store import Store, StoreUnavailable, UnknownOrder

from .conftest import T0, FakeClock, count, peek, store_connection

EXPIRES = T0 + timedelta(minutes=5)


def new_order(store: Store, order_id: str = "A-1", **changes: Any) -> tuple[Order, bool]:
    fields: dict[str, Any] = dict(
        order_id=order_id,
        nozzle=1,
        grade="92",
        price=Decimal("7.50"),
        preset=Preset("amount", Decimal("100.00")),
        paid=Decimal("100.00"),
        expires_at=EXPIRES,
        status="accepted",
    )
    fields.update(changes)
    return store.create_order(**fields)


def test_create_records_the_order_and_its_event(store: Store, clock: FakeClock) -> None:
    order, created = new_order(store)
    assert created
    assert order == Order(
        order_id="A-1",
        nozzle=1,
        grade="92",
        price=Decimal("7.50"),
        preset=Preset("amount", Decimal("100.00")),
        paid=Decimal("100.00"),
        status="accepted",
        reason=None,
        sale_id=None,
        refund=None,
        authorization_id=None,
        expires_at=EXPIRES,
        created_at=T0,
        updated_at=T0,
    )
    assert store.get_order("A-1") == order
    [event] = store.events_since(0)
    assert (event.seq, event.type, event.ts) == (1, "order.updated", T0)
    # CONTRACT section 4: exactly these keys.
    assert event.data == {
        "order_id": "A-1",
        "status": "accepted",
        "reason": None,
        "sale_id": None,
        "refund": None,
    }
    assert [e.seq for e in store.outbox_pending()] == [1]


def test_create_is_idempotent_on_the_order_id(store: Store, db_path: Path) -> None:
    first, _ = new_order(store)
    again, created = new_order(store, paid=Decimal("999.00"), status="rejected", reason="x")
    assert not created
    assert again == first
    assert count(db_path, "orders") == 1
    assert store.last_seq() == 1  # no second event


def test_a_rejected_order_carries_its_reason(store: Store) -> None:
    order, _ = new_order(store, status="rejected", reason="price_mismatch")
    assert (order.status, order.reason) == ("rejected", "price_mismatch")
    assert store.events_since(0)[0].data["reason"] == "price_mismatch"
    assert store.open_orders() == []


def test_update_moves_the_order_with_one_event_each(store: Store, clock: FakeClock) -> None:
    new_order(store)
    clock.advance(timedelta(seconds=3))
    authorized = store.update_order("A-1", status="authorized", authorization_id="auth-1")
    assert (authorized.status, authorized.authorization_id) == ("authorized", "auth-1")
    assert authorized.updated_at == T0 + timedelta(seconds=3)
    assert authorized.created_at == T0
    fuelling = store.update_order("A-1", status="fuelling")
    assert fuelling.authorization_id == "auth-1"  # None keeps what is stored
    done = store.update_order("A-1", status="completed", sale_id="s-1", refund=Decimal("0.5"))
    assert (done.sale_id, done.refund, done.authorization_id) == ("s-1", Decimal("0.5"), "auth-1")
    events = store.events_since(0)
    assert [e.data["status"] for e in events] == ["accepted", "authorized", "fuelling", "completed"]
    assert events[-1].data == {
        "order_id": "A-1",
        "status": "completed",
        "reason": None,
        "sale_id": "s-1",
        "refund": "0.50",
    }
    assert [e.seq for e in events] == [1, 2, 3, 4]


def test_an_update_that_changes_nothing_tells_nobody(store: Store) -> None:
    new_order(store)
    store.update_order("A-1", status="authorized", authorization_id="auth-1")
    again = store.update_order("A-1", status="authorized", authorization_id="auth-1")
    assert again.status == "authorized"
    assert store.last_seq() == 2


def test_a_cancelled_order_refunds_everything(store: Store) -> None:
    new_order(store)
    order = store.update_order(
        "A-1", status="cancelled", reason="cancelled by the app", refund=Decimal("100.00")
    )
    assert store.events_since(1)[0].data == {
        "order_id": "A-1",
        "status": "cancelled",
        "reason": "cancelled by the app",
        "sale_id": None,
        "refund": "100.00",
    }
    assert order.refund == Decimal("100.00")


def test_update_of_an_unknown_order(store: Store) -> None:
    with pytest.raises(UnknownOrder, match="nope"):
        store.update_order("nope", status="cancelled")
    assert store.last_seq() == 0


def test_unknown_statuses_and_bad_values_are_refused(store: Store, db_path: Path) -> None:
    with pytest.raises(ValueError, match="status"):
        new_order(store, status="lost")
    with pytest.raises(ValueError, match="paid"):
        new_order(store, paid=Decimal("0"))
    with pytest.raises(ValueError, match="nozzle"):
        new_order(store, nozzle=0)
    new_order(store)
    with pytest.raises(ValueError, match="status"):
        store.update_order("A-1", status="teleported")
    assert store.get_order("A-1") is not None
    assert store.last_seq() == 1


def test_open_orders_and_lookup_by_authorization(store: Store, clock: FakeClock) -> None:
    for n, status in enumerate(
        ["accepted", "authorized", "fuelling", "completed", "expired", "cancelled", "rejected"]
    ):
        clock.advance(timedelta(seconds=1))
        new_order(store, f"A-{n}")
        if status != "accepted":
            store.update_order(f"A-{n}", status=status, authorization_id=f"auth-{n}")
    assert [o.order_id for o in store.open_orders()] == ["A-0", "A-1", "A-2"]
    found = store.order_for_authorization("auth-2")
    assert found is not None and found.order_id == "A-2"
    assert store.order_for_authorization("auth-x") is None
    assert store.get_order("A-x") is None


def test_a_volume_preset_reads_back(store: Store, db_path: Path) -> None:
    new_order(store, preset=Preset("volume", Decimal("20.00")), paid=Decimal("150.00"))
    order = store.get_order("A-1")
    assert order is not None
    assert order.preset == Preset("volume", Decimal("20.00"))
    assert peek(db_path, "SELECT preset_kind, preset_value, paid FROM orders") == [
        ("volume", "20.00", "150.00")
    ]


def test_an_order_and_its_event_are_one_transaction(store: Store, db_path: Path) -> None:
    # The disk fills after the order row, before the event: neither may stay.
    conn = store_connection(store)
    conn.execute(
        "CREATE TRIGGER no_room BEFORE INSERT ON events BEGIN "
        "SELECT RAISE(ABORT, 'database or disk is full'); END"
    )
    with pytest.raises(StoreUnavailable):
        new_order(store)
    assert count(db_path, "orders") == 0
    conn.execute("DROP TRIGGER no_room")
    new_order(store)
    conn.execute(
        "CREATE TRIGGER no_room BEFORE INSERT ON events BEGIN "
        "SELECT RAISE(ABORT, 'database or disk is full'); END"
    )
    with pytest.raises(StoreUnavailable):
        store.update_order("A-1", status="cancelled")
    order = store.get_order("A-1")
    assert order is not None and order.status == "accepted"
    assert store.last_seq() == 1
