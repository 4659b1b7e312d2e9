"""A station whose line is down: health says degraded, the forecourt says offline, and it
comes back by itself once the line answers (CONTRACT section 3, docs/api.md health)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from simulator.control import run_simulator
from tests.api.conftest import Api, assert_error, assert_nothing_left, serve
from tests.e2e.conftest import sim_pumps
from tests.helpers import free_port, wait_until


async def check_down(api: Api) -> None:
    line = api.station.forecourt.lines["line1"]
    # The line really tried the port and failed, so what follows is the "down" picture.
    await wait_until(lambda: line.stats.port_failures >= 1, timeout=5,
                     what="a failed attempt to open the line")
    health = (await api.anonymous().get("/api/v1/health")).json()
    assert health["status"] == "degraded"
    assert health["lines"] == [{"id": "line1", "protocol": "dart", "online": False,
                                "pumps_online": 0, "pumps": 2}]
    assert health["storage"]["writable"] is True  # degraded because of the line only

    client = await api.client("att")
    forecourt = await client.get("/api/v1/forecourt")
    assert forecourt.status_code == 200, forecourt.text
    pumps = forecourt.json()["pumps"]
    assert [p["number"] for p in pumps] == [1, 2]
    for pump in pumps:
        assert pump["online"] is False and pump["state"] == "offline", pump
        assert [n["state"] for n in pump["nozzles"]] == ["offline", "offline"], pump

    metrics = (await (await api.client("boss")).get("/metrics")).text.splitlines()
    assert 'forecourt_pump_online{pump="1"} 0.0' in metrics
    assert 'forecourt_pump_online{pump="2"} 0.0' in metrics

    refused = await client.post("/api/v1/nozzles/1/authorize",
                                json={"preset": {"amount": "100.00"}})
    assert_error(refused, 409, "pump_offline")
    assert (await client.get("/api/v1/sales")).json() == {"sales": []}


async def test_line_down_is_degraded_and_recovers_when_the_line_answers(
        tmp_path: Path) -> None:
    threads = set(threading.enumerate())
    tasks = set(asyncio.all_tasks())
    port = free_port()  # nothing listens there yet
    async with serve(tmp_path, f"socket://127.0.0.1:{port}") as api:
        await check_down(api)
        async with run_simulator(sim_pumps(), port=port):
            async def healthy() -> bool | None:
                body = (await api.anonymous().get("/api/v1/health")).json()
                return bool(body["status"] == "ok")

            ok: bool = await wait_until(healthy, timeout=20, what="health ok once the line answers")
            assert ok
            client = await api.client("att")
            pumps = (await client.get("/api/v1/forecourt")).json()["pumps"]
            assert all(p["online"] for p in pumps), pumps
    await assert_nothing_left(threads, tasks)
