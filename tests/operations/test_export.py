"""`forecourt db export` and `forecourt db inspect` on a real station database."""

from __future__ import annotations

import csv
import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from domain.files import mode_of
from edge.cli import main
from edge.export import TABLES, ExportError, open_read_only
from edge.reports import daily_report, day_span
from edge.store import Store
from edge.store.schema import MIGRATIONS
from tests.store.conftest import FakeClock, Pump

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 22)


@pytest.fixture
def clock() -> FakeClock:
    # 23:50 local on 2026-11-21.
    return FakeClock(datetime(2026, 11, 21, 15, 50, tzinfo=UTC))


@pytest.fixture
def db_path(tmp_path: Path, clock: FakeClock) -> Iterator[Path]:
    """Sales around the local midnights of the 22nd on two pumps: paid, paid in parts, unpaid."""
    path = tmp_path / "station.db"
    with Store.open(path, clock=clock, zone=SHANGHAI) as store:
        pump1, pump2 = Pump(clock=clock), Pump(pump=2, clock=clock)
        for n, step in enumerate([timedelta(0), timedelta(minutes=10), timedelta(hours=3),
                                  timedelta(hours=9), timedelta(hours=11, minutes=59),
                                  timedelta(minutes=2)]):
            clock.advance(step)
            pump = pump1 if n % 2 else pump2
            sale, created = store.record_sale(pump.fill(f"{n + 1}.37", f"{(n + 1) * 10}.12"))
            assert created
            if n % 3 == 0:
                store.add_payment(sale.id, method="cash", amount=sale.amount, user="li")
            elif n % 3 == 1:
                half = (sale.amount / 2).quantize(Decimal("0.01"))
                store.add_payment(sale.id, method="wechat", amount=half, user="li")
                store.add_payment(sale.id, method="card", amount=sale.amount - half, user="li")
    yield path


@pytest.fixture
def config(tmp_path: Path, db_path: Path) -> Path:
    path = tmp_path / "station.toml"
    text = (Path(__file__).parents[2] / "config" / "minimal.toml").read_text()
    path.write_text(text + f'\n[storage]\npath = "{db_path}"\n')
    return path


def report_of(db_path: Path, day: date) -> dict[str, object]:
    with Store.open(db_path, zone=SHANGHAI) as store:
        sales = store.sales_ended_between(*day_span(day, SHANGHAI))
    return daily_report(sales, day=day, zone=SHANGHAI).to_api()


def test_the_export_of_a_day_adds_up_to_the_days_report(config: Path, db_path: Path,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "export"
    assert main(["db", "export", "--config", str(config), "--from", DAY.isoformat(),
                 "--out", str(out)]) == 0
    with (out / "sales.csv").open(encoding="utf-8") as f:
        sales = list(csv.DictReader(f))
    with (out / "payments.csv").open(encoding="utf-8") as f:
        payments = list(csv.DictReader(f))
    report = report_of(db_path, DAY)

    by_grade: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for sale in sales:
        by_grade[sale["grade"]][0] += Decimal(sale["volume"])
        by_grade[sale["grade"]][1] += Decimal(sale["amount"])
    assert {g["grade"]: [Decimal(g["volume"]), Decimal(g["amount"])]
            for g in report["by_grade"]} == by_grade
    totals = report["totals"]
    assert len(sales) == totals["count"] == 4  # 00:00, 03:00, 12:00 and 23:59 local
    assert sum(Decimal(s["amount"]) for s in sales) == Decimal(totals["amount"])
    by_method: dict[str, Decimal] = defaultdict(Decimal)
    for payment in payments:
        by_method[payment["method"]] += Decimal(payment["amount"])
    assert {m["method"]: Decimal(m["amount"]) for m in report["by_method"]
            if m["count"]} == by_method
    assert sum(by_method.values()) == Decimal(totals["paid"])
    # Money stays the database's decimal text, to the fen.
    assert all(s["amount"].count(".") == 1 and len(s["amount"].split(".")[1]) == 2 for s in sales)
    # The books are kept like the database: the owner's alone.
    assert mode_of(out) == 0o700 and mode_of(out / "sales.csv") == 0o600
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{t}.csv" for t in TABLES)


def test_json_holds_the_same_rows_as_csv(config: Path, tmp_path: Path) -> None:
    for fmt in ("csv", "json"):
        assert main(["db", "export", "--config", str(config), "--from", "2026-11-21",
                     "--to", "2026-11-23", "--format", fmt, "--out", str(tmp_path / fmt),
                     "--table", "sales", "--table", "payments"]) == 0
    for table in ("sales", "payments"):
        with (tmp_path / "csv" / f"{table}.csv").open(encoding="utf-8") as f:
            as_csv = list(csv.DictReader(f))
        as_json = json.loads((tmp_path / "json" / f"{table}.json").read_text(encoding="utf-8"))
        assert len(as_json) == len(as_csv) > 0
        assert [{k: "" if v is None else str(v) for k, v in row.items()} for row in as_json] \
            == as_csv
    assert len(as_csv) == 6  # two sales paid whole, two in two parts, two unpaid


def test_an_export_never_overwrites_and_refuses_a_reversed_span(config: Path,
                                                               tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]
                                                               ) -> None:
    out = tmp_path / "export"
    out.mkdir()
    (out / "audit.csv").write_text("keep me")
    assert main(["db", "export", "--config", str(config), "--from", DAY.isoformat(),
                 "--out", str(out)]) == 1
    assert "never overwrites" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["audit.csv"]
    assert main(["db", "export", "--config", str(config), "--from", "2026-11-23",
                 "--to", "2026-11-22", "--out", str(tmp_path / "x")]) == 2
    assert main(["db", "export", "--config", str(config), "--from", "22.11.2026",
                 "--out", str(tmp_path / "x")]) == 2


def test_export_and_inspect_read_while_a_writer_holds_the_database(
        config: Path, db_path: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    writer = sqlite3.connect(db_path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO payments (id, sale_id, method, amount, user_name, created_at)"
                       " SELECT 'uncommitted', id, 'cash', '1.00', NULL, ended_at FROM sales "
                       "LIMIT 1")
        assert main(["db", "export", "--config", str(config), "--from", "2026-11-21",
                     "--to", "2026-11-23", "--out", str(tmp_path / "e"),
                     "--table", "payments"]) == 0
        assert "uncommitted" not in (tmp_path / "e" / "payments.csv").read_text()
        assert main(["db", "inspect", "--config", str(config)]) == 0
        shown = capsys.readouterr().out
        assert f"schema version {len(MIGRATIONS)}," in shown
        assert any(line.split()[:2] == ["sales", "6"] for line in shown.splitlines())
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_the_connection_cannot_write(db_path: Path) -> None:
    db = open_read_only(db_path)
    try:
        with pytest.raises(sqlite3.OperationalError):
            db.execute("DELETE FROM sales")
    finally:
        db.conn.close()
    with pytest.raises(ExportError, match="no database"):
        open_read_only(db_path.with_name("missing.db"))
