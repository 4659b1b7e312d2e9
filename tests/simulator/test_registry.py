"""Every protocol's simulator from the registry, driven by that protocol's real driver through
the configuration the simulated line asks for (parsed by the station's own parser), and
customers who know only the neutral customer control."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import pytest

from domain.fuelling import (
    FuellingLine,
    FuellingPointError,
    NozzleUp,
    PointEvent,
    PointOnline,
)
from domain.model import Preset
from drivers import registry as drivers
from edge.config.loader import parse_config
from edge.demo_layout import toml_table
from simulator.cli import main as simulate
from simulator.lines.base import SimulatedLine
from simulator.records import SimulationError
from simulator.registry import SIMULATIONS, SimNozzle, SimPump, simulation
from simulator.traffic import CustomerTraffic, TrafficSettings
from tests.helpers import wait_until

FLOW = Decimal("600")
#: The second pump runs another profile of the protocol.
OTHER = {"dart": "legacy", "ifsf": "dit", "gilbarco": "no-config-answer"}


def _pumps(protocol: str) -> list[SimPump]:
    return [
        SimPump(1, (SimNozzle(1, "92", Decimal("7.50")), SimNozzle(2, "95", Decimal("8.02")))),
        SimPump(2, (SimNozzle(1, "92", Decimal("7.50"), (Decimal("100.00"), Decimal("750.00"))),
                    SimNozzle(2, "0", Decimal("7.16"))), OTHER[protocol]),
    ]


def _config(protocol: str, line: SimulatedLine) -> str:
    parts = ['[station]\nid = "XJ-SIM-0001"\nname = "测试站"\ntimezone = "Asia/Shanghai"',
             '[storage]\npath = "/tmp/unused.db"',
             '[controller]\nmax_flow_litres_per_minute = "1000"']
    for code, price in (("92", "7.50"), ("95", "8.02"), ("0", "7.16")):
        parts.append(toml_table("grades", {"code": code, "name": f"{code}号", "price": price}))
    parts.append(toml_table("lines", {"id": "l1", "protocol": protocol, **line.line_keys()}))
    for pump in line.pumps:
        parts.append(toml_table("pumps", {
            "number": pump, "line": "l1", **line.pump_keys(pump),
            "nozzles": [{"number": 10 * pump + n, "logical": n, "grade": g}
                        for n, g in zip((1, 2), ("92", "95" if pump == 1 else "0"),
                                        strict=True)]}))
    return "\n\n".join(parts) + "\n"


@asynccontextmanager
async def _driven(protocol: str) -> AsyncIterator[tuple[SimulatedLine, FuellingLine,
                                                        list[PointEvent]]]:
    async with simulation(protocol).run(_pumps(protocol), flow_lpm=FLOW) as line:
        config = parse_config(_config(protocol, line))
        [line_config] = config.lines
        fuelling = drivers.driver(protocol).open_line(line_config, config.pumps_on("l1"))
        events: list[PointEvent] = []
        async with fuelling, asyncio.TaskGroup() as group:
            async def record() -> None:
                async for event in fuelling.events():
                    events.append(event)

            reader = group.create_task(record())
            try:
                for pump in (1, 2):
                    await wait_until(lambda p=pump: any(  # type: ignore[misc]
                        isinstance(e, PointOnline) and e.pump == p for e in events),
                        timeout=20, what=f"pump {pump} online")
                    await fuelling.points[pump].set_prices({1: Decimal("7.50"),
                                                            2: Decimal("8.02" if pump == 1
                                                                       else "7.16")})
                yield line, fuelling, events
            finally:
                reader.cancel()


@pytest.mark.parametrize("protocol", list(SIMULATIONS))
async def test_a_sale_through_the_customer_control(protocol: str) -> None:
    async with _driven(protocol) as (line, fuelling, _):
        assert list(line.pumps) == [1, 2]
        assert list(line.nozzles(2)) == [1, 2]
        start = line.meter(2, 1)
        assert start == Decimal("100.00")  # the meter starts where it was told
        point = fuelling.points[2]
        assert line.nozzle_out(2) is None and line.dispensing(2) is None
        await point.authorize(frozenset({1}), Preset("volume", Decimal("1.00")))
        line.lift(2, 1)
        assert line.nozzle_out(2) == 1
        with pytest.raises(SimulationError):
            line.lift(2, 2)  # one customer, one nozzle
        await wait_until(lambda: line.fills(2), timeout=20, what="the fill")
        assert line.dispensing(2) is None  # the preset ended it
        line.hang(2, 1)
        [fill] = line.fills(2)
        assert (fill.pump, fill.logical, fill.volume, fill.amount) == (
            2, 1, Decimal("1.00"), Decimal("7.50"))
        assert line.meter(2, 1) == start + fill.volume
        assert line.fills(1) == []
        assert line.summary() and line.decimals(1).volume == 2


@pytest.mark.parametrize("protocol", list(SIMULATIONS))
async def test_customers_fill_on_every_pump_of_any_protocol(protocol: str) -> None:
    settings = TrafficSettings(mean_interval=0.5, patience=10.0, min_litres=Decimal("0.5"),
                               max_litres=Decimal("1.0"), min_leave=0.1, max_leave=0.2)
    async with _driven(protocol) as (line, fuelling, events):
        customers = CustomerTraffic(line, seed=3, settings=settings)

        async def attendant() -> None:
            """Releases each lift once, full, like a pump in auto mode."""
            done = len(events)
            while True:
                await asyncio.sleep(0.05)
                lifted = [e for e in events[done:] if isinstance(e, NozzleUp)]
                done = len(events)
                for event in lifted:
                    with contextlib.suppress(FuellingPointError):  # the customer left already
                        await fuelling.points[event.pump].authorize(
                            frozenset({event.logical}), None)

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(customers.run()), group.create_task(attendant())]
            try:
                await wait_until(lambda: line.fills(1) and line.fills(2), timeout=60,
                                 what="a customer served at each pump")
            finally:
                for task in tasks:
                    task.cancel()
        assert customers.visits >= 2
        for pump in (1, 2):
            for fill in line.fills(pump):
                assert Decimal("0.5") <= fill.volume


def test_simulate_picks_the_protocol_from_the_registry(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert simulate(["--protocol", "tokheim"]) == 2
    assert "dart, ifsf, gilbarco" in capsys.readouterr().err
    for protocol in SIMULATIONS:
        assert simulate(["--protocol", protocol, "--help"]) == 0
        assert "--protocol" in capsys.readouterr().out


def test_profiles_are_named() -> None:
    assert {"rev211", "legacy", "milli", "bare"} <= set(simulation("dart").profiles())
    assert set(simulation("ifsf").profiles()) == {"tqc", "dit"}
    assert "no-config-answer" in simulation("gilbarco").profiles()
