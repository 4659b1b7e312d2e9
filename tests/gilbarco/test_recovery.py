"""kill -9 of the daemon in the middle of a Gilbarco sale: the pump keeps no sales of its own,
so the sale is rebuilt from the transaction it still shows and the hose's totals (two witnesses),
once, and a second restart does not record it again."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from simulator.gilbarco import run_gilbarco_simulator
from simulator.records import FillEnd
from tests.e2e.daemon import Daemon
from tests.helpers import wait_until

from .station import sim_pumps, wait_sales, wait_state, write_station


async def test_kill_mid_fill_then_recover_once(tmp_path: Path) -> None:
    async with run_gilbarco_simulator(sim_pumps(flow_lpm=Decimal(60))) as sim:
        config, api_port = write_station(tmp_path, sim.url, echo=False, digits="standard")
        daemon = Daemon(config, api_port)
        await daemon.start()
        client = await daemon.client()
        await wait_state(client, 1, "idle")
        response = await client.post("/api/v1/nozzles/1/authorize",
                                     json={"preset": {"amount": "6.00"}})
        assert response.status_code == 202, response.text
        sim.lift(1, 1)
        await wait_until(lambda: sim.pump(1).sale.volume > 0, what="fuel flowing")
        daemon.kill()
        await daemon.wait()
        await client.aclose()

        await wait_until(lambda: sim.fills(), timeout=30, what="the preset reached")
        sim.hang(1, 1)
        fill = sim.fills()[0]
        assert fill.end is FillEnd.PRESET

        await daemon.start()
        client = await daemon.client()
        (sale,) = await wait_sales(client, 1)
        assert sale["recovered"] is True
        assert Decimal(sale["amount"]) == fill.amount_decimal == Decimal("6.00")
        assert Decimal(sale["volume"]) == fill.volume_decimal
        await wait_state(client, 1, "idle")
        await client.aclose()

        daemon.kill()
        await daemon.wait()
        await daemon.start()
        client = await daemon.client()
        await wait_state(client, 1, "idle")
        assert len(await wait_sales(client, 1)) == 1
        response = await client.post("/api/v1/nozzles/1/authorize",
                                     json={"preset": {"amount": "3.00"}})
        assert response.status_code == 202, response.text
        sim.lift(1, 1)
        await wait_until(lambda: len(sim.fills()) == 2, timeout=30, what="the second fill")
        sim.hang(1, 1)
        first, second = await wait_sales(client, 2)
        assert first["recovered"] is True
        assert second["amount"] == "3.00" and second["recovered"] is False
        await client.aclose()
        daemon.kill()
        await daemon.wait()
