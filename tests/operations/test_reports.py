"""The daily report as a pure function of sales, zone and day (edge/reports.py)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from domain.model import APP_PAYMENT, PAYMENT_METHODS, Payment, Sale
from edge.reports import CSV_COLUMNS, METHODS, daily_csv, daily_report, day_span

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 22)
NAMES = {"92": "92号汽油", "95": "95号汽油", "0": "0号柴油"}


def sale(seq: int, ended_utc: datetime, grade: str, volume: str, amount: str,
         *payments: tuple[str, str]) -> Sale:
    sale_id = f"S{seq}"
    return Sale(
        id=sale_id, seq=seq, pump=1, nozzle=1, logical=1, grade=grade, price=Decimal("7.50"),
        volume=Decimal(volume), amount=Decimal(amount), price_set_id="config",
        started_at=ended_utc - timedelta(minutes=2), ended_at=ended_utc, authorization_id=None,
        order_id=None, recovered=False, totals_volume_before=None,
        totals_volume_after=Decimal("1000"), totals_amount_before=None,
        totals_amount_after=Decimal("7500"),
        payments=tuple(Payment(f"P{seq}-{i}", sale_id, method, Decimal(paid), "cash",
                               ended_utc + timedelta(minutes=1))
                       for i, (method, paid) in enumerate(payments)))


# 2026-11-22 in Shanghai (UTC+8) runs from 2026-11-21T16:00Z to 2026-11-22T16:00Z.
SALES = [
    # 23:59:59 local on the 21st: the day before.
    sale(1, datetime(2026, 11, 21, 15, 59, 59, tzinfo=UTC), "92", "10.00", "75.00",
         ("cash", "75.00")),
    # 00:00 local: hour 0.
    sale(2, datetime(2026, 11, 21, 16, 0, tzinfo=UTC), "92", "2.00", "15.00", ("cash", "15.00")),
    # 09:15 local, split between WeChat and cash.
    sale(3, datetime(2026, 11, 22, 1, 15, tzinfo=UTC), "95", "40.00", "320.80",
         ("wechat", "300.00"), ("cash", "20.80")),
    # 09:40 local, unpaid.
    sale(4, datetime(2026, 11, 22, 1, 40, tzinfo=UTC), "92", "0.01", "0.08"),
    # 23:59 local, half paid by card.
    sale(5, datetime(2026, 11, 22, 15, 59, tzinfo=UTC), "0", "33.33", "238.64", ("card", "100.00")),
    # 00:00 local on the 23rd: the day after.
    sale(6, datetime(2026, 11, 22, 16, 0, tzinfo=UTC), "92", "5.00", "37.50", ("alipay", "37.50")),
]


def test_the_report_counts_the_sales_of_the_local_day_only() -> None:
    report = daily_report(SALES, day=DAY, zone=SHANGHAI, grade_names=NAMES).to_api()
    assert report["date"] == "2026-11-22"
    assert report["zone"] == "Asia/Shanghai"
    assert report["totals"] == {"volume": "75.34", "amount": "574.52", "count": 4,
                                "paid": "435.80", "unpaid": "138.72"}
    assert report["by_grade"] == [
        {"grade": "92", "name": "92号汽油", "volume": "2.01", "amount": "15.08", "count": 2},
        {"grade": "95", "name": "95号汽油", "volume": "40.00", "amount": "320.80", "count": 1},
        {"grade": "0", "name": "0号柴油", "volume": "33.33", "amount": "238.64", "count": 1},
    ]


def test_hours_are_local_and_all_24_are_listed() -> None:
    report = daily_report(SALES, day=DAY, zone=SHANGHAI, grade_names=NAMES).to_api()
    hours = report["by_hour"]
    assert [h["hour"] for h in hours] == list(range(24))
    assert hours[0] == {"hour": 0, "volume": "2.00", "amount": "15.00", "count": 1}
    assert hours[9] == {"hour": 9, "volume": "40.01", "amount": "320.88", "count": 2}
    assert hours[23] == {"hour": 23, "volume": "33.33", "amount": "238.64", "count": 1}
    assert sum(h["count"] for h in hours) == 4
    assert all(h["count"] == 0 and h["amount"] == "0.00" for i, h in enumerate(hours)
               if i not in (0, 9, 23))


def test_payments_by_method_add_up_to_what_was_paid() -> None:
    report = daily_report(SALES, day=DAY, zone=SHANGHAI, grade_names=NAMES).to_api()
    assert report["by_method"] == [
        {"method": "cash", "amount": "35.80", "count": 2},
        {"method": "wechat", "amount": "300.00", "count": 1},
        {"method": "alipay", "amount": "0.00", "count": 0},
        {"method": "card", "amount": "100.00", "count": 1},
        {"method": "account", "amount": "0.00", "count": 0},
        {"method": "app", "amount": "0.00", "count": 0},
    ]
    assert set(METHODS) == PAYMENT_METHODS | {APP_PAYMENT}


def test_an_empty_day_has_every_configured_grade_at_zero() -> None:
    report = daily_report([], day=date(2026, 1, 1), zone=SHANGHAI, grade_names=NAMES).to_api()
    assert report["totals"] == {"volume": "0.00", "amount": "0.00", "count": 0, "paid": "0.00",
                                "unpaid": "0.00"}
    assert [g["grade"] for g in report["by_grade"]] == ["92", "95", "0"]


def test_a_grade_no_longer_configured_still_adds_up() -> None:
    report = daily_report(SALES, day=DAY, zone=SHANGHAI, grade_names={"92": "92号汽油"}).to_api()
    assert [(g["grade"], g["name"]) for g in report["by_grade"]] == [
        ("92", "92号汽油"), ("95", "95"), ("0", "0")]
    assert sum(Decimal(g["amount"]) for g in report["by_grade"]) == Decimal("574.52")


def test_the_csv_has_one_row_per_sale_and_its_columns_sum_to_the_report() -> None:
    text = daily_csv(SALES, day=DAY, zone=SHANGHAI, grade_names=NAMES)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r["sale_id"] for r in rows] == ["S2", "S3", "S4", "S5"]
    assert rows[1]["ended_at"] == "2026-11-22T09:15:00+08:00"
    assert rows[1]["hour"] == "9"
    assert rows[1]["grade_name"] == "95号汽油"
    assert (rows[1]["wechat"], rows[1]["cash"], rows[1]["paid"]) == ("300.00", "20.80", "320.80")
    assert rows[2]["paid"] == "0.00"

    def total(column: str) -> Decimal:
        return sum((Decimal(r[column]) for r in rows), Decimal(0))

    assert total("amount") == Decimal("574.52")
    assert total("volume") == Decimal("75.34")
    assert total("paid") == Decimal("435.80")
    assert total("cash") == Decimal("35.80") and total("card") == Decimal("100.00")


def test_a_day_is_23_or_25_hours_when_the_clocks_change() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start, end = day_span(date(2026, 3, 29), berlin)
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=23)
    start, end = day_span(date(2026, 10, 25), berlin)
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=25)
    start, end = day_span(DAY, SHANGHAI)
    assert start.astimezone(UTC) == datetime(2026, 11, 21, 16, tzinfo=UTC)
    assert end.astimezone(UTC) == datetime(2026, 11, 22, 16, tzinfo=UTC)
