"""The Gilbarco fuelling point (the neutral interface) against the simulator, without a station."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from domain.equipment import LineConfig, NozzleConfig, PumpConfig
from domain.fuelling import (
    AlarmKind,
    Decimals,
    FillingEnded,
    InvalidValue,
    NotSupported,
    NozzleDown,
    NozzleUp,
    PointAlarm,
    PointAlarmCleared,
    PointEvent,
    PointOffline,
    PointOnline,
    PointRefused,
    PointState,
    PointUnreachable,
    RunningFigures,
    StateChanged,
)
from domain.model import Preset
from drivers.gilbarco import point as point_module
from drivers.gilbarco.config import GilbarcoLineSettings, GilbarcoPumpSettings, Parity
from drivers.gilbarco.driver import DRIVER, GilbarcoFuellingLine
from drivers.gilbarco.point import GilbarcoFuellingPoint
from simulator.gilbarco import GilbarcoSimulator, run_gilbarco_simulator
from simulator.metering import Decimals as SimDecimals
from tests.helpers import wait_until

from .station import sim_pumps


def status_of(sim: GilbarcoSimulator, pump: int) -> str:
    sim.tick()
    return sim.pump(pump).status.name


@dataclass
class Rig:
    sim: GilbarcoSimulator
    line: GilbarcoFuellingLine
    events: list[PointEvent] = field(default_factory=list)

    def point(self, number: int) -> GilbarcoFuellingPoint:
        point = self.line.points[number]
        assert isinstance(point, GilbarcoFuellingPoint)
        return point

    def of(self, pump: int, kind: type[PointEvent]) -> list[PointEvent]:
        return [e for e in self.events if e.pump == pump and isinstance(e, kind)]

    async def until(self, predicate: Callable[[], object], what: str) -> None:
        await wait_until(predicate, timeout=15, interval=0.02, what=what)


@asynccontextmanager
async def rig(*, echo: bool = False, **pump_settings: Any) -> AsyncIterator[Rig]:
    async with run_gilbarco_simulator(sim_pumps(**pump_settings), echo=echo) as sim:
        settings = GilbarcoLineSettings(port=sim.url, parity=Parity.NONE, echo=echo)
        line = LineConfig("g1", "gilbarco", settings)
        pumps = [PumpConfig(1, "g1", (NozzleConfig(1, 1, "92"), NozzleConfig(2, 2, "95")),
                            settings=GilbarcoPumpSettings(1)),
                 PumpConfig(2, "g1", (NozzleConfig(3, 1, "92"),),
                            settings=GilbarcoPumpSettings(16))]
        async with DRIVER.open_line(line, pumps) as fuelling_line:
            found = Rig(sim, fuelling_line)

            async def collect() -> None:
                async for event in fuelling_line.events():
                    found.events.append(event)

            task = asyncio.create_task(collect())
            try:
                await found.until(lambda: found.point(1).online and found.point(2).online,
                                  "both points online")
                yield found
            finally:
                task.cancel()


async def test_online_with_identity_capabilities_and_state() -> None:
    async with rig() as r:
        (online,) = r.of(1, PointOnline)
        assert isinstance(online, PointOnline)
        caps = online.capabilities
        assert caps.decimals == Decimals(2, 2, 2)  # the pump told its configuration
        assert caps.price_readback and not caps.suspend and not caps.sale_buffer
        assert online.identity.protocol == "gilbarco" and online.identity.address == "pump 1"
        assert r.point(1).state is PointState.IDLE
        assert r.point(2).detail()["address"] == 16
        assert await r.point(1).read_sales() == ()
        assert await r.point(1).read_pump_totals() is None
        for operation in (r.point(1).suspend, r.point(1).resume, r.point(1).close,
                          r.point(1).open):
            with pytest.raises(NotSupported):
                await operation()


async def test_no_configuration_answer_leaves_decimals_to_the_config() -> None:
    async with rig(answers_config=False) as r:
        (online,) = r.of(1, PointOnline)
        assert isinstance(online, PointOnline) and online.capabilities.decimals is None
        assert r.point(1).detail()["configuration"] == "not answered"


async def test_the_nozzle_goes_up_before_the_calling_state_then_a_sale() -> None:
    async with rig(flow_lpm=Decimal(60)) as r:
        p = r.point(1)
        r.sim.lift(1, 2)
        calling = StateChanged(1, PointState.CALLING, "calling")
        await r.until(lambda: calling in r.events, "calling")
        up = r.of(1, NozzleUp)
        assert up == [NozzleUp(1, 2, Decimal("8.02"))]
        ordered = [e for e in r.events if e.pump == 1 and isinstance(e, NozzleUp | StateChanged)]
        assert ordered[-2:] == [up[0], calling]
        await p.authorize(frozenset({2}), Preset("amount", Decimal("20.00")))
        await r.until(lambda: r.of(1, FillingEnded), "the end of the filling")
        assert r.of(1, FillingEnded) == [FillingEnded(1, 2)]
        running = r.of(1, RunningFigures)
        assert running and all(isinstance(f, RunningFigures) and f.logical == 2
                               for f in running)
        (sale,) = await p.read_sales()
        fill = r.sim.fills()[0]
        assert (sale.logical, sale.amount, sale.volume, sale.price) == (
            2, fill.amount_decimal, fill.volume_decimal, Decimal("8.02"))
        totals = await p.read_totals(2)
        assert totals.volume == fill.volume_decimal and totals.amount == Decimal("20.00")
        r.sim.hang(1, 2)
        await r.until(lambda: r.of(1, NozzleDown), "nozzle down")
        assert (await p.read_sales())[0].amount == Decimal("20.00")  # until the next sale


async def test_authorize_waits_out_the_end_of_sale_then_refuses(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(point_module, "END_OF_SALE_WAIT", 0.3)
    async with rig() as r:
        p = r.point(1)
        r.sim.lift(1, 1)
        await p.authorize(frozenset({1}), Preset("volume", Decimal("1.00")))
        await r.until(lambda: r.of(1, FillingEnded), "the end of the filling")
        await p.read_sales()
        with pytest.raises(PointRefused) as info:  # the nozzle is still up: A until hung up
            await p.authorize(frozenset({1}), None)
        assert info.value.code == "end_of_sale"
        r.sim.hang(1, 1)
        await p.authorize(frozenset({1}), Preset("amount", Decimal("1.00")))
        assert status_of(r.sim, 1) == "AUTHORIZED"


async def test_one_nozzle_of_several_is_named_in_the_preset() -> None:
    async with rig() as r:
        await r.point(1).authorize(frozenset({2}), None)
        assert r.sim.pump(1).preset == ("money", 999999, 2)  # the largest, for hose 2 only
        await r.point(1).cancel()
        await r.until(lambda: status_of(r.sim, 1) == "IDLE", "the authorization gone")
        await r.point(2).authorize(frozenset({1}), None)  # the only nozzle: no block
        assert r.sim.pump(16).preset is None


async def test_invalid_presets_send_nothing() -> None:
    async with rig() as r:
        for preset in (Preset("amount", Decimal("1.005")), Preset("amount", Decimal("10000"))):
            with pytest.raises(InvalidValue):
                await r.point(1).authorize(frozenset({1}), preset)
        assert status_of(r.sim, 1) == "IDLE" and r.sim.pump(1).preset is None


async def test_stop_all_is_one_byte_for_the_whole_line() -> None:
    async with rig(flow_lpm=Decimal(6)) as r:
        for pump, address in ((1, 1), (2, 16)):
            r.sim.lift(address, 1)
            await r.point(pump).authorize(frozenset({1}), None)
        await r.until(lambda: all(r.point(n).state is PointState.FUELLING for n in (1, 2)),
                      "both fuelling")
        await r.line.stop_all()
        await r.until(lambda: all(r.point(n).state is PointState.STOPPED for n in (1, 2)),
                      "both stopped")


async def test_prices_wait_for_idle_and_are_read_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(point_module, "IDLE_WAIT", 0.3)
    async with rig() as r:
        p = r.point(1)
        await p.set_prices({1: Decimal("7.50"), 2: Decimal("8.02")})  # already shown: no-op
        r.sim.lift(1, 1)
        await r.until(lambda: p.state is PointState.CALLING, "calling")
        with pytest.raises(PointUnreachable):
            await p.set_prices({1: Decimal("7.66")})
        r.sim.hang(1, 1)
        await p.set_prices({1: Decimal("7.66"), 2: Decimal("8.10")})
        assert r.sim.pump(1).prices == {1: 766, 2: 810}
        with pytest.raises(InvalidValue):
            await p.set_prices({1: Decimal("100.00")})  # four price digits
        with pytest.raises(PointRefused):
            await p.set_prices({3: Decimal("7.00")})


async def test_a_data_error_is_an_alarm_until_the_totals_are_read() -> None:
    async with rig() as r:
        r.sim.data_error(1)
        await r.until(lambda: r.of(1, PointAlarmCleared), "the alarm cleared")
        (alarm,) = r.of(1, PointAlarm)
        assert isinstance(alarm, PointAlarm) and (alarm.kind, alarm.code) == (AlarmKind.DATA, "0")
        assert r.of(1, PointAlarmCleared) == [PointAlarmCleared(1, AlarmKind.DATA)]
        assert not r.sim.pump(1).data_error


async def test_offline_and_back() -> None:
    async with rig() as r:
        r.sim.set_fault(16, silent=True)
        await r.until(lambda: r.of(2, PointOffline), "pump 2 offline")
        with pytest.raises(PointUnreachable):
            await r.point(2).authorize(frozenset({1}), None)
        r.sim.clear_faults(16)
        await r.until(lambda: len(r.of(2, PointOnline)) == 2, "pump 2 online again")
        assert r.point(1).online


async def test_a_pump_in_the_middle_of_a_filling_at_start_up_is_followed() -> None:
    async with run_gilbarco_simulator(sim_pumps(flow_lpm=Decimal(6),
                                                decimals=SimDecimals(2, 2, 2))) as sim:
        sim.lift(1, 2)
        sim.pump(1).authorize(sim.clock())
        await wait_until(lambda: status_of(sim, 1) == "FUELLING", what="fuelling")
        settings = GilbarcoLineSettings(port=sim.url, parity=Parity.NONE)
        pumps = [PumpConfig(1, "g1", (NozzleConfig(1, 1, "92"), NozzleConfig(2, 2, "95")),
                            settings=GilbarcoPumpSettings(1))]
        events: list[PointEvent] = []
        async with DRIVER.open_line(LineConfig("g1", "gilbarco", settings), pumps) as line:
            async def collect() -> None:
                async for event in line.events():
                    events.append(event)

            task = asyncio.create_task(collect())
            await wait_until(lambda: line.points[1].state is PointState.FUELLING,
                             what="found fuelling")
            assert NozzleUp(1, 2, Decimal("8.02")) in events
            sim.hang(1, 2)
            await wait_until(lambda: any(isinstance(e, FillingEnded) for e in events),
                             what="the end")
            assert FillingEnded(1, 2) in events
            task.cancel()
