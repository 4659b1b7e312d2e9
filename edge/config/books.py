"""The `[books]` section: how the station keeps its books (docs/books.md).

    [books]
    delivery_loss_threshold_percent = "0.2"   # transit loss accepted on a delivery
    pause_nozzles_for_delivery = true          # the tank's nozzles sell nothing meanwhile
    loss_allowance_percent = "0.3"             # a month's loss allowed, of the fuel dispensed
    [[books.allowances]]
    grade = "0"
    loss_allowance_percent = "0.28"

Every key has a default: without the section the books are kept with these values.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from domain.config_reader import Findings, Table

if TYPE_CHECKING:
    from .sections import Context

__all__ = ["BooksConfig", "check_books", "read_books"]

_MOST = Decimal(10)


@dataclass(frozen=True)
class BooksConfig:
    delivery_loss_threshold_percent: Decimal = Decimal("0.2")
    pause_nozzles_for_delivery: bool = True
    loss_allowance_percent: Decimal = Decimal("0.3")
    allowances: Mapping[str, Decimal] = field(default_factory=dict)  # by grade code

    def allowance(self, grade: str) -> Decimal:
        return self.allowances.get(grade, self.loss_allowance_percent)


def read_books(t: Table, ctx: Context) -> BooksConfig | None:
    d = BooksConfig()
    threshold = t.decimal("delivery_loss_threshold_percent", d.delivery_loss_threshold_percent,
                          low=Decimal(0), high=_MOST)
    pause = t.boolean("pause_nozzles_for_delivery", d.pause_nozzles_for_delivery)
    allowance = t.decimal("loss_allowance_percent", d.loss_allowance_percent, low=Decimal(0),
                          high=_MOST)
    by_grade: dict[str, Decimal] = {}
    for item in t.tables("allowances"):
        grade = item.text("grade")
        percent = item.decimal("loss_allowance_percent", d.loss_allowance_percent,
                               low=Decimal(0), high=_MOST)
        item.done()
        if grade is not None and percent is not None:
            if grade in by_grade:
                item.error("grade", f"grade {grade} has an allowance already")
            by_grade[grade] = percent
    t.done()
    if threshold is None or pause is None or allowance is None:
        return None
    return BooksConfig(delivery_loss_threshold_percent=threshold,
                       pause_nozzles_for_delivery=pause, loss_allowance_percent=allowance,
                       allowances=by_grade)


def check_books(books: BooksConfig, *, grade_codes: Collection[str], findings: Findings) -> None:
    for grade in books.allowances:
        if grade not in grade_codes:
            findings.error("books.allowances", f"grade {grade!r} is not a [[grades]] code")
