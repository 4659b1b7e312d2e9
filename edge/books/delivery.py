"""A delivery received (卸油验收): the bill of lading against what the tank took in.

Pure: the readings, the bill and the sales during the receipt in, the figures and the outcome
out (docs/books.md, "Deliveries"). Volumes are litres; the standard volume is at 20 °C
(edge/books/gbt1885.py). The loss is what the bill says left the depot minus what the tank
took in, both at 20 °C; a gain is a negative loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from edge.books.gbt1885 import standard_volume, vcf20

__all__ = ["OUTCOMES", "Bill", "Figures", "Reading", "ReceiptRefused", "decide", "figures"]

#: What becomes of a delivery. Within the threshold it is accepted; beyond it the manager
#: chooses: the driver pays the shortage, the depot measures again, or the manager signs it off.
OUTCOMES = {
    "accepted": "合格验收",
    "driver_pays": "超耗由司机赔付",
    "depot_remeasure": "超耗待油库复核",
    "manager_accepts": "超耗经理签认",
}
_BEYOND = ("driver_pays", "depot_remeasure", "manager_accepts")
_L = Decimal("0.01")


class ReceiptRefused(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Bill:
    """The bill of lading (提货单/配送单) as the driver hands it over."""

    number: str
    volume_l: Decimal  # shipped litres as the bill gives them
    density20: Decimal  # kg/m³ at 20 °C (标准密度)
    temperature_c: Decimal | None  # the depot's temperature; None: volume_l is at 20 °C
    truck: str
    seals: tuple[str, ...]
    depot: str | None = None

    def to_api(self) -> dict[str, Any]:
        return {"number": self.number, "volume_l": format(self.volume_l, "f"),
                "density20": format(self.density20, "f"),
                "temperature_c": (None if self.temperature_c is None
                                  else format(self.temperature_c, "f")),
                "truck": self.truck, "seals": list(self.seals), "depot": self.depot}


@dataclass(frozen=True)
class Reading:
    """A tank reading for the receipt: from the gauge, or entered with the reason."""

    volume_l: Decimal
    temperature_c: Decimal | None
    level_mm: Decimal | None
    source: str  # "gauge" or "entered"
    reason: str | None
    read_at: str  # RFC 3339, station time

    def to_api(self) -> dict[str, Any]:
        def text(value: Decimal | None) -> str | None:
            return None if value is None else format(value, "f")
        return {"volume_l": format(self.volume_l, "f"), "temperature_c": text(self.temperature_c),
                "level_mm": text(self.level_mm), "source": self.source, "reason": self.reason,
                "read_at": self.read_at}


@dataclass(frozen=True)
class Figures:
    shipped_std_l: Decimal
    before_std_l: Decimal
    after_std_l: Decimal
    sold_during_l: Decimal
    received_l: Decimal  # observed litres the tank took in (its book)
    received_std_l: Decimal
    loss_l: Decimal  # shipped minus received, at 20 °C
    loss_rate: Decimal  # loss / shipped, a fraction
    threshold: Decimal
    vcf: dict[str, str]

    @property
    def beyond(self) -> bool:
        return abs(self.loss_rate) > self.threshold

    def to_api(self) -> dict[str, Any]:
        return {
            "shipped_std_l": format(self.shipped_std_l, "f"),
            "before_std_l": format(self.before_std_l, "f"),
            "after_std_l": format(self.after_std_l, "f"),
            "sold_during_l": format(self.sold_during_l, "f"),
            "received_l": format(self.received_l, "f"),
            "received_std_l": format(self.received_std_l, "f"),
            "loss_l": format(self.loss_l, "f"),
            "loss_rate_percent": format((self.loss_rate * 100).quantize(
                Decimal("0.001"), rounding=ROUND_HALF_UP), "f"),
            "threshold_percent": format(self.threshold * 100, "f"),
            "beyond_threshold": self.beyond,
            "vcf": self.vcf,
        }  # fmt: skip


def _temperature(reading: Reading, which: str) -> Decimal:
    if reading.temperature_c is None:
        raise ReceiptRefused("temperature_required",
                             f"the {which} reading has no product temperature: the standard "
                             "volume needs it (enter it with the reading)")
    return reading.temperature_c


def figures(bill: Bill, before: Reading, after: Reading, *, sold_during_l: Decimal,
            threshold: Decimal) -> Figures:
    """The receipt's figures; ReceiptRefused when they cannot be computed."""
    if after.volume_l <= before.volume_l - sold_during_l:
        raise ReceiptRefused("no_rise", f"the tank holds {after.volume_l} L after and "
                             f"{before.volume_l} L before: no delivery was received")
    t_before = _temperature(before, "before")
    t_after = _temperature(after, "after")
    rho = bill.density20
    if bill.temperature_c is None:
        shipped = bill.volume_l.quantize(_L)
        vcf_bill = Decimal(1)
    else:
        vcf_bill = vcf20(bill.temperature_c, rho)
        shipped = standard_volume(bill.volume_l, bill.temperature_c, rho)
    before_std = standard_volume(before.volume_l, t_before, rho)
    after_std = standard_volume(after.volume_l, t_after, rho)
    sold_std = standard_volume(sold_during_l, t_after, rho)
    received = (after.volume_l - before.volume_l + sold_during_l).quantize(_L)
    received_std = after_std - before_std + sold_std
    loss = shipped - received_std
    rate = (loss / shipped) if shipped > 0 else Decimal(0)
    return Figures(
        shipped_std_l=shipped, before_std_l=before_std, after_std_l=after_std,
        sold_during_l=sold_during_l.quantize(_L), received_l=received,
        received_std_l=received_std, loss_l=loss, loss_rate=rate, threshold=threshold,
        vcf={"bill": format(vcf_bill, "f"), "before": format(vcf20(t_before, rho), "f"),
             "after": format(vcf20(t_after, rho), "f")},
    )  # fmt: skip


def decide(found: Figures, outcome: str | None) -> str:
    """The outcome: "accepted" within the threshold; beyond it, the manager's choice."""
    if not found.beyond:
        if outcome not in (None, "accepted"):
            raise ReceiptRefused("outcome_not_needed",
                                 "the loss is within the threshold: the delivery is accepted")
        return "accepted"
    if outcome not in _BEYOND:
        raise ReceiptRefused("outcome_required",
                             f"the loss of {found.loss_l} L ({found.to_api()['loss_rate_percent']}"
                             f" %) is beyond the {found.threshold * 100} % threshold: choose "
                             f"an outcome ({', '.join(_BEYOND)})")
    assert outcome is not None
    return outcome
