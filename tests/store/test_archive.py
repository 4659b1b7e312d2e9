"""`forecourt db archive` on real SQLite files and real archive files."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from domain.model import Preset, Sale
from domain.states import AuthorizationState
from edge.cli import main
from edge.store import Store
from edge.store import archive as archiving
from edge.store.archive import (
    Archive,
    ArchiveError,
    ArchiveRefused,
    archive,
    archive_months,
    archives,
)
from edge.store.maintenance import verify
from edge.store.tanks import TankReading
from tests.helpers import StationSpec

from .conftest import FakeClock, Pump

SHANGHAI = ZoneInfo("Asia/Shanghai")
OCTOBER = datetime(2026, 10, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
NOVEMBER = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
BEFORE = date(2026, 11, 1)  # the cutoff: 2026-10-31T16:00Z
KEYS = {"events": "seq", "sales": "id", "payments": "id", "authorizations": "id",
        "orders": "order_id", "totals": "id", "tank_readings": "id"}


@dataclass
class History:
    store: Store
    clock: FakeClock
    pumps: tuple[Pump, Pump]
    old: list[Sale]
    new: list[Sale]
    tank_volume: Decimal = Decimal(30000)

    def sale(self, n: int, *, order: bool = False, split: bool = False, pay: bool = True) -> Sale:
        """An attended sale as the daemon writes it: authorization, fill, payment, audit."""
        store, pump = self.store, self.pumps[n % 2]
        order_id = f"app-{n}" if order else None
        if order_id is not None:
            store.create_order(order_id=order_id, nozzle=pump.nozzle, grade="92",
                               price=Decimal("7.50"), preset=Preset("amount", Decimal(300)),
                               paid=Decimal(300), expires_at=self.clock() + timedelta(minutes=5),
                               status="accepted")
        auth = store.create_authorization(pump=pump.pump, nozzle=pump.nozzle, preset=None,
                                          source="order" if order else "attendant", user="li",
                                          order_id=order_id)
        store.set_authorization_state(auth.id, AuthorizationState.AUTHORIZED)
        if order_id is not None:
            store.update_order(order_id, status="authorized", authorization_id=auth.id)
        store.audit_append(actor="li", action="nozzle.authorize", target=str(pump.nozzle))
        self.clock.advance(timedelta(minutes=3))
        volume = Decimal(30 + n) + Decimal("0.25")
        amount = (volume * Decimal("7.50")).quantize(Decimal("0.01"))
        sale, _ = store.record_sale(pump.fill(str(volume), str(amount), authorization_id=auth.id,
                                              order_id=order_id))
        if order_id is not None:
            store.update_order(order_id, status="completed", sale_id=sale.id,
                               refund=Decimal(300) - sale.amount)
        # An app order was paid in the app: the station records that payment ("app") itself.
        if pay and split:
            store.add_payment(sale.id, method="cash", amount=Decimal("100.00"), user="li")
            store.add_payment(sale.id, method="wechat", amount=sale.amount - 100, user="li")
        elif pay and not order:
            store.add_payment(sale.id, method="cash", amount=sale.amount, user="li")
        store.audit_append(actor="li", action="sale.pay", target=sale.id)
        self.tank_volume -= sale.volume
        store.record_tank_readings([TankReading(
            tank=1, grade="92", read_at=self.clock(), level_mm=Decimal("1500.5"),
            volume_l=self.tank_volume, ullage_l=Decimal(40000) - self.tank_volume)])
        self.clock.advance(timedelta(hours=1))
        found = store.get_sale(sale.id)
        assert found is not None
        return found


@pytest.fixture
def history(store: Store, clock: FakeClock) -> History:
    """Three days of October and two of November, the shift closed in between, all synced."""
    clock.now = OCTOBER
    store.zone = SHANGHAI
    made = History(store, clock, (Pump(1, 1, clock=clock), Pump(2, 3, Decimal(500),
                                                                 Decimal(3750), clock=clock)),
                   [], [])
    store.open_first_shift()
    for day in range(3):
        clock.now = OCTOBER + timedelta(days=day)
        for n in range(4 * day, 4 * day + 4):
            made.old.append(made.sale(n, order=n == 5, split=n == 6))
    store.close_shift(closed_by="wang", grades={1: "92", 3: "92"})
    clock.now = NOVEMBER
    for n in range(12, 15):
        made.new.append(made.sale(n))
    store.outbox_ack(store.last_seq())
    return made


def table(path: Path, name: str) -> dict[Any, dict[str, Any]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return {row[KEYS[name]]: dict(row) for row in conn.execute(f"SELECT * FROM {name}")}
    finally:
        conn.close()


def snapshot(path: Path) -> dict[str, dict[Any, dict[str, Any]]]:
    return {name: table(path, name) for name in KEYS}


def file_rows(done: Archive, name: str) -> list[dict[str, Any]]:
    [entry] = [f for f in done.files if f.table == name]
    with gzip.open(done.directory / entry.file, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def test_the_old_period_moves_into_files_that_hold_exactly_the_rows_removed(
    history: History, db_path: Path, tmp_path: Path
) -> None:
    store = history.store
    before = snapshot(db_path)
    latest_totals = store.latest_totals()
    done = archive(store, BEFORE, zone=SHANGHAI, directory=tmp_path / "archives",
                   station="XJ-TEST-0001")
    assert done is not None
    after = snapshot(db_path)

    for name, key in KEYS.items():
        removed = {k: row for k, row in before[name].items() if k not in after[name]}
        written = file_rows(done, name)
        assert {row[key]: row for row in written} == removed, name
        assert len(written) == len(removed)
        assert set(after[name]) <= set(before[name])  # nothing added, nothing changed
        assert all(after[name][k] == before[name][k] for k in after[name])

    old_ids = {s.id for s in history.old}
    assert set(after["sales"]) == {s.id for s in history.new}
    assert {r["id"] for r in file_rows(done, "sales")} == old_ids
    # One sale was paid in two parts, the app order's in the app (its "app" payment).
    payments = file_rows(done, "payments")
    assert len(payments) == 13
    assert [p["method"] for p in payments].count("app") == 1
    assert [r["order_id"] for r in file_rows(done, "orders")] == ["app-5"]
    assert len(file_rows(done, "authorizations")) == 12
    # Money stays the exact text stored.
    split = next(r for r in file_rows(done, "payments") if r["method"] == "wechat")
    assert split["amount"] == before["payments"][split["id"]]["amount"]
    assert isinstance(split["amount"], str) and Decimal(split["amount"]) > 0
    # Events: the prefix recorded before the cutoff, up to and with the shift's close.
    seqs = [r["seq"] for r in file_rows(done, "events")]
    shift_closed = min(k for k, e in before["events"].items() if e["type"] == "shift.closed")
    assert seqs == list(range(1, shift_closed + 1))
    assert (done.seq_low, done.seq_high) == (1, shift_closed)
    assert min(after["events"]) == shift_closed + 1
    # Every nozzle's latest reading stays: the next shift close starts from them.
    assert store.latest_totals() == latest_totals
    assert len(after["tank_readings"]) == 3

    manifest = json.loads((done.directory / f"{done.name}.json").read_text("utf-8"))
    assert done.name == "archive-2026-10-01-2026-11-01"
    assert manifest["period"] == {"from": "2026-10-01", "before": "2026-11-01",
                                  "timezone": "Asia/Shanghai",
                                  "cutoff": "2026-10-31T16:00:00.000000+00:00"}
    assert manifest["seq"] == {"low": 1, "high": shift_closed}
    assert manifest["station"] == "XJ-TEST-0001"
    for entry in manifest["files"]:
        data = (done.directory / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert len(data) == entry["bytes"]
        assert len(gzip.decompress(data).splitlines()) == entry["rows"]
    assert not list(done.directory.glob("*.partial"))
    assert archives(store) == [done]

    report = verify(store)
    assert report.ok, report.findings
    [seq_check] = [f for f in report.findings if f.check == "event seq"]
    assert f"1..{shift_closed} archived" in seq_check.detail
    # The seq goes on from where it was; nothing older is left to move.
    assert store.append_event("test.event", {}).seq == max(before["events"]) + 1
    assert archive(store, BEFORE, zone=SHANGHAI, directory=tmp_path / "archives") is None


def test_verify_names_an_altered_and_a_missing_archive_file(
    history: History, tmp_path: Path
) -> None:
    done = archive(history.store, BEFORE, zone=SHANGHAI, directory=tmp_path / "a")
    assert done is not None
    check = f"archive {done.name}"
    events_file = done.directory / f"{done.name}.events.jsonl.gz"
    data = bytearray(events_file.read_bytes())
    data[-1] ^= 0xFF
    events_file.write_bytes(bytes(data))
    report = verify(history.store)
    assert not report.ok
    [finding] = [f for f in report.findings if not f.ok]
    assert finding.check == check
    assert f"{events_file} has changed" in finding.detail

    (done.directory / f"{done.name}.sales.jsonl.gz").unlink()
    [finding] = [f for f in verify(history.store).findings if not f.ok]
    assert "sales.jsonl.gz is missing" in finding.detail
    assert "events.jsonl.gz has changed" in finding.detail


def test_an_unacknowledged_event_in_the_period_refuses_and_changes_nothing(
    history: History, db_path: Path, tmp_path: Path
) -> None:
    store = history.store
    raw = sqlite3.connect(db_path)
    raw.execute("INSERT INTO outbox (seq) VALUES (12)")  # as if the cloud never acked seq 12
    raw.commit()
    raw.close()
    before = snapshot(db_path)
    with pytest.raises(ArchiveRefused, match=r"event 12 .* not acknowledged") as refused:
        archive(store, BEFORE, zone=SHANGHAI, directory=tmp_path / "archives")
    assert refused.value.seq == 12
    assert snapshot(db_path) == before
    assert not (tmp_path / "archives").exists()
    assert archives(store) == []
    # An earlier date, whose events were all acknowledged, goes: October 1st, 4 sales with
    # their tank readings.
    done = archive(store, date(2026, 10, 2), zone=SHANGHAI, directory=tmp_path / "archives")
    assert done is not None and (done.seq_low, done.seq_high) == (1, 8)


def test_an_unpaid_sale_or_the_open_shift_in_the_period_refuses(
    store: Store, clock: FakeClock, db_path: Path, tmp_path: Path
) -> None:
    clock.now = OCTOBER
    made = History(store, clock, (Pump(1, 1, clock=clock), Pump(2, 3, clock=clock)), [], [])
    store.open_first_shift()
    made.sale(0)
    unpaid = made.sale(1, pay=False)
    store.outbox_ack(store.last_seq())
    clock.now = NOVEMBER
    with pytest.raises(ArchiveRefused, match=rf"sale {unpaid.id} .* not paid"):
        archive(store, BEFORE, zone=SHANGHAI, directory=tmp_path)
    store.add_payment(unpaid.id, method="cash", amount=unpaid.amount, user="li")
    store.outbox_ack(store.last_seq())
    with pytest.raises(ArchiveRefused, match="shift 1 is still open") as refused:
        archive(store, BEFORE, zone=SHANGHAI, directory=tmp_path)
    assert refused.value.seq == 1
    assert list(tmp_path.glob("archive-*")) == []
    with pytest.raises(ArchiveError, match="has not begun"):
        archive(store, date(2026, 12, 1), zone=SHANGHAI, directory=tmp_path)


def test_an_archive_interrupted_before_the_delete_leaves_everything_and_runs_again(
    history: History, db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def power_cut(*args: Any) -> None:
        raise OSError("power cut")

    before = snapshot(db_path)
    with monkeypatch.context() as patched:
        patched.setattr(archiving, "_delete", power_cut)
        with pytest.raises(OSError, match="power cut"):
            archive(history.store, BEFORE, zone=SHANGHAI, directory=tmp_path / "a")
    assert snapshot(db_path) == before
    assert archives(history.store) == []
    assert verify(history.store).ok
    left = {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()}
    assert "archive-2026-10-01-2026-11-01.json" in left

    done = archive(history.store, BEFORE, zone=SHANGHAI, directory=tmp_path / "a")
    assert done is not None and done.name == "archive-2026-10-01-2026-11-01"
    # The same rows give the same files, now recorded and the rows gone.
    for entry in done.files:
        assert (done.directory / entry.file).read_bytes() == left[entry.file]
    assert set(table(db_path, "sales")) == {s.id for s in history.new}
    assert verify(history.store).ok


def test_a_failure_during_the_delete_rolls_the_whole_delete_back(
    history: History, db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = archiving._delete

    def then_fail(conn: sqlite3.Connection, plan: Any, files: Any) -> None:
        real(conn, plan, files)
        raise ArchiveError("disk I/O error after the deletes")

    before = snapshot(db_path)
    monkeypatch.setattr(archiving, "_delete", then_fail)
    with pytest.raises(ArchiveError):
        archive(history.store, BEFORE, zone=SHANGHAI, directory=tmp_path / "a")
    assert snapshot(db_path) == before
    assert archives(history.store) == []


def test_an_authorization_a_kept_sale_names_stays(
    history: History, db_path: Path, tmp_path: Path
) -> None:
    store = history.store
    old = history.old[0]
    assert old.authorization_id is not None
    # A sale read back from the pump after a restart, naming the authorization it ran under.
    late, _ = store.record_sale(history.pumps[0].fill(authorization_id=old.authorization_id))
    store.add_payment(late.id, method="cash", amount=late.amount, user="li")
    store.outbox_ack(store.last_seq())
    done = archive(store, BEFORE, zone=SHANGHAI, directory=tmp_path / "a")
    assert done is not None
    assert old.id not in table(db_path, "sales")
    assert old.authorization_id in table(db_path, "authorizations")
    assert old.authorization_id not in {r["id"] for r in file_rows(done, "authorizations")}


def test_a_long_span_is_archived_month_by_month(
    store: Store, clock: FakeClock, db_path: Path, tmp_path: Path
) -> None:
    made = History(store, clock, (Pump(1, 1, clock=clock), Pump(2, 3, clock=clock)), [], [])
    store.zone = SHANGHAI
    store.open_first_shift()
    for n, day in enumerate((datetime(2026, 8, 5, 3, tzinfo=UTC), datetime(2026, 8, 30, 3,
                             tzinfo=UTC), datetime(2026, 10, 9, 3, tzinfo=UTC))):
        clock.now = day
        made.old.append(made.sale(n))
    store.close_shift(closed_by="wang", grades={1: "92", 3: "92"})
    clock.now = NOVEMBER
    made.new.append(made.sale(3))
    store.outbox_ack(store.last_seq())

    done = list(archive_months(store, BEFORE, zone=SHANGHAI, directory=tmp_path / "a"))
    # September had no events: its month is in October's archive, which starts with them.
    assert [a.name for a in done] == ["archive-2026-08-05-2026-09-01",
                                      "archive-2026-10-09-2026-11-01"]
    assert [a.rows("sales") for a in done] == [2, 1]
    assert done[0].seq_low == 1 and done[1].seq_low == done[0].seq_high + 1
    assert set(table(db_path, "sales")) == {made.new[0].id}
    assert verify(store).ok
    assert list(archive_months(store, BEFORE, zone=SHANGHAI, directory=tmp_path / "a")) == []


def test_an_order_a_kept_authorization_names_stays_with_its_authorizations(
    store: Store, clock: FakeClock, db_path: Path, tmp_path: Path
) -> None:
    made = History(store, clock, (Pump(1, 1, clock=clock), Pump(2, 3, clock=clock)), [], [])
    clock.now = OCTOBER
    store.open_first_shift()
    sale = made.sale(1, order=True)  # the app order app-1's sale
    # Another authorization of app-1, which failed (the pump did not confirm): no sale names it.
    failed = store.create_authorization(pump=2, nozzle=3, preset=None, source="order",
                                        order_id="app-1")
    store.set_authorization_state(failed.id, AuthorizationState.FAILED, reason="no_answer")
    made.sale(2)
    store.close_shift(closed_by="wang", grades={1: "92", 3: "92"})
    clock.now = NOVEMBER
    made.sale(4)
    store.outbox_ack(store.last_seq())

    done = archive(store, BEFORE, zone=SHANGHAI, directory=tmp_path / "a")
    assert done is not None and done.rows("sales") == 2
    assert sale.id not in table(db_path, "sales")
    assert "app-1" in table(db_path, "orders") and done.rows("orders") == 0
    kept = table(db_path, "authorizations")
    assert failed.id in kept and sale.authorization_id in kept
    assert done.rows("authorizations") == 1  # the plain sale's
    assert verify(store).ok


@pytest.fixture
def station(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    db = tmp_path / "data" / "station.db"
    config = tmp_path / "station.toml"
    config.write_text(StationSpec(port_url="socket://127.0.0.1:9", db=db, api_port=8080).toml(),
                      "utf-8")
    yield config, db


def forecourt(*args: str) -> subprocess.CompletedProcess[str]:
    """`forecourt db ARGS` in this process (the archive itself runs as a real command below)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["db", *args])
    return subprocess.CompletedProcess(args, status, out.getvalue(), err.getvalue())


def test_the_cli_archives_lists_and_verifies(station: tuple[Path, Path], tmp_path: Path) -> None:
    config, db = station
    clock = FakeClock(OCTOBER - timedelta(days=365))
    with Store.open(db, clock=clock) as store:
        made = History(store, clock, (Pump(1, 1, clock=clock), Pump(2, 3, clock=clock)), [], [])
        store.open_first_shift()
        for n in range(3):
            made.sale(n)
        store.close_shift(closed_by="wang", grades={1: "92", 3: "92"})
        clock.now = OCTOBER
        unacked = made.sale(3).seq
        store.outbox_ack(unacked - 1)

    # October 2025 goes; October 2026 holds an event the cloud has not acknowledged.
    done = subprocess.run([sys.executable, "-m", "edge.cli", "db", "archive", "--config",
                           str(config), "--before", "2026-11-01"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1, done.stderr
    assert "archive-2025-10-01-2025-11-01: events 1.." in done.stdout
    assert "archive-2025-10-01-2025-11-01.sales.jsonl.gz: 3 rows" in done.stdout
    assert f"event {unacked} (sale.completed" in done.stderr
    assert "not acknowledged by the cloud" in done.stderr
    assert (db.parent / "archives" / "archive-2025-10-01-2025-11-01.json").is_file()

    listed = forecourt("archive", "--config", str(config), "--list")
    assert listed.returncode == 0
    assert "archive-2025-10-01-2025-11-01: events 1.." in listed.stdout
    assert "3 sales" in listed.stdout
    checked = forecourt("verify", "--config", str(config))
    assert checked.returncode == 0, checked.stdout
    assert "ok   archive archive-2025-10-01-2025-11-01" in checked.stdout

    again = forecourt("archive", "--config", str(config), "--before", "2025-11-01")
    assert again.returncode == 0
    assert "nothing older than 2025-11-01 left to archive" in again.stdout
    bad = forecourt("archive", "--config", str(config), "--before", "1 Nov")
    assert bad.returncode == 2
