"""Sale checks against the pump's arithmetic and totalizers, and unit conversions."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from domain.model import Preset, TotalsReading
from domain.units import UnitError, from_raw, to_raw
from edge.checks import check_sale
from edge.config import PumpDecimals

D = Decimal
NOW = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)


def totals(volume: str) -> TotalsReading:
    return TotalsReading(pump=1, nozzle=1, volume_total=D(volume), amount_total=D("0"),
                         read_at=NOW, source="pump")


def check(volume: str, amount: str, price: str = "7.50", before: str | None = "1000.00",
          after: str | None = None, preset: Preset | None = None) -> list[str]:
    after = after or str(D(before or "0") + D(volume))
    found = check_sale(pump=1, nozzle=1, volume=D(volume), amount=D(amount), price=D(price),
                       before=totals(before) if before else None, after=totals(after),
                       preset=preset, decimals=PumpDecimals())
    return [item["kind"] for item in found]


def test_an_exact_sale_has_no_discrepancy() -> None:
    assert check("20.00", "150.00") == []


def test_an_amount_preset_shows_the_preset_exactly() -> None:
    # 13.33 L x 7.50 = 99.975: the pump stopped at 100.00, within one volume step's worth.
    assert check("13.33", "100.00", preset=Preset("amount", D("100.00"))) == []


def test_an_amount_beyond_one_volume_step_is_a_mismatch() -> None:
    assert check("13.33", "100.10") == ["amount_mismatch"]
    assert check("20.00", "149.90") == ["amount_mismatch"]


def test_a_totals_delta_different_from_the_volume_is_a_mismatch() -> None:
    assert check("20.00", "150.00", after="1020.01") == ["totals_mismatch"]


def test_a_centilitre_short_on_the_totals_is_found() -> None:
    assert check("20.00", "150.00", after="1019.99") == ["totals_mismatch"]


def test_no_previous_totals_means_no_totals_check() -> None:
    assert check("20.00", "150.00", before=None, after="5.00") == []


def test_a_preset_exceeded_is_reported() -> None:
    assert check("20.00", "150.00", preset=Preset("amount", D("100.00"))) == ["preset_exceeded"]
    assert check("20.01", "150.08", preset=Preset("volume", D("20.00"))) == ["preset_exceeded"]


def test_pump_units_round_trip_with_the_pump_decimals() -> None:
    assert from_raw(1175, 2) == D("11.75")
    assert from_raw(1175, 3) == D("1.175")
    assert to_raw(D("100.00"), 2) == 10000
    assert to_raw(D("7.5"), 3) == 7500


@pytest.mark.parametrize("value", ["0", "-1", "1.005", "1000000.00"])
def test_quantities_a_pump_cannot_take_are_refused(value: str) -> None:
    with pytest.raises(UnitError):
        to_raw(D(value), 2)
