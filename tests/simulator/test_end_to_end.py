"""The station's own DART line shell (a real socket, its I/O thread) against a served simulator."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from drivers.dart.events import PumpReplied
from drivers.dart.line import DartLine
from drivers.dart.transactions import (
    CD1,
    CD2,
    CD4,
    CD5,
    DC1,
    DC2,
    PumpCommand,
    PumpStatus,
    Reply,
    UnknownTransaction,
)
from simulator.control import run_simulator
from simulator.pump import SimulatedPump

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")


def fast_pumps() -> list[SimulatedPump]:
    # 1200 L/min with a short ramp, so that a 13.33 L sale takes well under a second.
    return [
        SimulatedPump(a, {1: 92, 2: 95}, flow_lpm=Decimal(1200), ramp_seconds=Decimal("0.1"))
        for a in (0x50, 0x51)
    ]


async def until(
    line: DartLine, address: int, wanted: Reply, seen: list[Reply | UnknownTransaction]
) -> None:
    async with asyncio.timeout(5):
        async for event in line.events():
            if isinstance(event, PumpReplied) and event.address == address:
                seen.extend(event.replies)
                if wanted in event.replies:
                    return


async def test_a_sale_over_tcp_with_the_station_line() -> None:
    async with (
        run_simulator(fast_pumps()) as sim,
        DartLine(sim.url, [0x50, 0x51], poll_interval=0.01) as line,
    ):
        seen: list[Reply | UnknownTransaction] = []
        await line.command(0x50, [CD5((750, 800))])
        await until(line, 0x50, DC1(PumpStatus.FILLING_COMPLETED), seen)
        await line.command(0x50, [CD1(PumpCommand.RESET)])
        await line.command(0x50, [CD2((1,)), CD4(10000), CD1(PumpCommand.AUTHORIZE)])
        await until(line, 0x50, DC1(PumpStatus.AUTHORIZED), seen)
        sim.lift(0x50, 1)
        await until(line, 0x50, DC1(PumpStatus.MAX_REACHED), seen)
        assert [r for r in seen if isinstance(r, DC2)][-1] == DC2(1333, 10000)
        assert line.online == {0x50: True, 0x51: True}
    (fill,) = sim.fills()
    assert (fill.volume, fill.amount) == (1333, 10000)


async def test_line_faithful_pumps_answer_in_time() -> None:
    async with (
        run_simulator(fast_pumps(), line_faithful=True) as sim,
        DartLine(sim.url, [0x50, 0x51], poll_interval=0.01) as line,
    ):
        seen: list[Reply | UnknownTransaction] = []
        await line.command(0x51, [CD5((750, 800))])
        await until(line, 0x51, DC1(PumpStatus.FILLING_COMPLETED), seen)
        assert line.online == {0x50: True, 0x51: True}
        # Paced at 9600 baud, answers still start within the master's 25 ms: every command
        # gets its ACK. (A loaded test machine may oversleep now and then, so a few timeouts,
        # retried by the master, are tolerated.)
        for _ in range(20):
            await line.command(0x50, [CD1(PumpCommand.RETURN_STATUS)])
        stats = line.stats.bus
        assert stats.timeouts <= stats.exchanges // 4, stats
