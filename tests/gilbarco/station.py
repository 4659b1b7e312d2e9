"""A real station (``edge.station.Station``) on a Gilbarco line served by the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from edge.config import load_config
from edge.station import Station
from edge.store import Store
from simulator.gilbarco import GilbarcoPump, GilbarcoSimulator, run_gilbarco_simulator
from tests.e2e.conftest import USERS
from tests.helpers import free_port, wait_until

FLOW = Decimal("300")  # litres a minute: quick, and slow enough to see running money
RAMP = Decimal("0.3")


def sim_pumps(eight_digits: bool = False, **settings: Any) -> list[GilbarcoPump]:
    options: dict[str, Any] = {"flow_lpm": FLOW, "ramp_seconds": RAMP, "start_delay": 0.2,
                               "eight_digits": eight_digits, "prices": {1: 750, 2: 802}}
    options.update(settings)
    return [GilbarcoPump(1, {1: 92, 2: 95}, **options),
            GilbarcoPump(16, {1: 92}, **options)]


def station_toml(url: str, db: Path, api_port: int, *, echo: bool, digits: str,
                 extra_line: str = "") -> str:
    return f'''
[station]
id = "XJ-GIL-0001"
name = "长吉测试站"
timezone = "Asia/Shanghai"

[storage]
path = "{db}"

[api]
listen = "127.0.0.1:{api_port}"

[controller]
max_flow_litres_per_minute = "1000"

[[grades]]
code = "92"
name = "92号汽油"
price = "7.50"

[[grades]]
code = "95"
name = "95号汽油"
price = "8.02"

[[lines]]
id = "g1"
port = "{url}"
protocol = "gilbarco"
parity = "N"
echo = {"true" if echo else "false"}
digits = "{digits}"
poll_interval_ms = 5
{extra_line}

[[pumps]]
number = 1
line = "g1"
address = 1
[[pumps.nozzles]]
number = 1
logical = 1
grade = "92"
[[pumps.nozzles]]
number = 2
logical = 2
grade = "95"

[[pumps]]
number = 2
line = "g1"
address = 16
authorize = "auto"
[[pumps.nozzles]]
number = 3
logical = 1
grade = "92"
'''


@dataclass
class GilbarcoStation:
    station: Station
    sim: GilbarcoSimulator
    config: Path
    base_url: str

    async def client(self, user: str = "att") -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=self.base_url, timeout=15)
        response = await client.post("/api/v1/session",
                                     json={"user": user, "pin": USERS[user][1]})
        assert response.status_code == 200, response.text
        client.headers["Authorization"] = f"Bearer {response.json()['token']}"
        return client


def write_station(tmp_path: Path, url: str, *, echo: bool, digits: str,
                  extra_line: str = "") -> tuple[Path, int]:
    db = tmp_path / "station.db"
    api_port = free_port()
    path = tmp_path / "station.toml"
    path.write_text(station_toml(url, db, api_port, echo=echo, digits=digits,
                                 extra_line=extra_line), "utf-8")
    with Store.open(db) as store:
        for name, (role, pin) in USERS.items():
            store.upsert_user(name, role=role, pin=pin)
    return path, api_port


@asynccontextmanager
async def gilbarco_station(tmp_path: Path, *, echo: bool = False, eight_digits: bool = False,
                           **pump_settings: Any) -> AsyncIterator[GilbarcoStation]:
    digits = "8-digit" if eight_digits else "standard"
    async with run_gilbarco_simulator(sim_pumps(eight_digits, **pump_settings),
                                      echo=echo) as sim:
        path, _ = write_station(tmp_path, sim.url, echo=echo, digits=digits)
        station = Station(load_config(path))
        task = asyncio.create_task(station.run(install_signals=False), name="station")
        started = asyncio.create_task(station.started.wait())
        done, _ = await asyncio.wait({task, started}, timeout=20,
                                     return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            started.cancel()
            task.result()
        assert started in done, "the station did not start"
        try:
            yield GilbarcoStation(station, sim, path, f"http://127.0.0.1:{station.port}")
        finally:
            station.request_stop()
            await asyncio.wait_for(task, 20)


async def pump_view(client: httpx.AsyncClient, number: int) -> dict[str, Any]:
    response = await client.get("/api/v1/forecourt")
    assert response.status_code == 200, response.text
    return {p["number"]: p for p in response.json()["pumps"]}[number]


async def wait_state(client: httpx.AsyncClient, number: int, *states: str,
                     timeout: float = 20.0) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        view = await pump_view(client, number)
        return view if view["state"] in states else None
    return await wait_until(check, timeout=timeout, what=f"pump {number} in {states}")


async def sales(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/sales", params={"limit": 1000})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["sales"]
    return found


async def wait_sales(client: httpx.AsyncClient, count: int,
                     timeout: float = 20.0) -> list[dict[str, Any]]:
    async def check() -> list[dict[str, Any]] | None:
        found = await sales(client)
        return found if len(found) >= count else None
    return await wait_until(check, timeout=timeout, what=f"{count} sale(s)")
