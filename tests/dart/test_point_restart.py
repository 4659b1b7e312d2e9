"""A DART pump that restarted is told as restarted, whatever its TX# said.

The line takes a pump's TX# 0 for a restart, except right after F, where some pumps wrap to 0
(drivers/dart/bus.py). A pump that really lost power just after sending TX# F is then known only
by what it says next: "not programmed" (its prices are gone). Found by the power-cut scenario
(tests/scenarios): mid-fill, the fuelling point said neither that the filling ended nor that the
pump restarted, so nothing would ever read what it measured.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

from domain.equipment import LineConfig, NozzleConfig, PumpConfig
from domain.fuelling import PointEvent, PointOnline, PointRestarted, PointState, StateChanged
from drivers.dart.config import DartLineSettings, DartPumpSettings
from drivers.dart.driver import DRIVER
from drivers.dart.events import PumpOnline, PumpReplied, PumpRestarted
from drivers.dart.point import DartFuellingPoint
from drivers.dart.replies import DC1, PumpStatus
from drivers.dart.transactions import CD1, Command, PumpCommand
from simulator.control import run_simulator
from tests.helpers import wait_until

ADDRESS = 0x50


class Line:
    """Answers the status request at once; every optional question goes unanswered."""

    def __init__(self) -> None:
        self.point: DartFuellingPoint | None = None
        self.status = PumpStatus.FILLING_COMPLETED

    async def command(self, address: int, commands: Sequence[Command],
                      timeout: float = 1.0) -> None:
        assert self.point is not None
        if any(isinstance(c, CD1) and c.command is PumpCommand.RETURN_STATUS for c in commands):
            asyncio.get_running_loop().call_soon(self.reply, DC1(self.status))

    def reply(self, *replies: DC1) -> None:
        assert self.point is not None
        self.point.bus_event(PumpReplied(ADDRESS, tuple(replies)))


async def _online() -> tuple[DartFuellingPoint, Line, list[PointEvent]]:
    line = Line()
    events: list[PointEvent] = []
    config = PumpConfig(1, "line1", (NozzleConfig(1, 1, "92"),),
                        settings=DartPumpSettings(address=ADDRESS))
    point = DartFuellingPoint(config, line, events.append, probe_timeout=0.01)
    line.point = point
    point.bus_event(PumpOnline(ADDRESS))
    await point.probe()
    assert any(isinstance(e, PointOnline) for e in events)
    return point, line, events


async def test_not_programmed_after_programmed_is_a_restart() -> None:
    point, line, events = await _online()
    line.reply(DC1(PumpStatus.AUTHORIZED))
    line.reply(DC1(PumpStatus.FILLING))
    mark = len(events)
    line.reply(DC1(PumpStatus.NOT_PROGRAMMED))  # no TX# 0 came first
    assert [type(e) for e in events[mark:]] == [PointRestarted, StateChanged]
    assert point.state is PointState.INOPERATIVE
    assert point.restarts == 1  # the line brings it up again, as after TX# 0


async def test_a_restart_told_by_its_tx_number_is_told_once() -> None:
    _, line, events = await _online()
    line.reply(DC1(PumpStatus.FILLING))
    mark = len(events)
    assert line.point is not None
    line.point.bus_event(PumpRestarted(ADDRESS))
    line.reply(DC1(PumpStatus.NOT_PROGRAMMED))
    assert [e for e in events[mark:] if isinstance(e, PointRestarted)] == [PointRestarted(1)]


async def test_a_pump_that_starts_not_programmed_did_not_restart() -> None:
    line = Line()
    line.status = PumpStatus.NOT_PROGRAMMED
    events: list[PointEvent] = []
    config = PumpConfig(1, "line1", (NozzleConfig(1, 1, "92"),),
                        settings=DartPumpSettings(address=ADDRESS))
    point = DartFuellingPoint(config, line, events.append, probe_timeout=0.01)
    line.point = point
    point.bus_event(PumpOnline(ADDRESS))
    await point.probe()
    line.reply(DC1(PumpStatus.NOT_PROGRAMMED))
    assert not any(isinstance(e, PointRestarted) for e in events)


async def test_the_line_brings_a_pump_that_lost_its_prices_up_again() -> None:
    """The simulated pump restarts without its link layer starting over (no TX# 0): the
    fuelling point says it restarted and is announced online again, as after TX# 0."""
    async with run_simulator(1, nozzles_per_pump=1) as sim:
        config = PumpConfig(1, "line1", (NozzleConfig(1, 1, "92"),),
                            settings=DartPumpSettings(address=ADDRESS))
        line = DRIVER.open_line(LineConfig("line1", "dart", DartLineSettings(
            port=sim.url, reply_timeout=timedelta(milliseconds=100))), [config])
        events: list[PointEvent] = []
        async with line, asyncio.TaskGroup() as group:
            async def record() -> None:
                async for event in line.events():
                    events.append(event)

            reader = group.create_task(record())
            try:
                await wait_until(lambda: any(isinstance(e, PointOnline) for e in events),
                                 what="online")
                await line.points[1].set_prices({1: Decimal("7.50")})
                mark = len(events)
                sim.pump(ADDRESS).power_cycle(sim.clock())  # the model only: no TX# 0
                await wait_until(lambda: any(isinstance(e, PointOnline)
                                             for e in events[mark:]), what="online again")
                assert PointRestarted(1) in events[mark:]
                await line.points[1].set_prices({1: Decimal("7.50")})
                assert line.points[1].state is PointState.IDLE
            finally:
                reader.cancel()
