"""The report's query on a real SQLite store: sales by the time their fill ended."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge.reports import daily_report, day_span
from edge.store import Store
from tests.store.conftest import FakeClock, Pump

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def clock() -> FakeClock:
    # 23:58 local on 2026-11-21.
    return FakeClock(datetime(2026, 11, 21, 15, 58, tzinfo=UTC))


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    with Store.open(tmp_path / "station.db", clock=clock, zone=SHANGHAI) as opened:
        yield opened


def test_sales_of_a_local_day_are_those_that_ended_in_it(store: Store, clock: FakeClock) -> None:
    pump = Pump(clock=clock)
    ids = []
    # Ends 23:58 on the 21st, 00:00 and 12:00 on the 22nd, 00:00 on the 23rd.
    for step in (timedelta(0), timedelta(minutes=2), timedelta(hours=12), timedelta(hours=12)):
        clock.advance(step)
        sale, created = store.record_sale(pump.fill("2.00", "15.00"))
        assert created
        ids.append(sale.id)
    store.add_payment(ids[1], method="wechat", amount=Decimal("15.00"), user="cash")
    start, end = day_span(date(2026, 11, 22), SHANGHAI)
    found = store.sales_ended_between(start, end)
    assert [s.id for s in found] == ids[1:3]
    assert [p.method for p in found[0].payments] == ["wechat"]
    report = daily_report(found, day=date(2026, 11, 22), zone=SHANGHAI).to_api()
    assert report["totals"] == {"volume": "4.00", "amount": "30.00", "count": 2,
                                "paid": "15.00", "unpaid": "15.00"}


def test_an_empty_span_is_refused(store: Store) -> None:
    moment = datetime(2026, 11, 22, tzinfo=UTC)
    with pytest.raises(ValueError, match="empty span"):
        store.sales_ended_between(moment, moment)
