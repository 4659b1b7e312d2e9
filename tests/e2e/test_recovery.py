"""The daemon killed with SIGKILL mid-fill: the sale is recovered exactly once from the pump."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from simulator.control import Simulator, run_simulator
from simulator.pump import SimulatedPump
from tests.e2e.conftest import USERS, sales, wait_pump_state, wait_sales, write_config
from tests.helpers import free_port, wait_until

PUMP1 = 0x50


class Daemon:
    """`forecourt run` as a real child process."""

    def __init__(self, config: Path, port: int) -> None:
        self.config = config
        self.port = port
        self.process: asyncio.subprocess.Process | None = None
        self.log = config.parent / "daemon.log"

    async def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "edge.cli", "run", "--config", str(self.config),
                stdout=log, stderr=log)
        await wait_until(self._healthy, timeout=20, what="the daemon's API")

    async def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.returncode is not None:
            raise AssertionError(f"daemon exited {self.process.returncode}: "
                                 f"{self.log.read_text(errors='replace')[-2000:]}")
        try:
            async with httpx.AsyncClient() as client:
                r = await client.get(f"http://127.0.0.1:{self.port}/api/v1/health", timeout=1)
                return r.status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)

    async def wait(self) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), 20)

    async def client(self, user: str = "att") -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=15)
        r = await client.post("/api/v1/session", json={"user": user, "pin": USERS[user][1]})
        assert r.status_code == 200, r.text
        client.headers["Authorization"] = f"Bearer {r.json()['token']}"
        return client


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
