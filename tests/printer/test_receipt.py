"""The receipt's bytes, decoded back: every field where a customer and an auditor look for it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from drivers.printer import PaymentLine, ReceiptData, render_receipt

from .decoder import Printed, decode, width

SHANGHAI = ZoneInfo("Asia/Shanghai")

RECEIPT = ReceiptData(
    station_name="乌鲁木齐北京路加油站",
    sale_id="01JD4ZQ0SALE0000000000",
    sale_seq=1042,
    time=datetime(2026, 11, 22, 9, 15, 7, tzinfo=SHANGHAI),
    nozzle=3,
    grade_name="92号汽油",
    price=Decimal("7.50"),
    volume=Decimal("40.00"),
    amount=Decimal("300.00"),
    payments=(PaymentLine("wechat", Decimal("200.00")), PaymentLine("cash", Decimal("100.00"))),
    receipt_no=123,
    shift="早班",
    invoice_url="https://fapiao.example.com/i/01JD4ZQ0SALE0000000000",
    footer="谢谢惠顾，欢迎再次光临",
)


def pairs(printed: Printed) -> dict[str, str]:
    """Label -> value of every label/value line."""
    out = {}
    for line in printed.lines:
        parts = line.text.split()
        if len(parts) == 2 and line.text.startswith(parts[0]) and line.text.endswith(parts[1]):
            out[parts[0]] = parts[1]
    return out


@pytest.mark.parametrize("paper", [32, 48])
def test_every_field_is_printed(paper: int) -> None:
    printed = decode(render_receipt(RECEIPT, paper))
    assert printed.inits == 1 and printed.cuts == 1
    assert printed.texts[0] == "乌鲁木齐北京路加油站"
    assert printed.lines[0].align == 1 and printed.lines[0].bold
    assert printed.texts[1] == "加油小票"
    assert pairs(printed) == {
        "小票号": "000123",
        "流水号": "1042",
        "班次": "早班",
        "油枪": "3号枪",
        "油品": "92号汽油",
        "单价": "7.50元/升",
        "数量": "40.00升",
        "金额": "￥300.00",
        "微信": "￥200.00",
        "现金": "￥100.00",
        "付款状态": "已付清",
    }
    assert f"时间{' ' * (paper - 23)}2026-11-22 09:15:07" in printed.texts
    assert printed.qr_codes == ["https://fapiao.example.com/i/01JD4ZQ0SALE0000000000"]
    assert "扫码开具电子发票" in printed.texts
    assert printed.texts[-1] == "谢谢惠顾，欢迎再次光临"
    assert "未付" not in pairs(printed)  # paid in full
    for line in printed.lines:  # nothing runs off the paper
        assert width(line.text) * ((line.size >> 4) + 1) <= paper


def test_amount_stands_out() -> None:
    printed = decode(render_receipt(RECEIPT, 32))
    (amount,) = [line for line in printed.lines if line.text.startswith("金额")]
    assert amount.bold and amount.size == 0x01  # double height
    assert width(amount.text) == 32


def test_app_order_with_prepayment_and_refund() -> None:
    receipt = replace(RECEIPT, payments=(), order_id="APP-20261122-0007",
                      prepaid=Decimal("312.00"), refund=Decimal("12.00"))
    found = pairs(decode(render_receipt(receipt, 32)))
    assert found["APP订单"] == "APP-20261122-0007"
    assert found["APP预付"] == "￥312.00"
    assert found["退款"] == "￥12.00"
    assert "未付" not in found and "现金" not in found


def test_unpaid_sale_shows_what_is_due() -> None:
    receipt = replace(RECEIPT, payments=(PaymentLine("alipay", Decimal("100.00")),))
    found = pairs(decode(render_receipt(receipt, 32)))
    assert found["支付宝"] == "￥100.00"
    assert found["未付"] == "￥200.00"


@pytest.mark.parametrize(("method", "name"), [("cash", "现金"), ("wechat", "微信"),
                                              ("alipay", "支付宝"), ("card", "银行卡"),
                                              ("account", "挂账")])
def test_payment_methods_in_chinese(method: str, name: str) -> None:
    receipt = replace(RECEIPT, payments=(PaymentLine(method, Decimal("300.00")),))
    assert pairs(decode(render_receipt(receipt, 32)))[name] == "￥300.00"


def test_optional_fields_are_left_out() -> None:
    receipt = replace(RECEIPT, shift=None, invoice_url=None, footer="", payments=())
    printed = decode(render_receipt(receipt, 32))
    found = pairs(printed)
    assert "班次" not in found and "APP订单" not in found and "退款" not in found
    assert printed.qr_codes == []
    assert found["未付"] == "￥300.00"


def test_reprint_is_marked_with_the_time_of_printing() -> None:
    receipt = replace(RECEIPT, reprint=True,
                      printed_at=datetime(2026, 11, 22, 10, 0, 0, tzinfo=SHANGHAI))
    printed = decode(render_receipt(receipt, 48))
    assert printed.texts[1] == "加油小票（补打）"
    assert printed.texts[printed.texts.index("加油小票（补打）") + 1] == "-" * 48
    assert any(t.startswith("补打时间") and t.endswith("2026-11-22 10:00:00")
               for t in printed.texts)


def test_preview_has_no_receipt_number() -> None:
    printed = decode(render_receipt(replace(RECEIPT, receipt_no=None), 32))
    assert printed.texts[1] == "加油小票（预览）"
    assert "小票号" not in pairs(printed)


def test_money_is_rounded_half_up_to_cents() -> None:
    receipt = replace(RECEIPT, volume=Decimal("39.995"), amount=Decimal("299.965"),
                      payments=())
    found = pairs(decode(render_receipt(receipt, 32)))
    assert found["数量"] == "40.00升" and found["金额"] == "￥299.97"


def test_hostile_text_cannot_inject_commands() -> None:
    receipt = replace(RECEIPT, order_id="X\x1b@\x1dV\x00Y", station_name="站\x1c.名")
    printed = decode(render_receipt(receipt, 32))  # the decoder refuses stray commands
    assert pairs(printed)["APP订单"] == "X@VY"
    assert printed.texts[0] == "站.名"
    assert printed.cuts == 1 and printed.inits == 1
