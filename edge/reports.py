"""Daily sales report (日报): a pure function of the day's sales, the station's zone and the day.

A sale belongs to the local day and hour in which its fill ended; its payments count on that
day too, whenever they were taken, so that the day's payments and unpaid balance add up to the
day's sales. Sums are Decimal, never floats: the figures must match the till to the fen.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from domain.model import Sale, decimal_str, rfc3339

ZERO = Decimal("0")
HOURS = 24
#: Payment methods in the order the reports show them (every one of PAYMENT_METHODS).
METHODS: tuple[str, ...] = ("cash", "wechat", "alipay", "card", "account", "app")


def day_span(day: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """[start, end) of the local day `day`: 23 or 25 hours on a day the clocks change."""
    start = datetime.combine(day, time(0), zone)
    end = datetime.combine(day + timedelta(days=1), time(0), zone)
    return start, end


@dataclass(frozen=True)
class Figures:
    """Litres, yuan and number of sales."""

    volume: Decimal = ZERO
    amount: Decimal = ZERO
    count: int = 0

    def plus(self, sale: Sale) -> Figures:
        return Figures(self.volume + sale.volume, self.amount + sale.amount, self.count + 1)

    def to_api(self) -> dict[str, Any]:
        return {"volume": decimal_str(self.volume), "amount": decimal_str(self.amount),
                "count": self.count}


@dataclass(frozen=True)
class MethodFigures:
    """Money taken by one payment method and the number of payments."""

    amount: Decimal = ZERO
    count: int = 0

    def to_api(self) -> dict[str, Any]:
        return {"amount": decimal_str(self.amount), "count": self.count}


@dataclass(frozen=True)
class DailyReport:
    day: date
    zone: str
    by_grade: dict[str, Figures]
    by_hour: tuple[Figures, ...]  # index = local hour 0..23
    by_method: dict[str, MethodFigures]
    paid: Decimal
    unpaid: Decimal
    totals: Figures
    grade_names: Mapping[str, str] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        return {
            "date": self.day.isoformat(),
            "zone": self.zone,
            "by_grade": [{"grade": code, "name": self.grade_names.get(code, code),
                          **figures.to_api()} for code, figures in self.by_grade.items()],
            "by_hour": [{"hour": hour, **figures.to_api()}
                        for hour, figures in enumerate(self.by_hour)],
            "by_method": [{"method": method, **figures.to_api()}
                          for method, figures in self.by_method.items()],
            "totals": {**self.totals.to_api(), "paid": decimal_str(self.paid),
                       "unpaid": decimal_str(self.unpaid)},
        }


def _local(sale: Sale, zone: tzinfo) -> datetime:
    return sale.ended_at.astimezone(zone)


def daily_report(sales: Iterable[Sale], *, day: date, zone: tzinfo,
                 grade_names: Mapping[str, str] | None = None) -> DailyReport:
    """The report of local day `day`; sales that ended on another day are left out."""
    names = dict(grade_names or {})
    # Every configured grade has a line, sold or not; grades sold but no longer configured
    # follow, so that the lines always add up to the totals.
    by_grade: dict[str, Figures] = {code: Figures() for code in names}
    by_hour = [Figures()] * HOURS
    by_method = {method: MethodFigures() for method in METHODS}
    totals = Figures()
    paid = ZERO
    for sale in sales:
        local = _local(sale, zone)
        if local.date() != day:
            continue
        by_grade[sale.grade] = by_grade.get(sale.grade, Figures()).plus(sale)
        by_hour[local.hour] = by_hour[local.hour].plus(sale)
        totals = totals.plus(sale)
        for payment in sale.payments:
            before = by_method.get(payment.method, MethodFigures())
            by_method[payment.method] = MethodFigures(before.amount + payment.amount,
                                                      before.count + 1)
            paid += payment.amount
    return DailyReport(day=day, zone=str(zone), by_grade=by_grade, by_hour=tuple(by_hour),
                       by_method=by_method, paid=paid, unpaid=totals.amount - paid,
                       totals=totals, grade_names=names)


#: The CSV's columns: one row per sale, in seq order.
CSV_COLUMNS: tuple[str, ...] = ("sale_id", "seq", "ended_at", "hour", "pump", "nozzle", "grade",
                                "grade_name", "price", "volume", "amount", "paid", *METHODS)


def daily_csv(sales: Iterable[Sale], *, day: date, zone: tzinfo,
              grade_names: Mapping[str, str] | None = None) -> str:
    """The sales of local day `day` as CSV, one row per sale: the per-method columns hold what
    was paid by each method, so summing a column gives the report's figure."""
    names = grade_names or {}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for sale in sorted(sales, key=lambda s: s.seq):
        local = _local(sale, zone)
        if local.date() != day:
            continue
        by_method = dict.fromkeys(METHODS, ZERO)
        for payment in sale.payments:
            by_method[payment.method] = by_method.get(payment.method, ZERO) + payment.amount
        writer.writerow([
            sale.id, sale.seq, rfc3339(local), local.hour, sale.pump, sale.nozzle, sale.grade,
            names.get(sale.grade, sale.grade), decimal_str(sale.price), decimal_str(sale.volume),
            decimal_str(sale.amount), decimal_str(sale.paid_amount),
            *(decimal_str(by_method[m]) for m in METHODS),
        ])
    return out.getvalue()
