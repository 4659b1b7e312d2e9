"""The Chinese fuel receipt (加油小票): what it shows, in which order, as a `Document`.

`ReceiptData` holds the facts already in the station's words (grade names, local time); how a
sale becomes a `ReceiptData` is the station's business (edge/receipts.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from .document import Align, Document, Feed, Line, Pair, QrCode, Rule, Size, Text
from .render import render

__all__ = [
    "PAYMENT_METHOD_NAMES",
    "PaymentLine",
    "ReceiptData",
    "receipt_document",
    "render_receipt",
]

PAYMENT_METHOD_NAMES: dict[str, str] = {
    "cash": "现金",
    "wechat": "微信",
    "alipay": "支付宝",
    "card": "银行卡",
    "account": "挂账",
    "app": "APP预付",
}

_CENT = Decimal("0.01")
_YUAN = "￥"  # U+FFE5 FULLWIDTH YEN SIGN: GB18030 A3 A4, in every Chinese printer font


def yuan(value: Decimal) -> str:
    """Money as printed: "￥300.00"."""
    return _YUAN + format(value.quantize(_CENT, rounding=ROUND_HALF_UP), "f")


def two_places(value: Decimal) -> str:
    return format(value.quantize(_CENT, rounding=ROUND_HALF_UP), "f")


@dataclass(frozen=True)
class PaymentLine:
    method: str  # "cash", "wechat", ... (PAYMENT_METHOD_NAMES); an unknown one prints as is
    amount: Decimal

    @property
    def name(self) -> str:
        return PAYMENT_METHOD_NAMES.get(self.method, self.method)


@dataclass(frozen=True)
class ReceiptData:
    """Everything one receipt shows. `time` is the sale's end, already in the station's zone."""

    station_name: str
    sale_id: str
    sale_seq: int
    time: datetime
    nozzle: int  # station-wide: printed "3号枪"
    grade_name: str  # "92号汽油"
    price: Decimal  # per litre
    volume: Decimal  # litres
    amount: Decimal
    payments: tuple[PaymentLine, ...] = ()
    receipt_no: int | None = None  # None: a preview, not a printed receipt
    order_id: str | None = None  # an app order
    prepaid: Decimal | None = None  # what the app order paid
    refund: Decimal | None = None  # prepaid - amount, back to the driver's app
    shift: str | None = None
    invoice_url: str | None = None  # the e-invoice link for the QR code
    reprint: bool = False
    printed_at: datetime | None = None  # shown on reprints
    footer: str = ""
    sale_number: str | None = None  # "1204-0042": what people say aloud; else the seq is shown

    @property
    def paid(self) -> Decimal:
        return sum((p.amount for p in self.payments), Decimal(0)) + (self.prepaid or 0)

    @property
    def due(self) -> Decimal:
        """What is still to be paid at the counter; never negative."""
        return max(self.amount - self.paid, Decimal(0))


def _stamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def receipt_document(receipt: ReceiptData) -> Document:
    r = receipt
    title = "加油小票"
    if r.receipt_no is None:
        title += "（预览）"
    elif r.reprint:
        title += "（补打）"
    lines: list[Line] = [
        Text(r.station_name, Align.CENTER, bold=True, size=Size.TALL),
        Text(title, Align.CENTER, bold=True),
        Rule(),
    ]
    if r.receipt_no is not None:
        lines.append(Pair("小票号", f"{r.receipt_no:06d}"))
    if r.sale_number:
        lines.append(Pair("单号", r.sale_number))
    else:
        lines.append(Pair("流水号", str(r.sale_seq)))
    lines.append(Pair("时间", _stamp(r.time)))
    if r.shift:
        lines.append(Pair("班次", r.shift))
    lines += [
        Rule(),
        Pair("油枪", f"{r.nozzle}号枪"),
        Pair("油品", r.grade_name),
        Pair("单价", f"{two_places(r.price)}元/升"),
        Pair("数量", f"{two_places(r.volume)}升"),
        Pair("金额", yuan(r.amount), bold=True, size=Size.TALL),
        Rule(),
    ]
    if r.order_id is not None:
        lines.append(Pair("APP订单", r.order_id))
        if r.prepaid is not None:
            lines.append(Pair("APP预付", yuan(r.prepaid)))
    for payment in r.payments:
        lines.append(Pair(payment.name, yuan(payment.amount)))
    if r.refund:
        lines.append(Pair("退款", yuan(r.refund), bold=True))
    if r.due:
        lines.append(Pair("未付", yuan(r.due), bold=True))
    elif r.amount > 0:
        lines.append(Pair("付款状态", "已付清"))
    if r.reprint and r.printed_at is not None:
        lines.append(Pair("补打时间", _stamp(r.printed_at)))
    if r.invoice_url:
        lines += [Rule(), QrCode(r.invoice_url), Text("扫码开具电子发票", Align.CENTER)]
    if r.footer:
        lines += [Feed(), *(Text(part, Align.CENTER) for part in r.footer.splitlines())]
    return Document(tuple(lines))


def render_receipt(receipt: ReceiptData, width: int) -> bytes:
    """The receipt as ESC/POS bytes for paper `width` columns wide (32: 58 mm, 48: 80 mm)."""
    return render(receipt_document(receipt), width)
