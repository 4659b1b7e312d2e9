from __future__ import annotations

import sqlite3
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from domain.model import Preset
from edge.store import Store
from edge.store.schema import MIGRATIONS, migrate

from .conftest import T0, FakeClock, peek

# --- the replay cache of cloud commands


def test_a_command_id_is_new_once(store: Store) -> None:
    until = T0 + timedelta(minutes=5)
    assert store.remember_command("cmd-1", until) is True
    assert store.remember_command("cmd-1", until) is False
    assert store.remember_command("cmd-1", until + timedelta(days=1)) is False
    assert store.remember_command("cmd-2", until) is True


def test_remembered_ids_survive_a_restart(db_path: Path, clock: FakeClock) -> None:
    with Store.open(db_path, clock=clock) as store:
        assert store.remember_command("cmd-1", T0 + timedelta(minutes=5))
    with Store.open(db_path, clock=clock) as store:
        assert store.remember_command("cmd-1", T0 + timedelta(minutes=5)) is False


def test_seen_at_is_the_store_clock(store: Store, db_path: Path, clock: FakeClock) -> None:
    clock.advance(timedelta(seconds=7))
    store.remember_command("cmd-1", T0 + timedelta(minutes=5))
    rows = peek(db_path, "SELECT id, expires_at, seen_at FROM commands_seen")
    assert rows == [
        ("cmd-1", "2026-11-22T01:20:00.000000+00:00", "2026-11-22T01:15:07.000000+00:00")
    ]


def test_forget_drops_only_ids_expired_before(store: Store) -> None:
    for n in range(5):
        store.remember_command(f"cmd-{n}", T0 + timedelta(minutes=n))
    assert store.forget_commands(T0 + timedelta(minutes=2)) == 2  # cmd-0 and cmd-1
    assert store.remember_command("cmd-0", T0) is True  # forgotten: could not be run anyway
    assert store.remember_command("cmd-2", T0) is False
    assert store.remember_command("cmd-4", T0) is False
    assert store.forget_commands(T0 - timedelta(days=1)) == 0


def test_forgetting_uses_the_expiry_index(db_path: Path) -> None:
    Store.open(db_path).close()
    plan = peek(db_path, "EXPLAIN QUERY PLAN DELETE FROM commands_seen WHERE expires_at < 'x'")
    assert any("commands_seen_by_expiry" in str(row) for row in plan)


# --- upgrading a station from the previous schema


def test_migration_from_version_1_keeps_the_data(db_path: Path, clock: FakeClock) -> None:
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        assert migrate(conn, MIGRATIONS[:1]) == 1
        # What a version 1 station holds: events waiting for the cloud, prices, a sale.
        conn.executescript("""
            BEGIN;
            UPDATE counters SET value = 2 WHERE name = 'event_seq';
            INSERT INTO events VALUES (1, 'e-1', 'sale.completed',
                '2026-11-22T01:00:00.000000+00:00', '{"id":"s-1"}');
            INSERT INTO events VALUES (2, 'e-2', 'tank.reading',
                '2026-11-22T01:01:00.000000+00:00', '{}');
            INSERT INTO outbox VALUES (2);
            INSERT INTO meta VALUES ('price_set_id', 'config');
            INSERT INTO prices VALUES ('92', '7.50', 'config', '2026-11-22T01:00:00.000000+00:00');
            INSERT INTO sales (id, seq, pump, nozzle, logical, grade, price, volume, amount,
                ended_at, recovered, totals_volume_after, totals_amount_after, fill_key)
            VALUES ('s-1', 1, 1, 1, 1, '92', '7.50', '40.00', '300.00',
                '2026-11-22T01:00:00.000000+00:00', 0, '10040.00', '75300.00', '10040');
            COMMIT;
        """)
    finally:
        conn.close()

    with Store.open(db_path, clock=clock) as store:
        assert peek(db_path, "PRAGMA user_version") == [(len(MIGRATIONS),)]
        assert [e.id for e in store.events_since(0)] == ["e-1", "e-2"]
        assert [e.seq for e in store.outbox_pending()] == [2]
        assert store.current_price_set() == ("config", {"92": Decimal("7.50")})
        sale = store.get_sale("s-1")
        assert sale is not None and sale.amount == Decimal("300.00")
        # The new tables work, and the seq carries on from the old events.
        _, created = store.create_order(
            order_id="A-1",
            nozzle=1,
            grade="92",
            price=Decimal("7.50"),
            preset=Preset("amount", Decimal("100.00")),
            paid=Decimal("100.00"),
            expires_at=T0 + timedelta(minutes=5),
            status="accepted",
        )
        assert created
        assert store.last_seq() == 3
        assert store.remember_command("cmd-1", T0)
        assert store.schedule_prices(
            "PS-1", effective_at=T0, prices={"92": Decimal("7.62")}, source="cloud"
        )[1]
