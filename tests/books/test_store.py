"""The books in a real SQLite ledger: a fill recorded twice is one, the day's wetstock counts
fuel drawn without a sale, a closed month refuses any change, an account's limits hold."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from domain.accounts import AccountRefused
from domain.model import Preset, TotalsReading
from edge.store import Store
from edge.store.accounts import Accounts, Limits
from edge.store.books import BooksStore, NonSaleFill, NonSaleRequest
from edge.store.tanks import TankReading

T0 = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)


def _fill(auth: str, volume: str, after: str) -> NonSaleFill:
    v = Decimal(volume)
    return NonSaleFill(pump=1, nozzle=1, logical=1, grade="92", price=Decimal("7.50"),
                       volume=v, amount=v * Decimal("7.50"), started_at=T0,
                       ended_at=T0 + timedelta(hours=1), authorization_id=auth,
                       before=TotalsReading(1, 1, Decimal(after) - v, Decimal(0), T0, "sale"),
                       after=TotalsReading(1, 1, Decimal(after), Decimal(0), T0, "nonsale"))


def test_a_nonsale_fill_is_recorded_once_with_its_totals(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        books = BooksStore(store)
        books.save_nonsale_request(NonSaleRequest("a1", 1, "own_use", "发电机", ("李",), None,
                                                  "att", T0))
        first, created = books.record_nonsale(_fill("a1", "40.00", "1040.00"))
        again, created_again = books.record_nonsale(_fill("a1", "40.00", "1040.00"))
        assert created and not created_again and again["id"] == first["id"]
        assert first["kind"] == "own_use" and first["witnesses"] == ["李"]
        last = store.last_totals(1, 1)
        assert last is not None and last.volume_total == Decimal("1040.00")
        assert [e.type for e in store.events_since(0)] == ["nonsale.recorded"]
        assert store.sales() == []


def test_the_days_wetstock_counts_own_use_and_not_a_self_check(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        books = BooksStore(store)
        for auth, kind in (("a1", "own_use"), ("a2", "self_check")):
            books.save_nonsale_request(NonSaleRequest(auth, 1, kind, "r", ("李",), None, "att",
                                                      T0))
        store.close_tank_day(TankReading(1, "92", T0 - timedelta(hours=2), Decimal(1000),
                                         Decimal(10000), Decimal(20000)), date(2026, 11, 21),
                             nozzles=[1], tolerance=lambda sold: Decimal(1))
        books.record_nonsale(_fill("a1", "40.00", "1040.00"))
        books.record_nonsale(_fill("a2", "20.00", "1060.00"))
        rec, event = store.close_tank_day(
            TankReading(1, "92", T0 + timedelta(hours=3), Decimal(990), Decimal(9960),
                        Decimal(20040)), date(2026, 11, 22), nozzles=[1],
            tolerance=lambda sold: Decimal(1))
        assert rec is not None and event is None
        assert rec.sales_l == Decimal("40.00") and rec.variance_l == 0


def test_a_closed_month_cannot_be_changed(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        path = store.path
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO month_closes (month, seq, start_at, end_at, closed_at, closed_by, "
                 "report) VALUES ('2026-10', 1, 'a', 'b', 'c', 'boss', '{}')")
    conn.commit()
    for statement in ("UPDATE month_closes SET report = '{\"x\": 1}'",
                      "DELETE FROM month_closes"):
        with pytest.raises(sqlite3.IntegrityError, match="immutable"):
            conn.execute(statement)
    conn.close()


def test_an_accounts_limits_count_uses_held_and_sold(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        accounts = Accounts(BooksStore(store))
        accounts.upsert(account_id="A", name="公交", cards=["6222 0001"], plates=["新A-123"],
                        limits=Limits(amount=Decimal("100.00"), fills=3), source="local")
        day = date(2026, 11, 22)

        def hold(preset: Preset | None) -> tuple[str, Preset | None]:
            return accounts.hold(day=day, kind="plate", value="新a123", signer="王",
                                 user="att", nozzle=1, grade="92", grade_name="92号汽油",
                                 price=Decimal("7.50"), preset=preset)

        use, preset = hold(None)  # a fill-up is preset to what is left of the day
        assert preset == Preset("amount", Decimal("100.00"))
        accounts.release(use_id=use)
        use, _ = hold(Preset("amount", Decimal("60.00")))
        accounts.bind(use, "auth-1")
        with pytest.raises(AccountRefused) as refused:
            hold(Preset("amount", Decimal("50.00")))  # 60 held, 40 left
        assert refused.value.code == "account_daily_amount" and "40.00" in refused.value.message
        _, preset = hold(None)
        assert preset == Preset("amount", Decimal("40.00"))
        accounts.set_blocked("A", blocked=True, reason="欠款")
        with pytest.raises(AccountRefused) as blocked:
            hold(None)
        assert blocked.value.code == "account_blocked" and "欠款" in blocked.value.message


def test_without_money_limits_a_fill_up_stays_a_fill_up(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        accounts = Accounts(BooksStore(store))
        accounts.upsert(account_id="B", name="环卫", cards=["C1"], plates=[],
                        limits=Limits(fills=1), source="local")
        use, preset = accounts.hold(day=date(2026, 11, 22), kind="card", value="c1",
                                    signer="赵", user="att", nozzle=1, grade="92",
                                    grade_name="92号汽油", price=Decimal("7.50"), preset=None)
        assert preset is None
        accounts.bind(use, "auth-9")
        with pytest.raises(AccountRefused) as refused:
            accounts.hold(day=date(2026, 11, 22), kind="card", value="C1", signer="赵",
                          user="att", nozzle=1, grade="92", grade_name="92号汽油",
                          price=Decimal("7.50"), preset=None)
        assert refused.value.code == "account_daily_fills"
        accounts.release(auth_id="auth-9")  # ended without fuel: the fill is free again
        _, again = accounts.hold(day=date(2026, 11, 22), kind="card", value="C1", signer="赵",
                                 user="att", nozzle=1, grade="92", grade_name="92号汽油",
                                 price=Decimal("7.50"), preset=None)
        assert again is None


def test_db_verify_checks_each_closed_month_against_its_event(tmp_path: Path) -> None:
    from zoneinfo import ZoneInfo

    from edge.books.month import month_span, parse_month, report
    from edge.store.maintenance import verify
    from edge.store.months import Months, TankBook

    zone = ZoneInfo("Asia/Shanghai")
    with Store.open(tmp_path / "s.db", clock=lambda: T0 + timedelta(days=20)) as store:
        months = Months(BooksStore(store))
        start, end = month_span(parse_month("2026-10"), zone)
        months.close("2026-10", start=start, end=end, tanks=[TankBook(1, "92", (1,))],
                     entered={}, user="boss",
                     make_report=lambda tanks: report("2026-10", tanks, allowances={},
                                                      default_allowance=Decimal("0.3"),
                                                      grade_names={}, start="s", end="e"))
        found = {f.check: f for f in verify(store).findings}
        assert found["month closes"].ok, found["month closes"].detail
        path = store.path
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER month_closes_no_update")
    conn.execute("UPDATE month_closes SET report = '{\"month\": \"2026-10\"}'")
    conn.commit()
    conn.close()
    with Store.open(path) as store:
        found = {f.check: f for f in verify(store).findings}
        assert not found["month closes"].ok
        assert "triggers" in found["month closes"].detail
    # The trigger put back does not hide the changed month: its event still says otherwise.
    conn = sqlite3.connect(path)
    conn.execute("CREATE TRIGGER month_closes_no_update BEFORE UPDATE ON month_closes "
                 "BEGIN SELECT RAISE(ABORT, 'a closed month is immutable'); END")
    conn.commit()
    conn.close()
    with Store.open(path) as store:
        found = {f.check: f for f in verify(store).findings}
        assert not found["month closes"].ok
        assert "differs from its month.closed event" in found["month closes"].detail
