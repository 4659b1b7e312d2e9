"""The shift report on paper (班结报表)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from domain.model import TotalsReading
from drivers.printer.document import Text
from drivers.printer.layout import layout
from edge.shifts import report_document
from edge.store import Store
from tests.store.conftest import FakeClock, Pump


def test_the_paper_shows_nozzles_difference_payments_and_unpaid(
        store: Store, clock: FakeClock) -> None:
    pump = Pump(clock=clock)
    store.record_totals(TotalsReading(1, 1, pump.volume_total, pump.amount_total, clock(), "x"))
    store.open_first_shift()
    sale, _ = store.record_sale(pump.fill("20.00", "150.00"))
    store.add_payment(sale.id, method="wechat", amount=Decimal("100.00"), user="cash")
    store.record_totals(TotalsReading(1, 1, pump.volume_total + Decimal("0.01"),
                                      pump.amount_total, clock(), "pump"))
    clock.advance(timedelta(hours=1))
    closed, _, _ = store.close_shift(closed_by="boss", grades={1: "92"})
    assert closed.report is not None

    rows = layout(report_document(closed.report, station_name="测试加油站"), 32)
    text = "\n".join(row.text for row in rows if isinstance(row, Text))
    assert "班结报表" in text and "测试加油站" in text
    assert "1号枪  92" in text
    assert "10000.00" in text and "10020.01" in text  # opening and closing totals
    assert "0.01" in text and "泵码与销售不符" in text
    assert "微信 (1笔)" in text and "100.00" in text
    assert "未结销售 1 笔" in text and "50.00" in text
    assert "交班人" in text and "boss" in text
