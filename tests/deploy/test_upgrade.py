"""Upgrading a station: a database written by an older release opens with the current code, a
copy of it as it was is kept first, and every event the old release had not delivered reaches a
real cloud exactly once.

For every older schema version (1 .. len(MIGRATIONS) - 1) a database is made with the first
migrations only and filled with plain INSERTs the way version 1 of the store wrote sales,
payments, totals, events and the outbox (schema.py `_V1`; later versions only add tables, so a
release at any of those versions wrote these rows the same way). "Current" is always
len(MIGRATIONS), never a number written here.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from edge import __version__
from edge.hub import EventHub
from edge.ledger import Ledger
from edge.outbox import LedgerOutbox
from edge.store import Store, StoreUnavailable
from edge.store.db import KEEP_MIGRATION_COPIES, copy_path, migration_copies
from edge.store.schema import MIGRATIONS, migrate, schema_version
from simulator.cloud import CloudPeer
from simulator.control import Simulator
from sync.envelope import event_envelope
from sync.keys import generate
from sync.link import CloudLink
from tests.e2e.conftest import start_station
from tests.helpers import StationSpec, free_port
from tests.mosquitto import Mosquitto

CURRENT = len(MIGRATIONS)
OLD_VERSIONS = list(range(1, CURRENT))
ZONE = ZoneInfo("Asia/Shanghai")
ACKED = 2  # the old release's cloud had committed events 1 and 2; 3.. wait in the outbox

# A dispenser since removed from the config: its rows must not meet a configured pump's
# recovery (which would compare the old totals with the simulator's).
PUMP, NOZZLE = 9, 17


@dataclass(frozen=True)
class OldEvent:
    seq: int
    id: str
    type: str
    ts: str
    data: dict[str, Any]


def _sale_data(sale_id: str, seq: int, volume: str, amount: str, ended: str,
               paid: bool) -> dict[str, Any]:
    return {"id": sale_id, "seq": seq, "nozzle": NOZZLE, "grade": "92", "volume": volume,
            "amount": amount, "price": "7.50", "started_at": None, "ended_at": ended,
            "order_id": None, "paid": paid, "payments": []}


OLD_EVENTS = (
    OldEvent(1, "0193c9a0-0001-7000-8000-000000000001", "price.applied",
             "2026-11-20T01:00:00.000000+00:00",
             {"pump": PUMP, "price_set_id": "config", "prices": {"92": "7.50"}}),
    OldEvent(2, "0193c9a0-0002-7000-8000-000000000002", "sale.completed",
             "2026-11-20T01:05:00.000000+00:00",
             _sale_data("S-0002", 2, "40.00", "300.00", "2026-11-20T09:05:00+08:00", False)),
    OldEvent(3, "0193c9a0-0003-7000-8000-000000000003", "sale.completed",
             "2026-11-20T01:09:00.000000+00:00",
             _sale_data("S-0003", 3, "13.34", "100.05", "2026-11-20T09:09:00+08:00", False)),
    OldEvent(4, "0193c9a0-0004-7000-8000-000000000004", "pump.alarm",
             "2026-11-20T01:10:00.000000+00:00", {"pump": PUMP, "code": 9}),
    OldEvent(5, "0193c9a0-0005-7000-8000-000000000005", "sale.completed",
             "2026-11-20T01:12:00.000000+00:00",
             _sale_data("S-0005", 5, "40.00", "300.00", "2026-11-20T09:12:00+08:00", False)),
    OldEvent(6, "0193c9a0-0006-7000-8000-000000000006", "reconciliation.discrepancy",
             "2026-11-20T01:12:00.000000+00:00",
             {"kind": "totals_mismatch", "pump": PUMP, "nozzle": NOZZLE, "sale_id": "S-0005"}),
)
UNACKED = [e.seq for e in OLD_EVENTS if e.seq > ACKED]

# (id, seq, volume, amount, totals volume before -> after, totals amount before -> after)
OLD_SALES = (
    ("S-0002", 2, "40.00", "300.00", "1000.00", "1040.00", "7500.00", "7800.00"),
    ("S-0003", 3, "13.34", "100.05", "1040.00", "1053.34", "7800.00", "7900.05"),
    # The same volume and amount as S-0002: two identical fills are two sales.
    ("S-0005", 5, "40.00", "300.00", "1053.34", "1093.34", "7900.05", "8200.05"),
)


def write_old_database(path: Path, version: int) -> None:
    """A database at schema `version`, with the rows a version 1 store wrote."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        assert migrate(conn, MIGRATIONS[:version]) == version
        conn.execute("BEGIN")
        for event in OLD_EVENTS:
            conn.execute("INSERT INTO events (seq, id, type, ts, data) VALUES (?, ?, ?, ?, ?)",
                         (event.seq, event.id, event.type, event.ts,
                          json.dumps(event.data, ensure_ascii=False, separators=(",", ":"))))
            if event.seq > ACKED:
                conn.execute("INSERT INTO outbox (seq) VALUES (?)", (event.seq,))
        conn.execute("UPDATE counters SET value = ? WHERE name = 'event_seq'",
                     (OLD_EVENTS[-1].seq,))
        conn.execute("INSERT INTO prices (grade, price, price_set_id, updated_at) "
                     "VALUES ('92', '7.50', 'config', '2026-11-20T01:00:00.000000+00:00')")
        for sale_id, seq, volume, amount, vb, va, ab, aa in OLD_SALES:
            ended = next(e.ts for e in OLD_EVENTS if e.seq == seq)
            conn.execute(
                "INSERT INTO sales (id, seq, pump, nozzle, logical, grade, price, volume, amount, "
                "price_set_id, started_at, ended_at, authorization_id, order_id, recovered, "
                "totals_volume_before, totals_volume_after, totals_amount_before, "
                "totals_amount_after, fill_key, paid) "
                "VALUES (?, ?, ?, ?, 1, '92', '7.50', ?, ?, 'config', NULL, ?, NULL, NULL, 0, "
                "?, ?, ?, ?, ?, 0)",
                (sale_id, seq, PUMP, NOZZLE, volume, amount, ended, vb, va, ab, aa,
                 str(Decimal(va).normalize())))
            conn.execute("INSERT INTO totals (pump, nozzle, volume_total, amount_total, read_at, "
                         "source) VALUES (?, ?, ?, ?, ?, 'pump')", (PUMP, NOZZLE, va, aa, ended))
        conn.execute("INSERT INTO payments (id, sale_id, method, amount, user_name, created_at) "
                     "VALUES ('P-0001', 'S-0002', 'cash', '300.00', 'li', "
                     "'2026-11-20T01:06:00.000000+00:00')")
        conn.execute("UPDATE sales SET paid = 1 WHERE id = 'S-0002'")
        conn.execute("COMMIT")
    finally:
        conn.close()


def read_version(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return schema_version(conn)
    finally:
        conn.close()


# ------------------------------------------------------------------------ opening, the copy


@pytest.mark.parametrize("version", OLD_VERSIONS)
def test_an_old_database_is_copied_then_migrated_and_keeps_everything(
        tmp_path: Path, version: int) -> None:
    db = tmp_path / "station.db"
    write_old_database(db, version)
    with Store.open(db, zone=ZONE) as store:
        pending = store.outbox_pending(limit=100)
        assert [e.seq for e in pending] == UNACKED
        for event in pending:
            old = OLD_EVENTS[event.seq - 1]
            assert (event.id, event.type, event.data) == (old.id, old.type, old.data)
            assert event.ts == datetime.fromisoformat(old.ts)
        sales = store.sales(limit=100)
        assert [(s.id, s.seq, s.volume, s.amount, s.price) for s in sales] == [
            (sale_id, seq, Decimal(volume), Decimal(amount), Decimal("7.50"))
            for sale_id, seq, volume, amount, *_ in OLD_SALES]
        paid = store.get_sale("S-0002")
        assert paid is not None and [(p.method, p.amount) for p in paid.payments] == [
            ("cash", Decimal("300.00"))]
        assert store.last_seq() == OLD_EVENTS[-1].seq
        # The seq goes on from the old counter: the cloud never sees a number twice.
        assert store.append_event("test.after_upgrade", {}).seq == OLD_EVENTS[-1].seq + 1
    assert read_version(db) == CURRENT

    copy = copy_path(db, CURRENT)
    assert copy.name == f"station.db.pre-v{CURRENT}.bak"
    assert read_version(copy) == version  # the database as the old release left it
    conn = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
    try:
        assert conn.execute("SELECT seq FROM outbox ORDER BY seq").fetchall() == [
            (seq,) for seq in UNACKED]
        assert conn.execute("SELECT COUNT(*) FROM sales").fetchone() == (len(OLD_SALES),)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()
    assert not copy.with_name(copy.name + "-wal").exists()  # one self-contained file
    assert not list(tmp_path.glob("*.partial"))


def test_a_new_or_current_database_gets_no_copy(tmp_path: Path) -> None:
    db = tmp_path / "station.db"
    with Store.open(db) as store:  # new: version 0, nothing to keep
        store.append_event("test.event", {})
    with Store.open(db):  # current: nothing to migrate
        pass
    assert migration_copies(db) == []
    assert not list(tmp_path.glob("*.bak*"))


def test_without_room_for_the_copy_nothing_is_migrated(tmp_path: Path) -> None:
    db = tmp_path / "station.db"
    write_old_database(db, 1)
    # Where the copy would be written is taken: the copy fails as on a full disk.
    (tmp_path / f"{copy_path(db, CURRENT).name}.{os.getpid()}.partial").mkdir()
    with pytest.raises(StoreUnavailable) as refused:
        Store.open(db)
    assert "before migrating it to v" in str(refused.value)
    assert "the database was not changed" in str(refused.value)
    assert read_version(db) == 1
    assert migration_copies(db) == []


def test_only_the_newest_copies_are_kept_and_stale_partials_go(tmp_path: Path) -> None:
    db = tmp_path / "station.db"
    write_old_database(db, CURRENT - 1)
    older = [copy_path(db, n) for n in range(1, CURRENT)]
    for path in older:
        path.write_bytes(b"an older copy")
    stale = tmp_path / "station.db.pre-v2.bak.99999.partial"
    fresh = tmp_path / "station.db.pre-v2.bak.99998.partial"
    stale.write_bytes(b"left by a power cut")
    fresh.write_bytes(b"being written by another process")
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    Store.open(db).close()
    kept = [version for version, _ in migration_copies(db)]
    assert kept == list(range(CURRENT, 0, -1))[:KEEP_MIGRATION_COPIES]
    assert not stale.exists() and fresh.exists()


def test_a_partial_copy_left_under_this_pid_is_replaced(tmp_path: Path) -> None:
    db = tmp_path / "station.db"
    write_old_database(db, 1)
    left = tmp_path / f"{copy_path(db, CURRENT).name}.{os.getpid()}.partial"
    left.write_bytes(b"half a copy, from before a reboot")
    left.with_name(left.name + "-journal").write_bytes(b"and its journal")
    Store.open(db).close()
    assert read_version(copy_path(db, CURRENT)) == 1
    assert not list(tmp_path.glob("*.partial*"))


def test_systemd_hears_of_the_copy_and_the_migration(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    address = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    db = tmp_path / "station.db"
    write_old_database(db, 1)
    Store.open(db).close()
    lines: list[str] = []
    while True:
        try:
            lines.extend(listener.recv(4096).decode().splitlines())
        except BlockingIOError:
            break
    listener.close()
    assert lines[0] == (f"STATUS=copying station.db (schema v1) to station.db.pre-v{CURRENT}.bak "
                        f"before migrating it to v{CURRENT}")
    assert f"STATUS=migrating station.db from schema v1 to v{CURRENT}" in lines
    assert sum(line.startswith("EXTEND_TIMEOUT_USEC=") for line in lines) >= 2


# --------------------------------------------------------------------------- refusing newer


def test_a_database_from_a_newer_release_is_refused_at_start(tmp_path: Path) -> None:
    db = tmp_path / "station.db"
    with Store.open(db):
        pass
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {CURRENT + 1}")
    conn.close()
    before = db.read_bytes()
    config = tmp_path / "station.toml"
    # The line is never opened: the store refuses before anything else starts.
    config.write_text(StationSpec(port_url="socket://127.0.0.1:9", db=db,
                                  api_port=free_port()).toml(), "utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("JOURNAL_STREAM", "NOTIFY_SOCKET")}
    done = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--config", str(config)],
                          capture_output=True, text=True, timeout=60, env=env, check=False)
    assert done.returncode == 3, done.stderr  # RestartPreventExitStatus: no restart loop
    assert (f"the database has schema version {CURRENT + 1}, but this forecourt only knows "
            f"versions up to {CURRENT}") in done.stderr
    assert db.read_bytes() == before
    assert migration_copies(db) == []


# ------------------------------------------------------------------- delivery to the cloud


async def no_commands(payload: bytes) -> None:
    return None


@pytest.mark.usefixtures("no_leaks")
@pytest.mark.parametrize("version", OLD_VERSIONS)
async def test_old_events_reach_the_cloud_exactly_once(tmp_path: Path, version: int) -> None:
    sid = f"XJ-UPGRADE-V{version}"
    db = tmp_path / "station.db"
    write_old_database(db, version)
    store = await asyncio.to_thread(Store.open, db, zone=ZONE)
    ledger = Ledger(store, EventHub(), zone=ZONE)
    try:
        with Mosquitto(tmp_path / "broker") as broker:
            async with CloudPeer(broker.url, sid, committed=ACKED) as cloud:
                link = CloudLink(
                    station_id=sid, broker=broker.url, outbox=LedgerOutbox(ledger),
                    envelope=lambda event: event_envelope(sid, event, ZONE),
                    on_command=no_commands, live=lambda: {"pumps": []}, boot_id="upgrade",
                    version=__version__, clock=lambda: datetime.now(UTC), reconnect_min=0.05,
                    reconnect_max=0.4, close_timeout=3.0)
                async with link:
                    await cloud.wait_for_seq(OLD_EVENTS[-1].seq, timeout=15)

                    # The cloud's acks empty the outbox (polled: acks are the link's business).
                    async with asyncio.timeout(10):
                        while await asyncio.to_thread(store.outbox_backlog):
                            await asyncio.sleep(0.05)
        assert sorted(cloud.received) == UNACKED
        for seq, envelope in cloud.received.items():
            old = OLD_EVENTS[seq - 1]
            assert (envelope["id"], envelope["type"], envelope["data"]) == (
                old.id, old.type, old.data)
        assert cloud.duplicates == 0 and cloud.stream.conflicts == [] and cloud.gaps() == []
    finally:
        await asyncio.to_thread(ledger.close)
        await asyncio.to_thread(store.close)


@pytest.mark.usefixtures("no_leaks")
async def test_the_daemon_upgrades_the_database_and_delivers_the_old_outbox(
        sim: Simulator, tmp_path: Path) -> None:
    version = CURRENT - 1
    _private, public = generate(tmp_path / "keys")
    db = tmp_path / "station.db"
    write_old_database(db, version)
    with Mosquitto(tmp_path / "broker") as broker:
        assert sim.url is not None
        spec = StationSpec(port_url=sim.url, db=db, api_port=free_port(), broker=broker.url,
                           cloud_public_key=public)
        path = tmp_path / "station.toml"
        path.write_text(spec.toml(), "utf-8")
        async with CloudPeer(broker.url, "XJ-TEST-0001", committed=ACKED) as cloud:
            station, task = await start_station(path)
            try:
                await cloud.wait_for_seq(OLD_EVENTS[-1].seq, timeout=20)

                # The old outbox rows are acknowledged and gone (the station may add its own).
                async with asyncio.timeout(10):
                    while await asyncio.to_thread(_oldest_unacked, station.store) <= \
                            OLD_EVENTS[-1].seq:
                        await asyncio.sleep(0.05)
            finally:
                station.request_stop()
                await asyncio.wait_for(task, 20)
    for seq in UNACKED:
        old = OLD_EVENTS[seq - 1]
        assert (cloud.received[seq]["id"], cloud.received[seq]["data"]) == (old.id, old.data)
    assert cloud.duplicates == 0 and cloud.stream.conflicts == [] and cloud.gaps() == []
    # What the upgraded station said itself follows on from the old seqs.
    assert min((s for s in cloud.received if s not in UNACKED), default=OLD_EVENTS[-1].seq + 1) \
        == OLD_EVENTS[-1].seq + 1
    assert read_version(db) == CURRENT and read_version(copy_path(db, CURRENT)) == version


def _oldest_unacked(store: Store) -> int:
    pending = store.outbox_pending(limit=1)
    return pending[0].seq if pending else store.last_seq() + 1
