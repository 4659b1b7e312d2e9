"""`forecourt demo` as a newcomer runs it, and what its station does: DART pumps of mixed
firmware, an IFSF LAN (a TQC board and a DIT dispenser) and a Gilbarco line on one console; an
attendant sells on each protocol; a cloud app order authorizes an IFSF nozzle exactly as a DART
one; the gauge's tanks fall as pumps of any protocol dispense."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from edge.demo import Demo
from edge.demo_layout import nozzle_number
from tests.helpers import free_port, wait_until
from tests.mosquitto import Mosquitto

#: Pumps on each line of the demo, by protocol.
LINES = {"dart1": 4, "ifsf1": 3, "gilbarco1": 2}


def test_demo_starts_all_pumps_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "demo"
    process = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "demo", "--data", str(data), "--port", str(port),
         "--seed", "7"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 40
        health: dict[str, Any] = {}
        online: dict[str, int] = {}
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).json()
                online = {line["id"]: line["pumps_online"] for line in health.get("lines", [])}
                if online == LINES:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert online == LINES, health
        assert health.get("status") == "ok", health
        assert {line["protocol"] for line in health["lines"]} == {"dart", "ifsf", "gilbarco"}
        session = httpx.post(f"http://127.0.0.1:{port}/api/v1/session",
                             json={"user": "attendant", "pin": "1111"}, timeout=5)
        assert session.status_code == 200
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert "加油站" in page.text
    finally:
        process.send_signal(signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
            raise AssertionError("the demo did not stop within 30 s of Ctrl-C; its last "
                                 "lines:\n" + "\n".join(output.splitlines()[-40:])) from None
    assert process.returncode == 0, output
    assert "console:" in output
    for simulator in ("DART line on socket://", "IFSF LAN: node 1 on 127.0.0.1:",
                      "heartbeats to 127.255.255.255:", "Gilbarco line on socket://"):
        assert simulator in output, output
    assert (data / "station.db").exists() and (data / "station.toml").exists()
    config = (data / "station.toml").read_text("utf-8")
    # The millilitre pump's decimals are in the config, as its firmware reports them.
    assert "decimals = { volume = 3, amount = 2, price = 3 }" in config


async def _idle(demo: Demo) -> None:
    def idle() -> bool:
        pumps = demo.station.forecourt.snapshot()["pumps"]
        return len(pumps) == sum(LINES.values()) and all(p["state"] == "idle" for p in pumps)
    await wait_until(idle, timeout=30, what="every pump of the demo idle")


async def _sales(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/sales", params={"limit": 100})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["sales"]
    return found


async def test_an_attendant_sells_on_every_protocol_and_app_orders_are_alike(
        tmp_path: Path) -> None:
    with Mosquitto(tmp_path / "broker") as broker:
        async with Demo(data=tmp_path / "demo", port=free_port(), broker=broker.url, seed=5,
                        traffic=False, install_signals=False) as demo:
            await _idle(demo)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{demo.station.port}",
                                         timeout=15) as client:
                login = await client.post("/api/v1/session",
                                          json={"user": "attendant", "pin": "1111"})
                assert login.status_code == 200, login.text
                client.headers["Authorization"] = f"Bearer {login.json()['token']}"
                # The attendant sells on a DART, an IFSF (TQC) and a Gilbarco pump, the
                # three fills at once.
                for pump in (1, 5, 8):
                    response = await client.post(
                        f"/api/v1/nozzles/{nozzle_number(pump, 1)}/authorize",
                        json={"preset": {"volume": "2.00"}})
                    assert response.status_code == 202, (pump, response.text)
                    demo.lines[pump].lift(pump, 1)
                for pump in (1, 5, 8):
                    line = demo.lines[pump]
                    await wait_until(lambda p=pump, ln=line: len(ln.fills(p)) == 1,  # type: ignore[misc]
                                     timeout=30, what=f"the fill on pump {pump}")
                    line.hang(pump, 1)
                sales = await wait_until(
                    lambda: _enough(client, 3), timeout=30, what="three sales")
            assert sorted((s["nozzle"], s["volume"], s["amount"]) for s in sales) == [
                (nozzle_number(pump, 1), "2.00", "15.00") for pump in (1, 5, 8)]
            # The app orders a fill on a DART nozzle and on an IFSF (DIT) nozzle.
            assert demo.cloud is not None
            peer = demo.cloud.cloud
            await wait_until(lambda: peer.online() is True, timeout=15, what="the cloud link")
            orders = {}
            for pump in (2, 7):
                nozzle = nozzle_number(pump, 1)
                order_id, reply = await demo.cloud.order(nozzle, Decimal("15.00"))
                assert reply["data"]["ok"] is True, reply
                assert reply["data"]["result"]["status"] == "authorized"
                orders[pump] = order_id
            # Both drivers fill at once.
            await asyncio.gather(*(demo.cloud.fill(nozzle_number(pump, 1)) for pump in orders))

            def statuses(order_id: str) -> list[dict[str, Any]]:
                return [e["data"] for e in peer.events()
                        if e["type"] == "order.updated" and e["data"]["order_id"] == order_id]

            for order_id in orders.values():
                await wait_until(lambda o=order_id: any(  # type: ignore[misc]
                    d["status"] == "completed" for d in statuses(o)), timeout=30,
                    what=f"order {order_id} completed")
            dart, ifsf = (statuses(orders[p]) for p in (2, 7))
            assert [d["status"] for d in dart] == [d["status"] for d in ifsf] == [
                "accepted", "authorized", "fuelling", "completed"]
            assert dart[-1]["refund"] == ifsf[-1]["refund"] == "0.00"
            recorded = {e["data"]["order_id"]: e["data"] for e in peer.events()
                        if e["type"] == "sale.completed" and e["data"]["order_id"]}
            assert {o: (recorded[o]["volume"], recorded[o]["amount"])
                    for o in orders.values()} == {o: ("2.00", "15.00") for o in orders.values()}
            # Tank 1 (92) gave exactly what the five 92 fills took, on three protocols.
            assert demo.gauges is not None
            demo.gauges.update()
            assert demo.gauges.tanks[1].dispensed == Decimal("10.00")


async def _enough(client: httpx.AsyncClient, count: int) -> list[dict[str, Any]] | None:
    found = await _sales(client)
    return found if len(found) >= count else None
