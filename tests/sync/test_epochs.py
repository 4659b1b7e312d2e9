"""Ledger epochs (docs/cloud.md, "Epochs"): in the store, in `forecourt db restore`, and end to
end through a real Mosquitto to the cloud peer, which keys events by (epoch, seq).

A station restored from an old backup, a new PC with an empty ledger, and a ledger copied back
by hand all reuse seqs the cloud has committed; each time every sale must still reach the cloud,
none dropped as a "duplicate" and none counted twice.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from domain.files import mode_of
from edge.store import Store
from edge.store.maintenance import backup
from edge.store.restore import RestoreError, restore
from simulator.cloud import CloudPeer
from tests.helpers import wait_until
from tests.mosquitto import Mosquitto
from tests.sync.conftest import SID, StoreOutbox, make_link

NOW = datetime(2026, 11, 22, 1, 15, tzinfo=UTC)


def sell(store: Store, n: int) -> None:
    store.append_event("sale.completed", {"id": f"sale-{store.path.name}-{n}", "n": n})


def events_of(path: Path) -> list[tuple[int, int, str]]:
    with Store.open(path) as store:
        return [(e.epoch, e.seq, e.type) for e in store.events_since(0, 10_000)]


# ------------------------------------------------------------------------------- in the store


def test_events_are_written_in_the_current_epoch_and_a_new_one_is_announced(
        tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db", clock=lambda: NOW) as store:
        first = store.append_event("a", {})
        assert (first.epoch, store.ledger_position()) == (1, (1, 1))
        started = store.start_epoch("restore", {"backup": "b.db"})
        assert (started.seq, started.epoch, started.type) == (2, 2, "epoch.started")
        assert started.data == {"epoch": 2, "first_seq": 2, "previous_epoch": 1,
                                "reason": "restore", "backup": "b.db"}
        assert store.append_event("b", {}).epoch == 2
        assert [(e.epoch, e.seq) for e in store.outbox_pending()] == [(1, 1), (2, 2), (2, 3)]
        # An ack names its epoch: acks of epoch 1 never remove events of epoch 2.
        assert store.outbox_ack(3, 1) == 1
        assert store.outbox_ack(2, 2) == 1
        assert [(e.epoch, e.seq) for e in store.outbox_pending()] == [(2, 3)]


def test_a_conflict_moves_the_unacked_events_from_its_seq_on(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db", clock=lambda: NOW) as store:
        for _ in range(4):
            store.append_event("a", {})
        store.outbox_ack(1, 1)
        assert store.resolve_epoch_conflict(1, 1, cloud_epoch=3) is None  # acked: stale
        assert store.resolve_epoch_conflict(2, 2, cloud_epoch=3) is None  # no such key here
        started = store.resolve_epoch_conflict(1, 2, cloud_epoch=3)
        assert started is not None
        assert (started.seq, started.epoch) == (5, 4)
        assert started.data["first_seq"] == 2 and started.data["conflict"]["moved"] == 3
        assert [(e.epoch, e.seq) for e in store.events_since(0)] == [
            (1, 1), (4, 2), (4, 3), (4, 4), (4, 5)]
        assert store.resolve_epoch_conflict(1, 2, cloud_epoch=3) is None  # reported again
        assert store.ledger_position() == (4, 5)


# -------------------------------------------------------------------------- forecourt db restore


@pytest.fixture
def station_db(tmp_path: Path) -> Path:
    """A ledger of 5 events with a backup taken after the third (`station.db` and `old.db`)."""
    db = tmp_path / "station.db"
    with Store.open(db, clock=lambda: NOW) as store:
        for n in range(3):
            sell(store, n)
        backup(store, tmp_path / "old.db")
        for n in range(3, 5):
            sell(store, n)
    return db


def test_a_restore_puts_the_backup_back_in_a_new_epoch_and_keeps_what_it_replaced(
        station_db: Path) -> None:
    done = restore(station_db.with_name("old.db"), station_db, now=NOW)
    assert (done.epoch, done.first_seq, done.backup_last_seq) == (2, 4, 3)
    assert events_of(station_db) == [(1, 1, "sale.completed"), (1, 2, "sale.completed"),
                                     (1, 3, "sale.completed"), (2, 4, "epoch.started")]
    assert done.replaced == station_db.with_name("station.db.replaced-20261122T011500Z")
    assert [seq for _, seq, _ in events_of(done.replaced)] == [1, 2, 3, 4, 5]
    assert mode_of(done.replaced) == 0o600
    with Store.open(station_db) as store:
        assert store.append_event("sale.completed", {}).seq == 5  # the next seq, epoch 2
        assert store.ledger_position() == (2, 5)
    # Nothing is left of the staging copy.
    assert sorted(p.name for p in station_db.parent.iterdir()
                  if "restoring" in p.name) == []


def test_a_restore_is_refused_while_the_database_is_open(station_db: Path) -> None:
    before = events_of(station_db)
    with Store.open(station_db), pytest.raises(RestoreError) as refused:  # as the daemon does
        restore(station_db.with_name("old.db"), station_db, now=NOW)
    assert refused.value.code == "in_use"
    assert "stop the daemon first" in str(refused.value)
    assert events_of(station_db) == before
    assert not list(station_db.parent.glob("*.replaced-*"))


@pytest.mark.parametrize("content", [b"", b"not a database at all" * 100])
def test_what_is_not_a_ledger_is_refused_and_nothing_changes(
        station_db: Path, content: bytes) -> None:
    bad = station_db.with_name("bad.db")
    bad.write_bytes(content)
    before = events_of(station_db)
    with pytest.raises(RestoreError) as refused:
        restore(bad, station_db, now=NOW)
    assert refused.value.code == "bad_backup"
    assert events_of(station_db) == before
    with pytest.raises(RestoreError, match="is not a file"):
        restore(station_db.with_name("missing.db"), station_db, now=NOW)


def test_a_damaged_database_is_replaced_and_kept_as_it_was(station_db: Path) -> None:
    station_db.write_bytes(b"\x00garbage where the ledger was" * 200)
    done = restore(station_db.with_name("old.db"), station_db, now=NOW)
    assert done.replaced is not None
    assert done.replaced.read_bytes().startswith(b"\x00garbage")
    assert events_of(station_db)[-1] == (2, 4, "epoch.started")


def test_a_restore_onto_a_new_pc_makes_the_database(tmp_path: Path, station_db: Path) -> None:
    fresh = tmp_path / "new-pc" / "station.db"
    done = restore(station_db.with_name("old.db"), fresh, now=NOW)
    assert done.replaced is None
    assert events_of(fresh)[-1] == (2, 4, "epoch.started")


def test_the_command_line_restores_and_refuses(tmp_path: Path, station_db: Path) -> None:
    config = tmp_path / "station.toml"
    config.write_text(
        '[station]\nid = "XJ-TEST-0001"\nname = "测试"\ntimezone = "Asia/Shanghai"\n'
        f'[storage]\npath = "{station_db}"\n[api]\nlisten = "127.0.0.1:18080"\n'
        '[[grades]]\ncode = "92"\nname = "92号汽油"\nprice = "7.50"\n'
        '[[lines]]\nid = "line1"\nport = "loop://"\nprotocol = "dart"\n'
        '[[pumps]]\nnumber = 1\nline = "line1"\naddress = 0x50\n'
        '[[pumps.nozzles]]\nnumber = 1\nlogical = 1\ngrade = "92"\n', "utf-8")

    def forecourt(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "edge.cli", *args], capture_output=True,
                              text=True, timeout=60, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    refused = forecourt("db", "restore", "--config", str(config), "--from",
                        str(tmp_path / "nothing.db"))
    assert refused.returncode == 1, refused
    assert "restore refused (no_backup)" in refused.stderr
    done = forecourt("db", "restore", "--config", str(config), "--from",
                     str(station_db.with_name("old.db")))
    assert done.returncode == 0, done.stderr
    assert "epoch 2 starts at seq 4" in done.stdout
    assert "station.db.replaced-" in done.stdout
    assert events_of(station_db)[-1] == (2, 4, "epoch.started")


# --------------------------------------------------------------- end to end, to the cloud peer


async def run_link(store: Store, cloud: CloudPeer, broker: Mosquitto, boot: str,
                   sales: int, *, start: int) -> StoreOutbox:
    """Sells `sales` times with a link up, until the cloud acked all of the outbox."""
    outbox = StoreOutbox(store)
    async with make_link(broker.url, outbox, boot_id=boot) as link:
        for n in range(start, start + sales):
            await asyncio.to_thread(sell, store, n)
            link.events_committed()
        await wait_until(lambda: _empty(store), timeout=20, what="the outbox emptied by acks")
        assert link.forged_acks == 0
    return outbox


async def _empty(store: Store) -> bool:
    return await asyncio.to_thread(store.outbox_backlog) == 0


def sale_ids(cloud: CloudPeer) -> list[Any]:
    return [sale["id"] for sale in cloud.sales()]


@pytest.mark.usefixtures("no_leaks")
async def test_a_restored_station_and_its_new_sales_reach_the_cloud_with_nothing_dropped(
        tmp_path: Path, broker: Mosquitto) -> None:
    db = tmp_path / "station.db"
    async with CloudPeer(broker.url, SID) as cloud:
        with Store.open(db) as store:
            for n in range(3):  # the link was down: the backup holds them unacknowledged
                sell(store, n)
            backup(store, tmp_path / "last-night.db")
            await run_link(store, cloud, broker, "boot-2", 8, start=3)  # seq 4..11
        assert cloud.contiguous() == 11

        done = restore(tmp_path / "last-night.db", db, now=datetime.now(UTC))
        assert (done.epoch, done.first_seq) == (2, 4)
        with Store.open(db) as store:
            await run_link(store, cloud, broker, "boot-3", 2, start=100)

        # Every sale of both ledgers, once: the 11 of the lost one, the 2 after the restore.
        assert sale_ids(cloud) == [f"sale-station.db-{n}" for n in range(11)] + [
            f"sale-station.db-{n}" for n in (100, 101)]
        assert cloud.stream.conflicts == []
        assert [(e.get("epoch"), e["seq"], e["type"]) for e in cloud.events()][11:] == [
            (2, 4, "epoch.started"), (2, 5, "sale.completed"), (2, 6, "sale.completed")]
        # The restored outbox sent 1..3 again: acked up to 3, never up to the 11 the cloud has
        # from the lost ledger (the restored ledger, at seq 6, would refuse that as forged:
        # run_link checks it did not).
        assert cloud.last_acks == {1: 11, 2: 6}
        assert cloud.duplicates == 3


@pytest.mark.usefixtures("no_leaks")
async def test_a_new_pc_with_an_empty_ledger_moves_to_a_new_epoch_on_the_conflict(
        tmp_path: Path, broker: Mosquitto) -> None:
    async with CloudPeer(broker.url, SID) as cloud:
        with Store.open(tmp_path / "old-pc.db") as store:
            await run_link(store, cloud, broker, "old-pc", 5, start=0)
        with Store.open(tmp_path / "new-pc.db") as store:  # the same station id, seq 1 again
            await run_link(store, cloud, broker, "new-pc", 3, start=0)
            assert store.ledger_position() == (2, 4)
        assert sale_ids(cloud) == [f"sale-old-pc.db-{n}" for n in range(5)] + [
            f"sale-new-pc.db-{n}" for n in range(3)]
        assert cloud.stream.conflicts[0] == (1, 1)
        assert cloud.conflicts_sent >= 1


@pytest.mark.usefixtures("no_leaks")
async def test_a_backup_copied_back_by_hand_is_caught_by_the_conflict(
        tmp_path: Path, broker: Mosquitto) -> None:
    """Without `db restore` (a file copied over the database) the epoch stays; the cloud's
    conflict report moves the new events to a new epoch instead."""
    db = tmp_path / "station.db"
    async with CloudPeer(broker.url, SID) as cloud:
        with Store.open(db) as store:
            await run_link(store, cloud, broker, "boot-1", 2, start=0)
            backup(store, tmp_path / "copy.db")
            await run_link(store, cloud, broker, "boot-2", 2, start=2)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        (tmp_path / "copy.db").rename(db)
        with Store.open(db) as store:
            await run_link(store, cloud, broker, "boot-3", 2, start=50)
            assert store.ledger_position() == (2, 5)
        assert sale_ids(cloud) == [f"sale-station.db-{n}" for n in (0, 1, 2, 3, 50, 51)]

