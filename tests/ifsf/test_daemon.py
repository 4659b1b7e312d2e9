"""``forecourt run`` on an IFSF LAN, as a real child process against the simulated dispensers:
a sale through the API, and a daemon killed with SIGKILL mid-fill whose sale comes back exactly
once from the dispenser's buffer, cleared only after it is recorded."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import aclosing
from decimal import Decimal
from pathlib import Path

import pytest

from edge.store import Store
from simulator.ifsf import IfsfSimulator, SimulatedNode, run_ifsf_simulator
from tests.e2e.conftest import USERS, sales, wait_pump_state, wait_sales
from tests.e2e.daemon import Daemon
from tests.helpers import free_port, wait_until

from .station import ifsf_station_toml

PRICES = {92: Decimal("7.50"), 95: Decimal("8.00")}


def nodes() -> list[SimulatedNode]:
    # 120 L/min: a 100.00 preset takes about 7 s, time enough to kill the daemon mid-fill.
    options = {"ramp_seconds": Decimal("0.3"), "flow_lpm": Decimal(120)}
    return [SimulatedNode(1, {1: {1: 92, 2: 95}, 2: {1: 92}}, PRICES, **options),  # type: ignore[arg-type]
            SimulatedNode(11, {1: {1: 92}}, PRICES, **options),  # type: ignore[arg-type]
            SimulatedNode(12, {1: {1: 95}}, PRICES, **options)]  # type: ignore[arg-type]


class DebugDaemon(Daemon):
    """The daemon with its log at debug level: the messages on the LAN are in it."""

    async def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "edge.cli", "run", "--config", str(self.config),
                "--log-level", "DEBUG", stdout=log, stderr=log)
        await wait_until(self._healthy, timeout=20, what="the daemon's API")


@pytest.fixture
async def sim(udp_port: int) -> AsyncIterator[IfsfSimulator]:
    async with run_ifsf_simulator(nodes(), udp_port=udp_port, heartbeat_interval=1.0,
                                  heartbeat_destination="127.255.255.255") as simulator:
        yield simulator


@pytest.fixture
async def daemon(sim: IfsfSimulator, udp_port: int, tmp_path: Path) -> AsyncIterator[Daemon]:
    port = free_port()
    config = tmp_path / "station.toml"
    db = tmp_path / "station.db"
    config.write_text(ifsf_station_toml(db=db, api_port=port, udp_port=udp_port), "utf-8")
    with Store.open(db) as store:
        for name, (role, pin) in USERS.items():
            store.upsert_user(name, role=role, pin=pin)
    proc = DebugDaemon(config, port)
    await proc.start()
    try:
        yield proc
    finally:
        if proc.process is not None and proc.process.returncode is None:
            proc.process.terminate()
            await proc.wait()


async def test_a_sale_through_the_api(daemon: Daemon, sim: IfsfSimulator) -> None:
    async with aclosing(await daemon.client()) as client:
        await wait_pump_state(client, 1, "idle", timeout=30)
        r = await client.post("/api/v1/nozzles/1/authorize",
                              json={"preset": {"amount": "15.00"}})
        assert r.status_code == 202, r.text
        sim.lift(1, 1, 1)
        [sale] = await wait_sales(client, 1)
        assert (sale["nozzle"], sale["amount"], sale["volume"], sale["price"]) == (
            1, "15.00", "2.00", "7.50")
        sim.hang(1, 1, 1)
        await wait_until(lambda: not sim.fp(1, 1).unpaid, what="the buffer cleared")
        # The DIT pump (nozzles 4 and 5 on nodes 11 and 12) sells as well.
        await wait_pump_state(client, 3, "idle")
        r = await client.post("/api/v1/nozzles/5/authorize",
                              json={"preset": {"volume": "1.00"}})
        assert r.status_code == 202, r.text
        sim.lift(12, 1, 1)
        sales_now = await wait_sales(client, 2)
        assert (sales_now[-1]["nozzle"], sales_now[-1]["volume"]) == (5, "1.00")


async def test_kill_mid_fill_the_sale_comes_back_once_from_the_buffer(
        daemon: Daemon, sim: IfsfSimulator) -> None:
    async with aclosing(await daemon.client()) as client:
        await wait_pump_state(client, 1, "idle", timeout=30)
        r = await client.post("/api/v1/nozzles/1/authorize",
                              json={"preset": {"amount": "100.00"}})
        assert r.status_code == 202, r.text
        sim.lift(1, 1, 1)
        await wait_until(lambda: sim.fp(1, 1).current()[0] > 200, timeout=10,
                         what="2 L dispensed")
    daemon.kill()
    await daemon.wait()
    # The filling goes on without the controller and ends in the buffer, unpaid.
    await wait_until(lambda: len(sim.fp(1, 1).unpaid) == 1, timeout=20, what="the filling's end")
    sim.hang(1, 1, 1)
    filled = sim.fp(1, 1).unpaid[0]
    await daemon.start()
    async with aclosing(await daemon.client()) as client:
        [sale] = await wait_sales(client, 1, timeout=30)
        assert Decimal(sale["amount"]) == Decimal(filled.amount) / 100 == Decimal("100.00")
        assert Decimal(sale["volume"]) == Decimal(filled.volume) / 100
        await wait_until(lambda: not sim.fp(1, 1).unpaid, what="the buffer cleared")
        await wait_pump_state(client, 1, "idle")
        assert len(await sales(client)) == 1
