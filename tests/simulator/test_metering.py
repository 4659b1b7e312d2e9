from __future__ import annotations

from decimal import Decimal

import pytest

from simulator.metering import (
    Decimals,
    FlowMeter,
    amount_for,
    litres_for_amount,
    stop_limit,
    volume_raw,
)

D2 = Decimals()


@pytest.mark.parametrize(
    ("volume", "price", "amount"),
    [
        (1333, 750, 9998),  # 13.33 L x 7.50 = 99.975 -> 99.98
        (1, 750, 8),  # 0.075 rounds half up to 0.08
        (3, 750, 23),  # 0.225 -> 0.23
        (2, 750, 15),  # exact
        (1000, 800, 8000),
        (0, 750, 0),
    ],
)
def test_amount_is_volume_times_price_rounded_half_up(volume: int, price: int, amount: int) -> None:
    assert amount_for(volume, price, D2) == amount


def test_amount_with_other_decimals() -> None:
    # 12.345 L (3 decimals) at 7.512 (3 decimals) = 92.735640 -> 92.74 (2 decimals)
    assert amount_for(12345, 7512, Decimals(volume=3, amount=2, price=3)) == 9274
    # volume 2 decimals, amount 0 decimals (whole yuan): 13.33 L x 7.50 = 99.975 -> 100
    assert amount_for(1333, 750, Decimals(volume=2, amount=0, price=2)) == 100


def test_decimals_out_of_range_refused() -> None:
    with pytest.raises(ValueError):
        Decimals(volume=4)


def test_meter_truncates_like_a_pulse_counter() -> None:
    assert volume_raw(Decimal("13.3333333"), D2) == 1333
    assert volume_raw(Decimal("13.3399999"), D2) == 1333
    assert litres_for_amount(10000, 750, D2) == Decimal(100) / Decimal("7.5")


def test_flow_ramps_up_then_runs_at_rate() -> None:
    # 60 L/min = 1 L/s, 2 s ramp: 1 L in the first 2 s (a triangle), then 1 L per second.
    meter = FlowMeter(Decimal(60), Decimal(2), 10.0)
    meter.advance(11.0)
    assert meter.litres == Decimal("0.25")
    meter.advance(12.0)
    assert meter.litres == Decimal(1)
    meter.advance(15.0)
    assert meter.litres == Decimal(4)


def test_flow_does_not_depend_on_tick_spacing() -> None:
    coarse = FlowMeter(Decimal(40), Decimal("1.5"), 0.0)
    fine = FlowMeter(Decimal(40), Decimal("1.5"), 0.0)
    coarse.advance(7.3)
    for i in range(1, 74):
        fine.advance(i / 10)
    assert abs(coarse.litres - fine.litres) < Decimal("1e-12")


def test_limit_crossing_time_is_exact() -> None:
    meter = FlowMeter(Decimal(60), Decimal(2), 0.0)
    assert meter.advance(100.0, limit=Decimal("0.5")) == pytest.approx(2**0.5)  # in the ramp
    meter = FlowMeter(Decimal(60), Decimal(2), 0.0)
    assert meter.advance(100.0, limit=Decimal(10)) == pytest.approx(11.0)  # 1 L ramp + 9 s
    assert meter.litres == Decimal(10)
    assert not meter.flowing
    meter.advance(200.0)
    assert meter.litres == Decimal(10)


def test_closed_valve_delivers_nothing_and_reopens_with_a_ramp() -> None:
    meter = FlowMeter(Decimal(60), Decimal(2), 0.0)
    meter.advance(3.0)  # 2 L
    meter.close(3.0)
    meter.advance(50.0)
    assert meter.litres == Decimal(2)
    meter.open(50.0)
    meter.advance(51.0)
    assert meter.litres == Decimal("2.25")


def test_rate_change_takes_effect_from_then_on() -> None:
    meter = FlowMeter(Decimal(60), Decimal(0), 0.0)
    meter.advance(2.0)
    meter.set_rate(Decimal(30), 2.0)
    meter.advance(4.0)
    assert meter.litres == Decimal(3)
    meter.set_rate(Decimal(0), 4.0)
    assert meter.advance(100.0, limit=Decimal(4)) is None
    assert meter.litres == Decimal(3)


def test_stop_limit_amount_preset_gives_the_exact_amount() -> None:
    limit = stop_limit(750, D2, max_amount=999_999, preset_amount=10000)
    assert (limit.volume, limit.amount, limit.preset) == (1333, 10000, True)


def test_stop_limit_volume_preset_and_maximum() -> None:
    limit = stop_limit(800, D2, max_amount=999_999, preset_volume=1000)
    assert (limit.volume, limit.amount, limit.preset) == (1000, 8000, True)
    # A preset above the pump's maximum amount: the maximum wins.
    limit = stop_limit(750, D2, max_amount=5000, preset_amount=10000)
    assert (limit.volume, limit.amount, limit.preset) == (666, 5000, False)
    # No preset, price 0: the display's eight digits are the end.
    limit = stop_limit(0, D2, max_amount=5000)
    assert (limit.volume, limit.amount) == (99_999_999, 0)
