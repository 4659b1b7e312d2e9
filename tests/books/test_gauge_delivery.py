"""A delivery received with the gauge's own readings: the daemon, the pump simulator and a
real Modbus gauge simulator (pymodbus) over real sockets; both readings (volume and
temperature) come from the gauge, and a delivery shipped at the tank's temperature arrives
whole."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from edge.store import Store
from simulator.control import Simulator
from simulator.gauge import demo_tank_settings, demo_tanks_toml, run_gauge_simulator
from tests.e2e.conftest import USERS, RunningStation, start_station
from tests.helpers import StationSpec, free_port, wait_until


async def test_a_delivery_detected_by_the_gauge_is_received_with_its_readings(
        sim: Simulator, tmp_path: Path) -> None:
    assert sim.url is not None
    async with run_gauge_simulator(demo_tank_settings(), clock=time.monotonic,
                                   volumes={1: Decimal(10000), 2: Decimal(8000),
                                            3: Decimal(12000)}) as gauges:
        spec = StationSpec(port_url=sim.url, db=tmp_path / "station.db", api_port=free_port())
        tanks = demo_tanks_toml(gauges.url("console")).replace(
            "poll_interval_seconds = 5", "poll_interval_seconds = 1")
        path = tmp_path / "station.toml"
        path.write_text(spec.toml() + tanks, "utf-8")
        with Store.open(spec.db) as store:
            for name, (role, pin) in USERS.items():
                store.upsert_user(name, role=role, pin=pin)
        running, task = await start_station(path)
        try:
            boss = await RunningStation(running, path,
                                        f"http://127.0.0.1:{running.port}").client("boss")

            async def tank_1() -> dict[str, Any] | None:
                found = (await boss.get("/api/v1/tanks")).json()["tanks"]
                tank = next(t for t in found if t["number"] == 1)
                return tank if tank["volume_l"] is not None else None
            first: dict[str, Any] = await wait_until(tank_1, timeout=20,
                                                     what="tank 1's first reading")
            assert first["temperature_c"] is not None

            bill = {"number": "TD-9", "volume_l": "5000", "density20": "737.5",
                    "temperature_c": "15.0", "truck": "新A99999", "seals": ["S1"]}
            opened = await boss.post("/api/v1/deliveries/receipts", json={"tank": 1,
                                                                          "bill": bill})
            assert opened.status_code == 201, opened.text
            receipt = opened.json()
            assert receipt["before"]["source"] == "gauge"
            assert receipt["before"]["volume_l"].startswith("10000")
            assert receipt["before"]["temperature_c"] == "15.0"

            gauges.deliver(1, Decimal(5000), minutes=0.02)

            async def risen() -> dict[str, Any] | None:
                tank = await tank_1()
                return tank if tank and Decimal(tank["volume_l"]) >= 15000 else None
            full: dict[str, Any] = await wait_until(risen, timeout=20,
                                                    what="the delivery in the tank")
            assert full["grade"] == "92"

            done = await boss.post(f"/api/v1/deliveries/receipts/{receipt['id']}/receive",
                                   json={"driver": "张师傅", "receiver": "李站长"})
            assert done.status_code == 200, done.text
            body = done.json()
            assert body["after"]["source"] == "gauge"
            assert body["received_l"] == "5000.00"
            assert body["figures"]["loss_l"] == "0.00" and body["outcome"] == "accepted"
            assert body["figures"]["vcf"]["after"] == body["figures"]["vcf"]["bill"]
        finally:
            running.request_stop()
            await asyncio.wait_for(task, 20)
