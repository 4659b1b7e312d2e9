"""The daemon killed with SIGKILL mid-fill: the sale is recovered exactly once from the pump."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from simulator.control import Simulator, run_simulator
from simulator.pump import SimulatedPump
from tests.e2e.conftest import sales, wait_pump_state, wait_sales, write_config
from tests.e2e.daemon import Daemon
from tests.helpers import free_port, wait_until

PUMP1 = 0x50


@pytest.fixture
async def slow_sim() -> AsyncIterator[Simulator]:
    # 120 L/min: a 100.00 preset takes about 7 s, time enough to kill the daemon mid-fill.
    pumps = [SimulatedPump(0x50, {1: 92, 2: 95}, flow_lpm=Decimal("120"),
                           ramp_seconds=Decimal("0.3")),
             SimulatedPump(0x51, {1: 92, 2: 1}, flow_lpm=Decimal("120"),
                           ramp_seconds=Decimal("0.3"))]
    async with run_simulator(pumps) as sim:
        yield sim


@pytest.fixture
async def daemon(slow_sim: Simulator, tmp_path: Path) -> AsyncIterator[Daemon]:
    assert slow_sim.url is not None
    port = free_port()
    proc = Daemon(write_config(tmp_path, slow_sim.url, api_port=port), port)
    await proc.start()
    try:
        yield proc
    finally:
        if proc.process is not None and proc.process.returncode is None:
            proc.process.terminate()
            await proc.wait()


def dispensed(sim: Simulator) -> Decimal:
    sim.tick()
    return Decimal(sim.pump(PUMP1).filling_info[0]) / 100


async def authorize_and_lift(daemon: Daemon, sim: Simulator) -> str:
    client = await daemon.client()
    await wait_pump_state(client, 1, "idle")
    r = await client.post("/api/v1/nozzles/1/authorize", json={"preset": {"amount": "100.00"}})
    assert r.status_code == 202, r.text
    sim.lift(PUMP1, 1)
    await wait_until(lambda: dispensed(sim) > Decimal("2"), timeout=10, what="2 L dispensed")
    await client.aclose()
    return str(r.json()["authorization_id"])


async def test_fill_finished_while_the_daemon_was_dead_is_recovered_once(
        slow_sim: Simulator, daemon: Daemon) -> None:
    auth_id = await authorize_and_lift(daemon, slow_sim)
    daemon.kill()
    assert await daemon.wait() == -signal.SIGKILL
    await wait_until(lambda: len(slow_sim.fills()) == 1, timeout=20, what="the fill to end")
    slow_sim.hang(PUMP1, 1)
    fill = slow_sim.fills()[0]

    await daemon.start()
    client = await daemon.client()
    (sale,) = await wait_sales(client, 1)
    assert sale["recovered"] is True
    assert Decimal(sale["volume"]) == fill.volume_decimal
    assert Decimal(sale["amount"]) == fill.amount_decimal == Decimal("100.00")
    assert sale["authorization_id"] == auth_id
    await wait_pump_state(client, 1, "idle")
    await client.aclose()

    # Killed again after the sale is durable: a restart finds nothing new to recover.
    daemon.kill()
    await daemon.wait()
    await daemon.start()
    client = await daemon.client()
    await wait_pump_state(client, 1, "idle")
    assert len(await sales(client)) == 1
    await client.aclose()


async def test_fill_still_flowing_at_restart_is_followed_to_its_end(
        slow_sim: Simulator, daemon: Daemon) -> None:
    await authorize_and_lift(daemon, slow_sim)
    daemon.kill()
    await daemon.wait()
    await daemon.start()  # the pump is still filling: the new daemon adopts it
    client = await daemon.client()
    await wait_until(lambda: len(slow_sim.fills()) == 1, timeout=20, what="the fill to end")
    slow_sim.hang(PUMP1, 1)
    (sale,) = await wait_sales(client, 1)
    fill = slow_sim.fills()[0]
    assert sale["recovered"] is True
    assert Decimal(sale["volume"]) == fill.volume_decimal
    assert Decimal(sale["amount"]) == fill.amount_decimal
    delta = Decimal(sale["totals"]["volume_after"]) - Decimal(sale["totals"]["volume_before"])
    assert delta == Decimal(sale["volume"])
    await client.aclose()


async def test_sigterm_stops_cleanly_with_status_0(daemon: Daemon) -> None:
    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGTERM)
    assert await daemon.wait() == 0
    assert "station stopped" in daemon.log.read_text(errors="replace")
