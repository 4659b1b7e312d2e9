"""Every sale reaches the cloud exactly once, in seq order, through broker and daemon kills.

The short version of the chaos run (bench/chaos.py runs the long one): a stream of sales on an
auto pump while the broker is SIGKILLed and restarted and the daemon is SIGKILLed and restarted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from edge.store import Store
from simulator.cloud import CloudPeer
from simulator.control import Simulator, run_simulator
from simulator.pump import SimulatedPump
from sync.keys import generate
from tests.e2e.conftest import USERS, dispensed
from tests.e2e.daemon import Daemon
from tests.helpers import StationSpec, free_port, wait_until
from tests.mosquitto import Mosquitto

SID = "XJ-TEST-0001"
AUTO_PUMP = 0x51  # pump 2 authorizes itself on nozzle lift


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    pumps = [SimulatedPump(0x50, {1: 92, 2: 95}, flow_lpm=Decimal("300"),
                           ramp_seconds=Decimal("0.2")),
             SimulatedPump(0x51, {1: 92, 2: 1}, flow_lpm=Decimal("300"),
                           ramp_seconds=Decimal("0.2"))]
    async with run_simulator(pumps) as simulator:
        yield simulator


async def one_customer(sim: Simulator, fills_before: int) -> None:
    """Lift, take a litre or two if the pump lets us, hang up."""
    sim.lift(AUTO_PUMP, 1)
    try:
        await wait_until(lambda: dispensed(sim, AUTO_PUMP) > 100, timeout=3, what="fuel")
        await asyncio.sleep(0.2)
    except AssertionError:
        pass  # the controller is down: no authorization, no fuel
    sim.hang(AUTO_PUMP, 1)
    await asyncio.sleep(0.3)
    assert len(sim.fills()) in (fills_before, fills_before + 1)


async def test_every_sale_reaches_the_cloud_once_through_kills(
        sim: Simulator, tmp_path: Path) -> None:
    _, public = generate(tmp_path / "keys")
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    assert sim.url is not None
    port = free_port()
    spec = StationSpec(port_url=sim.url, db=tmp_path / "station.db", api_port=port,
                       broker=broker.url, cloud_public_key=public)
    config = tmp_path / "station.toml"
    config.write_text(spec.toml(), "utf-8")
    with Store.open(spec.db) as store:
        for name, (role, pin) in USERS.items():
            store.upsert_user(name, role=role, pin=pin)
    daemon = Daemon(config, port)
    await daemon.start()
    kills = {"broker": 0, "daemon": 0}
    try:
        async with CloudPeer(broker.url, SID, client_id="cloud-test") as cloud:
            for round_ in range(1, 13):
                await one_customer(sim, len(sim.fills()))
                if round_ % 3 == 0:
                    broker.kill()
                    kills["broker"] += 1
                    await asyncio.sleep(0.5)
                    broker.start()
                if round_ in (5, 10):
                    daemon.kill()
                    await daemon.wait()
                    kills["daemon"] += 1
                    await one_customer(sim, len(sim.fills()))  # while the controller is dead
                    await daemon.start()
            fills = sim.fills()
            assert len(fills) >= 6, "the stream made too few sales to prove anything"
            await wait_until(lambda: len(cloud.sales()) >= len(fills), timeout=60,
                             what=f"{len(fills)} sales at the cloud")
            await wait_until(lambda: cloud.contiguous() == max(cloud.received), timeout=30,
                             what="a gapless stream")
            assert cloud.gaps() == []
            sales = cloud.sales()
            assert len(sales) == len(fills), (len(sales), len(fills))
            assert len({s["id"] for s in sales}) == len(sales)
            by_totals = {Decimal(s["totals"]["volume_after"]): s for s in sales}
            for fill in fills:
                sale = by_totals[Decimal(fill.volume_total_after) / 100]
                assert Decimal(sale["volume"]) == fill.volume_decimal
                assert Decimal(sale["amount"]) == fill.amount_decimal
            assert kills == {"broker": 4, "daemon": 2}
    finally:
        if daemon.process is not None and daemon.process.returncode is None:
            daemon.process.terminate()
            await daemon.wait()
        broker.stop()
