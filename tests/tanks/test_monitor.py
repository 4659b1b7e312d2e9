"""The tank monitor against real pymodbus servers (the gauge simulator) on loopback ports.

Time is a fake clock shared by the station and the simulated tanks: polls are called one by
one, so a day, a delivery or a leak takes no real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import tty
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.framer import FramerType

from drivers.dart.transactions import CD1, CD5, PumpCommand
from drivers.gauges import GaugeUrl
from edge.tanks import TankMonitor
from simulator.control import Simulator, make_pumps
from simulator.gauge import (
    GaugeSimulator,
    demo_tank_settings,
    demo_tanks_toml,
    pump_nozzle_tanks,
    run_gauge_simulator,
)
from simulator.lines.dart import DartLine
from tests.helpers import wait_until

from .conftest import PUMPS, SHANGHAI, T0, Books, Clock, new_sale, served, settings_of

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")

START = {1: Decimal("12345.5"), 2: Decimal(9000)}


@pytest.fixture
async def gauges(clock: Clock) -> AsyncIterator[GaugeSimulator]:
    async with run_gauge_simulator(settings_of(), clock=clock.seconds, volumes=START) as sim:
        yield sim


@pytest.fixture
async def monitor(gauges: GaugeSimulator, books: Books, clock: Clock) -> AsyncIterator[TankMonitor]:
    watcher = TankMonitor(served(settings_of(), gauges), pumps=PUMPS, ledger=books.ledger,
                          hub=books.hub, clock=clock, zone=SHANGHAI)
    await watcher.start()
    yield watcher
    watcher.close()


async def tank(monitor: TankMonitor, number: int) -> dict[str, Any]:
    view = await monitor.view()
    return next(t for t in view["tanks"] if t["number"] == number)


def sale_message(nozzle: int, volume: str, ended_at: str = "2026-11-22T09:10:00+08:00"
                 ) -> dict[str, Any]:
    return {"type": "sale.completed", "seq": 1,
            "data": {"nozzle": nozzle, "volume": volume, "ended_at": ended_at}}


def pump_state(nozzle: int, state: str) -> dict[str, Any]:
    return {"type": "pump.state", "data": {"number": 1, "state": state, "nozzles": [
        {"number": nozzle, "grade": "92", "state": state, "volume": "0.00", "amount": "0.00"}]}}


async def test_the_simulator_serves_the_configured_map(gauges: GaugeSimulator) -> None:
    """Checked with pymodbus's own client and IEEE 754 words, not with our decoder."""
    console = GaugeUrl.parse(gauges.url("console"))
    probes = GaugeUrl.parse(gauges.url("probes"))
    client = AsyncModbusTcpClient(console.host, port=console.port, timeout=2, retries=0)
    rtu = AsyncModbusTcpClient(probes.host, port=probes.port, framer=FramerType.RTU, timeout=2,
                               retries=0)
    try:
        assert await client.connect() and await rtu.connect()
        # 12345.5 L is float32 0x4640E600, low word first (CDAB).
        volume = await client.read_holding_registers(6, count=2, device_id=1)
        assert volume.registers == [0xE600, 0x4640]
        # Tank 2's level: 9000 L on the chart is 1083.33 mm, 10833 tenths; input registers.
        level = await rtu.read_input_registers(0, count=2, device_id=3)
        assert level.registers == [0, 10833]
        # The probes keep nothing in holding registers: "illegal data address".
        refused = await rtu.read_holding_registers(0, count=2, device_id=3)
        assert refused.isError() and refused.exception_code == 2
    finally:
        client.close()
        rtu.close()


async def test_readings_from_float32_and_scaled_integers(monitor: TankMonitor,
                                                         gauges: GaugeSimulator,
                                                         books: Books) -> None:
    gauges.tanks[1].water_mm, gauges.tanks[1].temperature_c = Decimal("12.5"), Decimal("18.3")
    gauges.tanks[2].water_mm, gauges.tanks[2].temperature_c = Decimal("4.2"), Decimal("-3.5")
    await monitor.poll_all()
    assert await tank(monitor, 1) == {
        "number": 1, "grade": "92", "capacity": "30000.00",
        "level_mm": "1069.9",  # 12345.5 / 30000 x 2600 mm, as the float32 carries it
        "volume_l": "12345.50", "water_mm": "12.5", "temperature_c": "18.3",
        "ullage_l": "17654.50", "read_at": "2026-11-22T09:00:00+08:00", "alerts": [],
        "gauge": "console", "gauge_online": True}
    second = await tank(monitor, 2)
    # Level 1083.3 mm on the chart (1000 mm: 8000 L, 2000 mm: 20000 L): 8000 + 12000 x 0.0833.
    assert (second["level_mm"], second["volume_l"], second["ullage_l"]) == (
        "1083.3", "8999.60", "11000.40")
    assert (second["water_mm"], second["temperature_c"]) == ("4.2", "-3.5")
    assert [(e["tank"], e["volume_l"]) for e in books.events("tank.reading")] == [
        (1, "12345.50"), (2, "8999.60")]
    # Unchanged on the next poll: nothing new to tell.
    await monitor.poll_all()
    assert len(books.events("tank.reading")) == 2


async def test_low_stock_is_raised_once_and_cleared_clear_of_the_noise(
        monitor: TankMonitor, gauges: GaugeSimulator, books: Books) -> None:
    async def poll_at(volume: str) -> list[dict[str, Any]]:
        gauges.tanks[1].volume = Decimal(volume)
        await monitor.poll("console")
        return books.events("tank.alert")

    assert await poll_at("3500") == []
    [raised] = await poll_at("2990")
    assert raised == {"tank": 1, "grade": "92", "kind": "low_stock", "status": "raised",
                      "gauge": "console", "volume_l": "2990.00", "low_stock_l": "3000.00",
                      "at": "2026-11-22T09:00:00+08:00"}
    assert (await tank(monitor, 1))["alerts"] == [
        {"kind": "low_stock", "since": "2026-11-22T09:00:00+08:00", "gauge": "console",
         "volume_l": "2990.00", "low_stock_l": "3000.00"}]
    assert len(await poll_at("2950")) == 1  # still low: no second alert
    assert len(await poll_at("3005")) == 1  # back over the limit, within the noise
    *_, cleared = await poll_at("3010")
    assert (cleared["kind"], cleared["status"], cleared["volume_l"]) == (
        "low_stock", "cleared", "3010.00")
    assert (await tank(monitor, 1))["alerts"] == []


async def test_high_water_is_an_alert(monitor: TankMonitor, gauges: GaugeSimulator,
                                      books: Books) -> None:
    gauges.tanks[1].water_mm = Decimal("50.5")
    await monitor.poll("console")
    [alert] = books.events("tank.alert")
    assert (alert["kind"], alert["water_mm"], alert["high_water_mm"]) == (
        "high_water", "50.5", "50.0")


async def test_a_delivery_is_detected_with_the_volume_dropped(
        monitor: TankMonitor, gauges: GaugeSimulator, books: Books, clock: Clock) -> None:
    gauges.tanks[1].volume = Decimal(5000)
    await monitor.poll("console")
    gauges.deliver(1, Decimal(12000), minutes=20)
    for minute in range(1, 31):
        clock.advance(minutes=1)
        if minute == 9:  # a customer fuels 50 L from the same tank during the drop
            monitor.observe(pump_state(1, "fuelling"))
        if minute == 10:
            gauges.tanks[1].draw(Decimal(50))
            monitor.observe(sale_message(1, "50.00"))
            monitor.observe(pump_state(1, "idle"))
        await monitor.poll("console")
    [delivery] = books.events("delivery.detected")
    assert delivery["volume_l"] == "12000.00" and delivery["sold_l"] == "50.00"
    assert (delivery["tank"], delivery["start_volume_l"], delivery["end_volume_l"]) == (
        1, "5000.00", "16950.00")
    assert (delivery["started_at"], delivery["ended_at"]) == (
        "2026-11-22T09:00:00+08:00", "2026-11-22T09:20:00+08:00")
    assert books.store.deliveries(tank=1)[0].volume_l == Decimal(12000)


async def test_a_gauge_goes_offline_and_comes_back(
        monitor: TankMonitor, gauges: GaugeSimulator, books: Books,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="drivers.gauges")
    await monitor.poll_all()
    await gauges.stop("console")
    await monitor.poll("console")
    assert books.events("tank.alert") == []  # one failed poll is not offline yet
    await monitor.poll("console")
    [alert] = books.events("tank.alert")
    assert (alert["tank"], alert["kind"], alert["status"], alert["gauge"], alert["reason"]) == (
        1, "gauge_offline", "raised", "console", "unreachable")
    first, second = await tank(monitor, 1), await tank(monitor, 2)
    assert first["gauge_online"] is False and first["alerts"][0]["kind"] == "gauge_offline"
    assert first["volume_l"] == "12345.50"  # the last reading stays, with its time
    assert second["gauge_online"] is True and second["alerts"] == []

    await gauges.start("console")  # back on the same port
    await monitor.poll("console")
    *_, cleared = books.events("tank.alert")
    assert (cleared["kind"], cleared["status"]) == ("gauge_offline", "cleared")
    assert (await tank(monitor, 1))["gauge_online"] is True

    levels = [(r.levelno, r.getMessage()) for r in caplog.records
              if r.name == "drivers.gauges.poller"]
    failures = [(level, text) for level, text in levels if "console" in text]
    # The first failure at error, the repeat at debug, the recovery at info.
    assert failures[0][0] == logging.ERROR and failures[0][1].startswith("gauge console")
    assert failures[1][0] == logging.DEBUG and "still failing" in failures[1][1]
    assert (logging.INFO, "gauge console answers again after 2 failed polls") in levels


async def test_a_silent_gauge_times_out_and_stalls_nothing(books: Books, clock: Clock) -> None:
    """A device that takes the connection and never answers: one bounded request per poll."""
    writers: list[asyncio.StreamWriter] = []

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = settings_of()
    console = dataclasses.replace(settings.gauges[0], url=GaugeUrl.parse(
        f"modbus-tcp://127.0.0.1:{port}"), timeout=timedelta(milliseconds=100), offline_after=1)
    settings = dataclasses.replace(settings, gauges=(console, settings.gauges[1]))
    monitor = TankMonitor(settings, pumps=PUMPS, ledger=books.ledger, hub=books.hub,
                          clock=clock, zone=SHANGHAI)
    await monitor.start()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    try:
        async with asyncio.TaskGroup() as group:
            beat = group.create_task(ticker())
            await asyncio.wait_for(monitor.poll("console"), timeout=5)
            beat.cancel()
    finally:
        monitor.close()
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()
    [alert] = books.events("tank.alert")
    assert (alert["kind"], alert["reason"]) == ("gauge_offline", "timeout")
    assert ticks > 10  # the loop kept running while the gauge said nothing


async def test_the_daily_reconciliation_finds_a_leak(
        monitor: TankMonitor, gauges: GaugeSimulator, books: Books, clock: Clock) -> None:
    gauges.tanks[1].volume = Decimal(20000)
    gauges.leak(1, Decimal(10))  # 10 L an hour out of tank 1
    await monitor.poll_all()  # the first reading opens the day for both tanks
    sold = new_sale(1, "300", T0 + timedelta(hours=3), total="10300")
    await books.ledger.record_sale(sold)
    gauges.tanks[1].draw(Decimal(300))
    clock.advance(hours=15, minutes=30)  # 00:30 the next day, station time
    await monitor.poll_all()
    [flagged] = books.events("reconciliation.discrepancy")
    # 20000 + 0 - 300 = 19700 expected; 15.5 h of leak left 19545.
    assert {k: flagged[k] for k in ("kind", "tank", "day", "opening_l", "sales_l",
                                    "expected_l", "closing_l", "variance_l",
                                    "tolerance_l")} == {
        "kind": "wetstock", "tank": 1, "day": "2026-11-22", "opening_l": "20000.00",
        "sales_l": "300.00", "expected_l": "19700.00", "closing_l": "19545.00",
        "variance_l": "-155.00", "tolerance_l": "21.50"}
    # Tank 2 sold nothing and lost nothing: reconciled, not flagged.
    [balanced] = books.store.reconciliations(tank=2)
    assert balanced.variance_l == 0 and not balanced.flagged
    await monitor.poll_all()  # the day is closed once
    assert len(books.store.reconciliations()) == 2


async def test_the_tanks_fall_as_the_pumps_dispense(books: Books, clock: Clock) -> None:
    settings = settings_of()
    pumps = Simulator(make_pumps(2), clock=clock.seconds)
    pump = pumps.pump(0x50)
    pump.apply([CD5((750, 800)), CD1(PumpCommand.RESET), CD1(PumpCommand.AUTHORIZE)],
               clock.seconds())
    async with run_gauge_simulator(settings, clock=clock.seconds, volumes=START,
                                   follow=DartLine.wrap(pumps),
                                   nozzles=pump_nozzle_tanks(settings, PUMPS)) as gauges:
        pumps.lift(0x50, 1)
        clock.advance(seconds=90)
        monitor = TankMonitor(served(settings, gauges), pumps=PUMPS, ledger=books.ledger,
                              hub=books.hub, clock=clock, zone=SHANGHAI)
        try:
            await monitor.poll("console")
        finally:
            monitor.close()
    drawn = Decimal(pump.totals(1)[0]) / 100  # the nozzle's volume totalizer, in litres
    assert drawn > 50
    assert (await tank(monitor, 1))["volume_l"] == f"{START[1] - drawn:.2f}"


async def test_run_follows_the_hub_and_stops_cleanly(gauges: GaugeSimulator, books: Books,
                                                     clock: Clock) -> None:
    settings = served(settings_of(), gauges)
    settings = dataclasses.replace(settings, gauges=tuple(
        dataclasses.replace(g, poll_interval=timedelta(seconds=1)) for g in settings.gauges))
    monitor = TankMonitor(settings, pumps=PUMPS, ledger=books.ledger, hub=books.hub,
                          clock=clock, zone=SHANGHAI)
    async with monitor:
        await wait_until(lambda: gauges.requests >= 2, what="both gauges polled")
        await wait_until(lambda: books.hub.subscribers == 1, what="the hub followed")
        books.hub.publish(pump_state(3, "fuelling"))
        await wait_until(lambda: monitor.dispensing(1), what="tank 1 dispensing")
        assert not monitor.dispensing(2)
        books.hub.publish({"type": "pump.state", "data": {"nozzles": "garbage"}})
        books.hub.publish(pump_state(3, "idle"))
        await wait_until(lambda: not monitor.dispensing(1), what="tank 1 quiet")
        view = await monitor.view()
        assert [t["volume_l"] for t in view["tanks"]] == ["12345.50", "8999.60"]
    assert books.hub.subscribers == 0


async def test_a_restart_picks_up_alerts_readings_and_closed_days(
        monitor: TankMonitor, gauges: GaugeSimulator, books: Books, clock: Clock) -> None:
    gauges.tanks[1].volume = Decimal(2500)
    await monitor.poll_all()
    assert [e["kind"] for e in books.events("tank.alert")] == ["low_stock"]
    monitor.close()
    clock.advance(minutes=1)
    again = TankMonitor(served(settings_of(), gauges), pumps=PUMPS, ledger=books.ledger,
                        hub=books.hub, clock=clock, zone=SHANGHAI)
    await again.start()
    before = await tank(again, 1)
    assert before["volume_l"] == "2500.00" and before["gauge_online"] is False
    assert [a["kind"] for a in before["alerts"]] == ["low_stock"]
    try:
        await again.poll_all()
    finally:
        again.close()
    assert len(books.events("tank.alert")) == 1  # still low: not raised twice
    assert len(books.events("tank.reading")) == 2  # nothing moved: nothing new to tell
    assert books.store.reconciliations() == []  # the day opened once, closes tomorrow


async def test_the_demo_console_follows_the_demo_pumps(books: Books, clock: Clock) -> None:
    settings = demo_tank_settings()
    pumps = Simulator(make_pumps(2), clock=clock.seconds)
    async with run_gauge_simulator(settings, clock=clock.seconds,
                                   volumes={3: Decimal(17350)}) as gauges:
        # As the demo does it: serve first, write the config with the URL, then follow.
        served_settings = settings_of(demo_tanks_toml(gauges.url("console")))
        gauges.follow(DartLine.wrap(pumps), pump_nozzle_tanks(served_settings, PUMPS))
        monitor = TankMonitor(served_settings, pumps=PUMPS, ledger=books.ledger,
                              hub=books.hub, clock=clock, zone=SHANGHAI)
        try:
            await monitor.poll_all()
        finally:
            monitor.close()
    view = await monitor.view()
    assert [(t["number"], t["volume_l"]) for t in view["tanks"]] == [
        (1, "18000.00"), (2, "12000.00"), (3, "17350.00")]  # tank 3: 1300 mm on its chart
    assert view["tanks"][2]["level_mm"] == "1300.0"


async def _pty_to_tcp(master: int, host: str, port: int) -> None:
    """Carries bytes between a pseudo-terminal and a TCP server, as a serial cable would."""
    reader, writer = await asyncio.open_connection(host, port)
    loop = asyncio.get_running_loop()

    def from_pty() -> None:
        with contextlib.suppress(OSError):
            writer.write(os.read(master, 1024))

    loop.add_reader(master, from_pty)
    try:
        while data := await reader.read(1024):
            os.write(master, data)
    finally:
        loop.remove_reader(master)
        writer.close()


async def test_a_probe_on_a_serial_port(gauges: GaugeSimulator, books: Books,
                                       clock: Clock) -> None:
    """modbus-rtu:// through pymodbus's serial client, on a pty (parity N: Linux drops parity
    on ptys) wired to the simulated probe bus."""
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    served_rtu = GaugeUrl.parse(gauges.url("probes"))
    settings = served(settings_of(), gauges)
    probes = dataclasses.replace(settings.gauges[1], url=GaugeUrl.parse(
        f"modbus-rtu://{os.ttyname(slave)}?baudrate=9600&parity=N"))
    settings = dataclasses.replace(settings, gauges=(settings.gauges[0], probes))
    monitor = TankMonitor(settings, pumps=PUMPS, ledger=books.ledger, hub=books.hub,
                          clock=clock, zone=SHANGHAI)
    try:
        async with asyncio.TaskGroup() as group:
            cable = group.create_task(_pty_to_tcp(master, served_rtu.host, served_rtu.port))
            await monitor.poll("probes")
            cable.cancel()
    finally:
        monitor.close()
        os.close(master)
        os.close(slave)
    second = await tank(monitor, 2)
    assert (second["level_mm"], second["volume_l"], second["gauge_online"]) == (
        "1083.3", "8999.60", True)


async def test_an_outage_across_a_restart_is_one_alert(
        monitor: TankMonitor, gauges: GaugeSimulator, books: Books, clock: Clock) -> None:
    await gauges.stop("console")
    await monitor.poll("console")
    await monitor.poll("console")
    monitor.close()
    again = TankMonitor(served(settings_of(), gauges), pumps=PUMPS, ledger=books.ledger,
                        hub=books.hub, clock=clock, zone=SHANGHAI)
    await again.start()
    try:
        await again.poll("console")
        await again.poll("console")
        assert [(e["kind"], e["status"]) for e in books.events("tank.alert")] == [
            ("gauge_offline", "raised")]
        assert [a["kind"] for a in (await tank(again, 1))["alerts"]] == ["gauge_offline"]
        await gauges.start("console")
        await again.poll("console")
    finally:
        again.close()
    assert [(e["kind"], e["status"]) for e in books.events("tank.alert")] == [
        ("gauge_offline", "raised"), ("gauge_offline", "cleared")]
    assert (await tank(again, 1))["alerts"] == []


async def test_sales_count_against_their_tank_from_the_start(monitor: TankMonitor,
                                                             clock: Clock) -> None:
    monitor.observe(sale_message(3, "40.00"))  # nozzle 3 sells 92 from tank 1
    monitor.observe(sale_message(2, "25.50"))  # nozzle 2: 95, tank 2
    monitor.observe(sale_message(4, "60.00"))  # diesel: no tank here
    # Recovered after a restart: it ended before the monitor started, so the first reading
    # already shows it gone.
    monitor.observe(sale_message(1, "80.00", ended_at="2026-11-22T08:30:00+08:00"))
    monitor.observe({"type": "sale.completed", "data": {"nozzle": 1, "volume": "x"}})
    assert (monitor.sold(1), monitor.sold(2)) == (Decimal(40), Decimal("25.50"))
