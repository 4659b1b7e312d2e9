"""The month's 进销存 (stock in, out and on hand) per tank and per grade: pure.

For each tank (docs/books.md, "Month close")::

    book closing = opening + received - sold - own use - transferred out + transferred in
                   + adjustments
    loss         = book closing - measured closing        (positive: fuel missing)
    outflow      = sold + own use + transferred out
    allowance    = outflow x the grade's loss allowance

Self-checks and fuel returned to the tank leave the nozzle and go back into the tank: they are
shown (dispensed and returned) and change nothing in the book. A month is within its allowance
when |loss| <= allowance.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

__all__ = ["TankMonth", "month_csv", "month_span", "parse_month", "report"]

_L = Decimal("0.01")
RETURNED_KINDS = ("self_check", "returned")


def parse_month(text: str) -> date:
    """"2026-11" -> date(2026, 11, 1); ValueError otherwise."""
    if len(text) != 7 or text[4] != "-":
        raise ValueError(f"a month is YYYY-MM, not {text!r}")
    year, month = int(text[:4]), int(text[5:])
    if not (2000 <= year <= 2999 and 1 <= month <= 12):
        raise ValueError(f"no month {text!r}")
    return date(year, month, 1)


def next_month(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


def month_span(first: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """[start, end) of the month in the station's time zone."""
    return (datetime.combine(first, time(), zone),
            datetime.combine(next_month(first), time(), zone))


@dataclass
class TankMonth:
    """One tank's figures for the month, as gathered from the ledger."""

    tank: int
    grade: str
    opening_l: Decimal
    opening_source: str  # "previous_close", "gauge" or "none"
    closing_l: Decimal | None  # measured; None: no reading
    closing_source: str  # "gauge", "entered" or "none"
    received_l: Decimal = Decimal(0)
    received_std_l: Decimal = Decimal(0)
    receipts: int = 0
    sold_l: Decimal = Decimal(0)
    sold_amount: Decimal = Decimal(0)
    sales: int = 0
    own_use_l: Decimal = Decimal(0)
    transfer_out_l: Decimal = Decimal(0)
    transfer_in_l: Decimal = Decimal(0)
    returned_l: Decimal = Decimal(0)  # self-checks and returned to the tank
    adjustments_l: Decimal = Decimal(0)
    unreceived_deliveries: list[str] = field(default_factory=list)

    @property
    def book_closing_l(self) -> Decimal:
        return (self.opening_l + self.received_l - self.sold_l - self.own_use_l
                - self.transfer_out_l + self.transfer_in_l + self.adjustments_l)

    @property
    def outflow_l(self) -> Decimal:
        return self.sold_l + self.own_use_l + self.transfer_out_l


def _q(value: Decimal) -> str:
    return format(value.quantize(_L, rounding=ROUND_HALF_UP), "f")


def _line(figures: Mapping[str, Decimal], allowance_percent: Decimal,
          measured: Decimal | None) -> dict[str, Any]:
    book = (figures["opening_l"] + figures["received_l"] - figures["sold_l"]
            - figures["own_use_l"] - figures["transfer_out_l"] + figures["transfer_in_l"]
            + figures["adjustments_l"])
    outflow = figures["sold_l"] + figures["own_use_l"] + figures["transfer_out_l"]
    allowance = (outflow * allowance_percent / 100).quantize(_L, rounding=ROUND_HALF_UP)
    line: dict[str, Any] = {name: _q(value) for name, value in figures.items()}
    line.update({"book_closing_l": _q(book), "outflow_l": _q(outflow),
                 "allowance_percent": format(allowance_percent, "f"),
                 "allowance_l": _q(allowance)})
    if measured is None:
        line.update({"closing_l": None, "loss_l": None, "loss_rate_percent": None,
                     "within_allowance": None})
    else:
        loss = book - measured
        rate = (loss / outflow * 100) if outflow else Decimal(0)
        line.update({"closing_l": _q(measured), "loss_l": _q(loss),
                     "loss_rate_percent": format(rate.quantize(Decimal("0.001"),
                                                               rounding=ROUND_HALF_UP), "f"),
                     "within_allowance": abs(loss) <= allowance})
    return line


_FIGURES = ("opening_l", "received_l", "received_std_l", "sold_l", "sold_amount", "own_use_l",
            "transfer_out_l", "transfer_in_l", "returned_l", "adjustments_l")


def report(month: str, tanks: Sequence[TankMonth], *, allowances: Mapping[str, Decimal],
           default_allowance: Decimal, grade_names: Mapping[str, str],
           start: str, end: str) -> dict[str, Any]:
    """The month's 进销存: a line per tank and per grade (the grade's tanks added up)."""
    tank_lines = []
    by_grade: dict[str, dict[str, Decimal]] = {}
    measured_by_grade: dict[str, Decimal | None] = {}
    for tm in sorted(tanks, key=lambda t: t.tank):
        figures = {name: getattr(tm, name) for name in _FIGURES}
        allowance = allowances.get(tm.grade, default_allowance)
        line = _line(figures, allowance, tm.closing_l)
        line.update({"tank": tm.tank, "grade": tm.grade,
                     "grade_name": grade_names.get(tm.grade, tm.grade),
                     "opening_source": tm.opening_source, "closing_source": tm.closing_source,
                     "receipts": tm.receipts, "sales": tm.sales,
                     "unreceived_deliveries": list(tm.unreceived_deliveries)})
        tank_lines.append(line)
        sums = by_grade.setdefault(tm.grade, {name: Decimal(0) for name in _FIGURES})
        for name in _FIGURES:
            sums[name] += figures[name]
        known = measured_by_grade.get(tm.grade, Decimal(0))
        measured_by_grade[tm.grade] = (None if known is None or tm.closing_l is None
                                       else known + tm.closing_l)
    grade_lines = []
    for grade in sorted(by_grade):
        line = _line(by_grade[grade], allowances.get(grade, default_allowance),
                     measured_by_grade[grade])
        line.update({"grade": grade, "grade_name": grade_names.get(grade, grade)})
        grade_lines.append(line)
    return {
        "month": month, "start": start, "end": end, "tanks": tank_lines, "grades": grade_lines,
        "within_allowance": all(line["within_allowance"] is not False for line in grade_lines),
    }


_CSV_COLUMNS = (
    ("tank", "油罐"), ("grade_name", "油品"), ("opening_l", "期初库存(升)"),
    ("received_l", "进油(升)"), ("received_std_l", "进油标准体积(升)"), ("sold_l", "销售(升)"),
    ("sold_amount", "销售金额(元)"), ("own_use_l", "自用(升)"), ("transfer_out_l", "倒出(升)"),
    ("transfer_in_l", "倒入(升)"), ("returned_l", "自检回罐(升)"),
    ("adjustments_l", "调整(升)"), ("book_closing_l", "账面库存(升)"),
    ("closing_l", "实测库存(升)"), ("loss_l", "损耗(升)"), ("loss_rate_percent", "损耗率(%)"),
    ("allowance_l", "允许损耗(升)"), ("within_allowance", "是否超耗"),
)


def month_csv(body: Mapping[str, Any]) -> str:
    """The 进销存 as CSV: a row per tank, then a row per grade (油罐 = 合计)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([f"{body['month']} 进销存"])
    writer.writerow([title for _, title in _CSV_COLUMNS])

    def rows(lines: Iterable[Mapping[str, Any]], total: bool) -> None:
        for line in lines:
            values = []
            for key, _ in _CSV_COLUMNS:
                value = line.get(key)
                if key == "tank" and total:
                    value = "合计"
                if key == "within_allowance":
                    value = "" if value is None else ("否" if value else "超耗")
                values.append("" if value is None else value)
            writer.writerow(values)

    rows(body["tanks"], False)
    rows(body["grades"], True)
    return out.getvalue()
