"""The IFSF driver on the neutral fuelling point, against the simulated dispensers over real
sockets: a TQC node with two fuelling points (pumps 1 and 2) and a DIT dispenser (pump 3,
nodes 11 and 12)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from domain.fuelling import (
    AlarmKind,
    FillingEnded,
    NozzleUp,
    PointAlarm,
    PointEvent,
    PointOffline,
    PointOnline,
    PointRefused,
    PointState,
    PumpSale,
    RunningFigures,
    StateChanged,
)
from domain.model import Preset
from drivers.ifsf import DataItem, FpId, FuellingPointAddress, Unsolicited
from drivers.ifsf.driver import DRIVER, IfsfFuellingLine
from drivers.ifsf.ids import FpState
from edge.config.loader import parse_config
from simulator.ifsf import IfsfSimulator, SimulatedNode, run_ifsf_simulator

from .conftest import wait_for
from .station import ifsf_station_toml

PRICES = {92: Decimal("7.50"), 95: Decimal("8.00")}


@dataclass
class Station:
    line: IfsfFuellingLine
    sim: IfsfSimulator
    events: list[PointEvent] = field(default_factory=list)

    def of(self, pump: int, kind: type) -> list[PointEvent]:
        return [e for e in self.events if e.pump == pump and isinstance(e, kind)]

    def states(self, pump: int) -> list[PointState]:
        return [e.state for e in self.of(pump, StateChanged)]  # type: ignore[attr-defined]


def nodes() -> list[SimulatedNode]:
    options = {"ramp_seconds": Decimal(0), "flow_lpm": Decimal(120)}
    return [
        SimulatedNode(1, {1: {1: 92, 2: 95}, 2: {1: 92}}, PRICES, **options),  # type: ignore[arg-type]
        SimulatedNode(11, {1: {1: 92}}, PRICES, **options),  # type: ignore[arg-type]
        SimulatedNode(12, {1: {1: 95}}, PRICES, **options),  # type: ignore[arg-type]
    ]


@pytest.fixture
async def station(udp_port: int) -> AsyncIterator[Station]:
    config = parse_config(ifsf_station_toml(udp_port=udp_port, interval=1))
    [line_cfg] = config.lines
    async with run_ifsf_simulator(nodes(), udp_port=udp_port, heartbeat_interval=1.0,
                                  heartbeat_destination="127.255.255.255") as sim:
        line = DRIVER.open_line(line_cfg, config.pumps_on("lan1"))
        async with line, asyncio.TaskGroup() as group:
            station = Station(line, sim)

            async def record() -> None:
                async for event in line.events():
                    station.events.append(event)

            task = group.create_task(record())
            for pump in (1, 2, 3):
                await wait_for(lambda p=pump: station.of(p, PointOnline),  # type: ignore[misc]
                               what=f"pump {pump} online")
            try:
                yield station
            finally:
                task.cancel()


async def test_online_opened_and_idle(station: Station) -> None:
    for pump in (1, 2, 3):
        point = station.line.points[pump]
        assert point.online and point.state is PointState.IDLE
    online = station.of(3, PointOnline)[0]
    assert online.identity.address == "1.11+1.12"  # type: ignore[attr-defined]
    assert online.capabilities.sale_buffer  # type: ignore[attr-defined]
    assert not station.sim.node(1).configuration_needed  # every fuelling point was opened


async def test_a_sale_the_ifsf_way(station: Station) -> None:
    point = station.line.points[1]
    await point.authorize(frozenset({1}), Preset("amount", Decimal("15.00")))
    assert point.state is PointState.AUTHORIZED
    station.sim.lift(1, 1, 1)
    await wait_for(lambda: station.of(1, FillingEnded), what="the end of the filling")
    assert station.of(1, NozzleUp)[0] == NozzleUp(1, 1)
    assert PointState.FUELLING in station.states(1)
    assert station.of(1, RunningFigures)
    assert station.of(1, FillingEnded) == [FillingEnded(1, 1)]
    [sale] = await point.read_sales()
    assert (sale.logical, sale.amount, sale.volume, sale.price) == (
        1, Decimal("15.00"), Decimal("2.00"), Decimal("7.50"))
    assert sale.key == "1.1/1/0001/15.00/2.00" and sale.authorized
    totals = await point.read_totals(1)
    assert (totals.volume, totals.amount) == (Decimal("2.00"), Decimal("15.00"))
    await point.clear_sale(sale)
    assert await point.read_sales() == []
    await point.clear_sale(sale)  # cleared already: no harm


async def test_full_is_the_largest_preset_and_stop(station: Station) -> None:
    point = station.line.points[2]
    await point.authorize(frozenset({1}), None)
    fp = station.sim.fp(1, 2)
    assert fp.state is FpState.AUTHORISED and fp.preset_amount == 999900
    await point.cancel()
    assert fp.state is FpState.IDLE
    await point.stop()  # nothing to stop: no failure


async def test_suspend_resume_and_terminate(station: Station) -> None:
    point = station.line.points[1]
    await point.authorize(frozenset({2}), Preset("volume", Decimal("50")))
    station.sim.lift(1, 1, 2)
    await wait_for(lambda: point.state is PointState.FUELLING, what="fuelling")
    await point.suspend()
    await wait_for(lambda: point.state is PointState.SUSPENDED, what="suspended")
    with pytest.raises(PointRefused):
        await point.cancel()
    await point.resume()
    await wait_for(lambda: point.state is PointState.FUELLING, what="fuelling again")
    await point.stop()
    await wait_for(lambda: station.of(1, FillingEnded), what="the end")
    [sale] = await point.read_sales()
    assert sale.logical == 2 and Decimal(0) < sale.volume < Decimal(50)


async def test_stand_alone_sale(station: Station) -> None:
    station.sim.stand_alone(1, True, fp=2)
    station.sim.lift(1, 2, 1)
    await wait_for(lambda: station.sim.fp(1, 2).current()[0] > 0, what="fuel")
    station.sim.hang(1, 2, 1)
    await wait_for(lambda: station.of(2, PumpSale), what="the stand-alone sale")
    sale = station.of(2, PumpSale)[0].sale  # type: ignore[attr-defined]
    assert not sale.authorized and sale.details["released_by"] == "nobody"
    assert sale.key.startswith("1.1/2/0001/")


async def test_prices_and_a_refusal_with_0x37(station: Station) -> None:
    one, two = station.line.points[1], station.line.points[2]
    await one.set_prices({1: Decimal("7.50"), 2: Decimal("8.00")})  # shown already
    await one.set_prices({1: Decimal("7.62"), 2: Decimal("8.00")})
    assert station.sim.node(1).prices[92] == 762
    await two.set_prices({1: Decimal("7.62")})
    station.sim.set_fault(1, price_result={2: 0x37})
    with pytest.raises(PointRefused) as refused:
        await two.set_prices({1: Decimal("7.70")})
    assert refused.value.code == "0x37"
    await wait_for(lambda: station.of(2, PointAlarm), what="the alarm")
    alarm = station.of(2, PointAlarm)[0]
    assert (alarm.kind, alarm.code) == (AlarmKind.PRICE, "0x37")  # type: ignore[attr-defined]
    await wait_for(lambda: two.state is PointState.INOPERATIVE, what="inoperative")
    with pytest.raises(PointRefused):
        await two.set_prices({1: Decimal("7.70")})  # until a person opens it
    with pytest.raises(PointRefused):
        await two.authorize(frozenset({1}), Preset("amount", Decimal(10)))
    station.sim.clear_faults(1)
    await two.open()
    await wait_for(lambda: two.state is PointState.IDLE, what="idle again")
    await two.set_prices({1: Decimal("7.70")})


async def test_dit_pump_releases_its_nodes_and_withdraws_the_others(station: Station) -> None:
    point = station.line.points[3]
    await point.authorize(frozenset({1, 2}), Preset("amount", Decimal("8.00")))
    assert station.sim.fp(11, 1).state is FpState.AUTHORISED
    assert station.sim.fp(12, 1).state is FpState.AUTHORISED
    station.sim.lift(12, 1, 1)
    await wait_for(lambda: station.sim.fp(11, 1).state is FpState.IDLE, what="withdrawn")
    await wait_for(lambda: station.of(3, FillingEnded), what="the end")
    assert station.of(3, FillingEnded) == [FillingEnded(3, 2)]
    [sale] = await point.read_sales()
    assert sale.logical == 2 and sale.key == "1.12/1/0001/8.00/1.00"
    assert (await point.read_totals(2)).volume == Decimal("1.00")


async def test_a_node_restart_and_offline(station: Station) -> None:
    station.sim.power_cycle(1)
    await wait_for(lambda: station.of(1, PointOffline), what="offline")
    await wait_for(lambda: len(station.of(1, PointOnline)) == 2, what="online again")
    assert station.sim.fp(1, 1).state is FpState.IDLE  # opened again
    station.sim.set_fault(11, heartbeat=False)
    await wait_for(lambda: station.of(3, PointOffline), timeout=15, what="dit offline")
    assert station.line.points[1].online


async def test_messages_that_make_no_sense_leave_the_pumps_selling(station: Station) -> None:
    node = station.sim.node(1)
    assert node.controller is not None
    bad_state = Unsolicited(node.controller, node.lna, 0, FuellingPointAddress(1), (
        DataItem(FpId.FP_STATUS_MESSAGE), DataItem(FpId.FP_STATE, b"\x0c")))
    bad_nozzle = Unsolicited(node.controller, node.lna, 0, FuellingPointAddress(1), (
        DataItem(FpId.RUNNING_TRANSACTION_MESSAGE), DataItem(FpId.CURRENT_LOG_NOZ, b"\x09"),
        DataItem(FpId.CURRENT_AMOUNT, b"\x06\x00\x00\x00\x01"),
        DataItem(FpId.CURRENT_VOLUME, b"\x06\x00\x00\x00\x01")))
    unknown_id = Unsolicited(node.controller, node.lna, 0, FuellingPointAddress(1), (
        DataItem(FpId.FP_STATUS_MESSAGE), DataItem(0xEE, b"\x01\x02"),
        DataItem(FpId.FP_STATE, bytes((FpState.IDLE,)))))
    node.outbox.extend([bad_state, bad_nozzle, unknown_id])
    station.sim.server.poke(node.lna)
    point = station.line.points[1]
    await point.authorize(frozenset({1}), Preset("amount", Decimal("7.50")))
    station.sim.lift(1, 1, 1)
    await wait_for(lambda: station.of(1, FillingEnded), what="the end of the filling")
    assert [s.volume for s in await point.read_sales()] == [Decimal("1.00")]
