"""The Gilbarco line shell against the simulated pumps over real transports (TCP and a pty)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from drivers.gilbarco import (
    Authorize,
    DigitsMode,
    GilbarcoCommandError,
    GilbarcoLine,
    NozzleReport,
    PresetBlock,
    PumpStatus,
    PumpTotals,
    ReadRunningMoney,
    ReadSpecialFunction,
    ReadTotals,
    ReadTransaction,
    RunningMoney,
    SendBlock,
    SpecialFunctionAnswer,
    Transaction,
)
from simulator.gilbarco import run_gilbarco_simulator
from tests.helpers import free_port, wait_until

FAST = {"flow_lpm": Decimal(600), "ramp_seconds": Decimal(0), "start_delay": 0.0}


def make_line(url: str, pumps: list[int], **options: Any) -> GilbarcoLine:
    options.setdefault("parity", "N")
    return GilbarcoLine(url, pumps, reconnect_delay=0.05, reconnect_delay_max=0.2, **options)


@pytest.mark.parametrize(("echo", "mode"), [(False, DigitsMode.STANDARD),
                                            (True, DigitsMode.STANDARD),
                                            (True, DigitsMode.EIGHT)])
async def test_a_whole_sale_over_tcp(echo: bool, mode: DigitsMode) -> None:
    eight = mode is DigitsMode.EIGHT
    async with (
        run_gilbarco_simulator(2, echo=echo, eight_digits=eight, **FAST) as sim,
        make_line(sim.url, [1, 2], echo=echo, mode=mode) as line,
    ):
        await wait_until(lambda: line.status(2) is PumpStatus.IDLE, what="pump 2 idle")
        sim.lift(2, 1)
        await wait_until(lambda: line.status(2) is PumpStatus.CALLING, what="calling")
        answer = await line.request(2, ReadSpecialFunction(10))
        assert isinstance(answer, SpecialFunctionAnswer)
        assert NozzleReport.from_answer(answer).hose == 1
        digits = 8 if eight else 6
        await line.request(2, SendBlock(PresetBlock("money", 1500, digits=digits)))
        assert await line.request(2, Authorize()) is None
        await wait_until(lambda: line.status(2) in (PumpStatus.FUELLING,
                                                    PumpStatus.END_OF_SALE_A), what="fuelling")
        running = await line.request(2, ReadRunningMoney())
        assert isinstance(running, RunningMoney) and running.money <= 1500
        await wait_until(lambda: line.status(2) is PumpStatus.END_OF_SALE_A, what="end of sale")
        tx = await line.request(2, ReadTransaction())
        assert isinstance(tx, Transaction) and (tx.pump, tx.hose, tx.money) == (2, 1, 1500)
        totals = await line.request(2, ReadTotals())
        assert isinstance(totals, PumpTotals)
        assert totals.hose(1) is not None and totals.hose(1).money == 1500  # type: ignore[union-attr]
        sim.hang(2, 1)
        await wait_until(lambda: line.status(2) is PumpStatus.IDLE, what="idle again")
        assert [(f.pump, f.amount) for f in sim.fills()] == [(2, 1500)]
        assert line.stats.bus.bad_answers == 0 and line.stats.bus.echo_errors == 0


async def test_a_silent_pump_goes_offline_and_comes_back() -> None:
    async with run_gilbarco_simulator(2) as sim, make_line(sim.url, [1, 2]) as line:
        await wait_until(lambda: line.online == {1: True, 2: True}, what="both online")
        sim.set_fault(2, silent=True)
        await wait_until(lambda: not line.online[2], what="pump 2 offline")
        with pytest.raises(GilbarcoCommandError) as info:
            await line.request(2, ReadTotals())
        assert info.value.reason == "offline"
        assert line.online[1]
        sim.clear_faults(2)
        await wait_until(lambda: line.online[2], what="pump 2 back")


async def test_bad_checksums_are_retried() -> None:
    async with run_gilbarco_simulator(1, seed=7) as sim, make_line(sim.url, [1]) as line:
        await wait_until(lambda: line.online[1], what="online")
        sim.set_fault(1, bad_checksum=0.3)
        for _ in range(10):
            assert isinstance(await line.request(1, ReadTransaction()), Transaction)
        assert line.stats.bus.checksum_errors > 0


async def test_a_data_error_is_cleared_by_reading_the_totals() -> None:
    async with run_gilbarco_simulator(1) as sim, make_line(sim.url, [1]) as line:
        await wait_until(lambda: line.status(1) is PumpStatus.IDLE, what="idle")
        sim.data_error(1)
        await wait_until(lambda: line.status(1) is PumpStatus.DATA_ERROR, what="data error")
        await line.request(1, ReadTotals())
        await wait_until(lambda: line.status(1) is PumpStatus.IDLE, what="idle again")


async def test_all_stop_stops_every_pump() -> None:
    async with (
        run_gilbarco_simulator(2, flow_lpm=Decimal(1)) as sim,
        make_line(sim.url, [1, 2]) as line,
    ):
        for pump in (1, 2):
            sim.lift(pump, 1)
            await line.request(pump, Authorize())
        await wait_until(lambda: all(line.status(p) is PumpStatus.FUELLING for p in (1, 2)),
                         what="both fuelling")
        await line.all_stop()
        await wait_until(lambda: all(line.status(p) is PumpStatus.STOPPED for p in (1, 2)),
                         what="both stopped")


async def test_the_line_comes_back_after_the_converter_restarts() -> None:
    port = free_port()
    async with make_line(f"socket://127.0.0.1:{port}", [1]) as line:
        async with run_gilbarco_simulator(1, port=port):
            await wait_until(lambda: line.online[1], what="online")
        await wait_until(lambda: not line.online[1], what="offline with the converter gone")
        async with run_gilbarco_simulator(1, port=port):
            await wait_until(lambda: line.online[1], what="online again")
        assert line.stats.port_failures >= 1


async def test_over_a_pty() -> None:
    async with run_gilbarco_simulator(1, pty=True) as sim, make_line(sim.url, [1]) as line:
        await wait_until(lambda: line.status(1) is PumpStatus.IDLE, what="idle over a pty")
        assert isinstance(await line.request(1, ReadTotals()), PumpTotals)


async def test_requests_on_a_line_that_is_not_running() -> None:
    line = make_line("socket://127.0.0.1:1", [1])
    with pytest.raises(GilbarcoCommandError):
        await line.request(1, ReadTotals())
    async with line:
        with pytest.raises(GilbarcoCommandError) as info:
            await asyncio.wait_for(line.request(1, ReadTotals(), timeout=5), 10)
        assert info.value.reason in ("offline", "line down", "timeout")


async def test_line_faithful_pacing_at_5787_baud_fits_the_answer_windows() -> None:
    async with (
        run_gilbarco_simulator(2, hoses_per_pump=4, echo=True, line_faithful=True) as sim,
        make_line(sim.url, [1, 2], echo=True) as line,
    ):
        await wait_until(lambda: line.online == {1: True, 2: True}, what="online")
        totals = await line.request(2, ReadTotals())  # 4 hoses: 124 words, 236 ms on the wire
        assert isinstance(totals, PumpTotals) and len(totals.hoses) == 4
        assert isinstance(await line.request(1, ReadTransaction()), Transaction)
        assert line.stats.bus.timeouts == 0 and line.stats.bus.echo_errors == 0


async def test_a_converter_that_echoes_on_a_line_set_without_echo_is_named(
        caplog: pytest.LogCaptureFixture) -> None:
    async with run_gilbarco_simulator(1, echo=True) as sim, make_line(sim.url, [1]) as line:
        await wait_until(lambda: line.online[1], what="online")
        assert isinstance(await line.request(1, ReadTotals()), PumpTotals)
        await wait_until(lambda: "set echo = true" in caplog.text, what="the hint")
