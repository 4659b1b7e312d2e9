"""Strapping tables, gauge URLs and the delivery detector: no I/O, time passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.gauges import DeliveryDetector, GaugeUrl, Phase, StockPoint, StrappingTable, Transport

# A horizontal cylinder's chart: few litres per mm at the bottom, many in the middle.
CHART = StrappingTable.of([(0, 0), (100, "850.5"), (500, 6200), (1300, 17350), (2600, 30000)])


@pytest.mark.parametrize(
    ("level", "litres"),
    [
        ("0", "0"),
        ("100", "850.5"),
        ("50", "425.25"),  # half-way between 0 and 850.5
        ("300", "3525.25"),  # 850.5 + (6200 - 850.5) x 200/400
        ("900", "11775"),  # 6200 + 11150 x 400/800
        ("1950", "23675"),
        ("2600", "30000"),
        ("2700", "30000"),  # above the chart: the chart's top
        ("-5", "0"),
    ],
)
def test_strapping_interpolates_linearly_between_points(level: str, litres: str) -> None:
    assert CHART.volume_at(Decimal(level)) == Decimal(litres)


@pytest.mark.parametrize(
    "points",
    [
        [(0, 0)],
        [(0, 0), (100, 10), (100, 20)],  # a level twice
        [(0, 0), (100, 10), (50, 20)],  # levels out of order
        [(0, 0), (100, 10), (200, 5)],  # volume falls
        [(-10, 0), (100, 10)],
    ],
)
def test_bad_charts_are_refused(points: list[tuple[int, int]]) -> None:
    with pytest.raises(ValueError):
        StrappingTable.of(points)


@given(st.decimals(min_value=0, max_value=2600, places=1))
def test_level_at_inverts_volume_at(level: Decimal) -> None:
    assert abs(CHART.level_at(CHART.volume_at(level)) - level) < Decimal("1e-20")


def test_a_flat_stretch_inverts_to_its_lowest_level() -> None:
    chart = StrappingTable.of([(0, 0), (10, 0), (20, 100)])
    assert chart.level_at(Decimal(0)) == 0
    assert chart.level_at(Decimal(50)) == 15


@pytest.mark.parametrize(
    ("text", "transport", "endpoint", "shown"),
    [
        ("modbus-tcp://10.0.0.20", Transport.TCP, "10.0.0.20:502", "modbus-tcp://10.0.0.20:502"),
        ("modbus-tcp://127.0.0.1:5020", Transport.TCP, "127.0.0.1:5020",
         "modbus-tcp://127.0.0.1:5020"),
        ("modbus-tcp://[fd00::20]:502", Transport.TCP, "[fd00::20]:502",
         "modbus-tcp://[fd00::20]:502"),
        ("modbus-rtu-tcp://gauge-box.local:4001", Transport.RTU_OVER_TCP, "gauge-box.local:4001",
         "modbus-rtu-tcp://gauge-box.local:4001"),
        ("modbus-rtu:///dev/ttyS3?baudrate=9600&parity=N", Transport.RTU, "/dev/ttyS3",
         "modbus-rtu:///dev/ttyS3?baudrate=9600&parity=N"),
        ("modbus-rtu:///dev/ttyUSB0?baudrate=19200&parity=e&stopbits=2", Transport.RTU,
         "/dev/ttyUSB0", "modbus-rtu:///dev/ttyUSB0?baudrate=19200&parity=E&stopbits=2"),
    ],
)
def test_gauge_urls(text: str, transport: Transport, endpoint: str, shown: str) -> None:
    url = GaugeUrl.parse(text)
    assert (url.transport, url.endpoint, str(url)) == (transport, endpoint, shown)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("tcp://10.0.0.20:502", "starts with one of modbus-tcp://"),
        ("modbus-tcp://10.0.0.20:70000", "port must be a number"),
        ("modbus-tcp://10.0.0.20:502/x", "nothing after it"),
        ("modbus-rtu-tcp://10.0.0.9", "needs the converter's port"),
        ("modbus-rtu://dev/ttyS3", "three slashes"),
        ("modbus-rtu:///dev/ttyS3?baudrate=9601", "baudrate is one of"),
        ("modbus-rtu:///dev/ttyS3?parity=X", "parity is N, E or O"),
        ("modbus-rtu:///dev/ttyS3?speed=9600", "unknown setting speed"),
        ("modbus-tcp://user@10.0.0.20", "no user"),
        ("modbus-tcp://bad_host!:502", "not a host name"),
    ],
)
def test_bad_gauge_urls_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        GaugeUrl.parse(text)


T0 = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)


def at(minutes: float, volume: str, sold: str = "0") -> StockPoint:
    return StockPoint(T0 + timedelta(minutes=minutes), Decimal(volume), Decimal(sold))


def detector() -> DeliveryDetector:
    return DeliveryDetector(noise=Decimal(10), minimum=Decimal(300),
                            settle=timedelta(minutes=5))


def test_a_tanker_drop_is_one_delivery_from_the_last_quiet_point() -> None:
    d = detector()
    assert d.observe(at(0, "5000")) is None
    assert d.observe(at(1, "5000")) is None
    assert d.observe(at(2, "5600")) is None
    assert d.rising_since == T0 + timedelta(minutes=1)
    for minute in range(3, 22):
        assert d.observe(at(minute, str(5600 + 600 * (minute - 2)))) is None
    assert d.observe(at(25, "17000")) is None  # 4 minutes after the last rise: not settled
    found = d.observe(at(27, "17000"))
    assert found is not None and d.phase is Phase.QUIET
    assert found.volume == Decimal(12000)
    assert (found.start.at, found.last_rise.at, found.end.at) == (
        T0 + timedelta(minutes=1), T0 + timedelta(minutes=21), T0 + timedelta(minutes=27))


def test_litres_sold_during_the_drop_are_added_back() -> None:
    d = detector()
    d.observe(at(0, "5000", sold="100"))
    d.observe(at(5, "8000", sold="100"))
    # 60 L sold between the points: the tank shows 60 L less than was delivered.
    d.observe(at(10, "10940", sold="160"))
    found = d.observe(at(20, "10940", sold="160"))
    assert found is not None
    assert (found.volume, found.sold) == (Decimal(6000), Decimal(60))


def test_thermal_expansion_is_no_delivery() -> None:
    d = detector()
    volume = Decimal(20000)
    for minute in range(0, 600, 10):  # +2 L every 10 minutes for 10 hours: 120 L
        assert d.observe(StockPoint(T0 + timedelta(minutes=minute), volume, Decimal(0))) is None
        volume += 2
    assert d.observe(StockPoint(T0 + timedelta(hours=12), volume, Decimal(0))) is None


def test_falls_move_the_reference_so_a_leak_hides_no_delivery() -> None:
    d = detector()
    d.observe(at(0, "9000"))
    d.observe(at(10, "8800"))  # a leak, or a sale not heard of: the reference follows down
    d.observe(at(20, "9200"))
    found = d.observe(at(30, "9200"))
    assert found is not None and found.volume == Decimal(400)
    assert found.start.volume == Decimal(8800)


def test_a_rise_that_falls_back_is_dropped() -> None:
    d = detector()
    d.observe(at(0, "9000"))
    d.observe(at(1, "9400"))  # a wave from a hose, then gone
    assert d.observe(at(2, "8990")) is None and d.phase is Phase.QUIET
    assert d.observe(at(20, "8990")) is None


def test_the_detector_refuses_a_minimum_within_the_noise() -> None:
    with pytest.raises(ValueError):
        DeliveryDetector(noise=Decimal(10), minimum=Decimal(10), settle=timedelta(minutes=5))


def test_a_drop_after_a_still_night_starts_at_the_drop_not_at_dusk() -> None:
    d = detector()
    for minute in range(0, 181, 10):
        d.observe(at(minute, "5000"))
    d.observe(at(182, "6000"))
    found = d.observe(at(190, "6000"))
    assert found is not None and found.start.at == T0 + timedelta(minutes=180)
