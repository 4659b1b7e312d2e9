"""The books' pure parts: the 20 °C volume correction, a delivery's figures, the month's book."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.books.delivery import Bill, Reading, ReceiptRefused, decide, figures
from edge.books.gbt1885 import DensityOutOfRange, alpha15, density15, vcf20
from edge.books.month import TankMonth, month_csv, report

# The constants of ASTM D1250-80 Table 54B (generalized products), as published: an
# independent float version of the published formula checks the Decimal one.
K = {"gasoline": (346.4228, 0.4388), "jet": (594.5418, 0.0), "fuel_oil": (186.9696, 0.4862)}


def float_ctl(t: float, rho15: float) -> float:
    if rho15 < 770.5:
        k0, k1 = K["gasoline"]
        alpha = k0 / rho15 ** 2 + k1 / rho15
    elif rho15 < 778.0:
        alpha = -0.00336312 + 2680.32 / rho15 ** 2
    elif rho15 < 839.0:
        alpha = K["jet"][0] / rho15 ** 2
    else:
        k0, k1 = K["fuel_oil"]
        alpha = k0 / rho15 ** 2 + k1 / rho15
    dt = t - 15.0
    return math.exp(-alpha * dt * (1 + 0.8 * alpha * dt))


def float_vcf20(t: float, rho20: float) -> float:
    rho15 = rho20
    for _ in range(50):
        rho15 = rho20 / float_ctl(20.0, rho15)
    return float_ctl(t, rho15) / float_ctl(20.0, rho15)


@pytest.mark.parametrize(("rho20", "t"), [("737.5", "25"), ("737.5", "-10"), ("725.0", "35"),
                                          ("775.0", "5"), ("800.0", "30"), ("840.0", "10"),
                                          ("840.0", "30"), ("860.0", "-5")])
def test_vcf20_follows_the_published_procedure(rho20: str, t: str) -> None:
    expected = round(float_vcf20(float(t), float(rho20)), 4)
    assert vcf20(Decimal(t), Decimal(rho20)) == Decimal(str(expected)).quantize(Decimal("0.0001"))


def test_vcf20_is_one_at_20_degrees_and_falls_as_it_warms() -> None:
    for rho in ("700", "737.5", "775", "800", "845", "990"):
        assert vcf20(Decimal(20), Decimal(rho)) == Decimal("1.0000")
    assert vcf20(Decimal(30), Decimal("737.5")) < vcf20(Decimal(30), Decimal("840")) < 1
    assert vcf20(Decimal(0), Decimal("737.5")) > vcf20(Decimal(0), Decimal("840")) > 1


def test_density15_is_where_table_54b_takes_it_to_rho20() -> None:
    rho15 = density15(Decimal("840.0"))
    assert Decimal("843") < rho15 < Decimal("844")
    assert alpha15(Decimal("750")) == Decimal("346.4228") / 750 ** 2 + Decimal("0.4388") / 750


def test_densities_outside_the_tables_are_refused() -> None:
    with pytest.raises(DensityOutOfRange):
        vcf20(Decimal(20), Decimal("500"))
    with pytest.raises(ValueError):
        vcf20(Decimal(150), Decimal("737.5"))


@given(st.decimals(min_value=-30, max_value=50, places=1),
       st.decimals(min_value=660, max_value=1000, places=1))
def test_vcf20_stays_near_one(t: Decimal, rho: Decimal) -> None:
    factor = vcf20(t, rho)
    assert Decimal("0.9") < factor < Decimal("1.1")


def reading(volume: str, t: str | None = "20") -> Reading:
    return Reading(Decimal(volume), None if t is None else Decimal(t), None, "entered", "test",
                   "2026-12-04T10:00:00+08:00")


BILL = Bill("TD-1", Decimal("10000"), Decimal("737.5"), Decimal("20"), "新A12345", ("F1",))


def test_a_loss_within_the_threshold_is_accepted() -> None:
    found = figures(BILL, reading("5000"), reading("14985"), sold_during_l=Decimal(0),
                    threshold=Decimal("0.002"))
    assert found.loss_l == Decimal("15.00") and not found.beyond
    assert decide(found, None) == "accepted"


def test_a_loss_beyond_needs_the_managers_outcome() -> None:
    found = figures(BILL, reading("5000"), reading("14900"), sold_during_l=Decimal("50"),
                    threshold=Decimal("0.002"))
    assert found.received_l == Decimal("9950.00") and found.beyond
    with pytest.raises(ReceiptRefused) as refused:
        decide(found, None)
    assert refused.value.code == "outcome_required"
    assert decide(found, "depot_remeasure") == "depot_remeasure"


def test_a_reading_without_temperature_is_refused() -> None:
    with pytest.raises(ReceiptRefused) as refused:
        figures(BILL, reading("5000", None), reading("15000"), sold_during_l=Decimal(0),
                threshold=Decimal("0.002"))
    assert refused.value.code == "temperature_required"


def test_the_month_book_and_its_allowance() -> None:
    tank = TankMonth(tank=1, grade="92", opening_l=Decimal(10000),
                     opening_source="previous_close", closing_l=Decimal("10928"),
                     closing_source="gauge", received_l=Decimal(9980), sold_l=Decimal(9000),
                     own_use_l=Decimal(40), returned_l=Decimal(20))
    body = report("2026-10", [tank], allowances={"92": Decimal("0.1")},
                  default_allowance=Decimal("0.3"), grade_names={"92": "92号汽油"},
                  start="s", end="e")
    line = body["tanks"][0]
    assert line["book_closing_l"] == "10940.00" and line["loss_l"] == "12.00"
    assert line["allowance_l"] == "9.04" and line["within_allowance"] is False
    assert body["within_allowance"] is False
    assert "超耗" in month_csv(body)
