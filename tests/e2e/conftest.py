"""End-to-end fixtures: the real daemon against the pump simulator over a real TCP socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain.model import Role
from edge.config import load_config
from edge.station import Station
from edge.store import Store
from simulator.control import Simulator, run_simulator
from simulator.pump import SimulatedPump
from tests.helpers import StationSpec, free_port, wait_until

FLOW = Decimal("600")  # litres a minute: fast enough for tests, slow enough to watch
RAMP = Decimal("0.3")

USERS = {"att": (Role.ATTENDANT, "1111"), "cash": (Role.CASHIER, "2222"),
         "boss": (Role.MANAGER, "3333"), "fin": (Role.FINANCE, "4444")}


def sim_pumps() -> list[SimulatedPump]:
    return [SimulatedPump(0x50, {1: 92, 2: 95}, flow_lpm=FLOW, ramp_seconds=RAMP),
            SimulatedPump(0x51, {1: 92, 2: 1}, flow_lpm=FLOW, ramp_seconds=RAMP)]


def write_config(tmp_path: Path, line_url: str, api_port: int | None = None) -> Path:
    spec = StationSpec(port_url=line_url, db=tmp_path / "station.db",
                       api_port=api_port or free_port())
    path = tmp_path / "station.toml"
    path.write_text(spec.toml(), "utf-8")
    with Store.open(spec.db) as store:
        for name, (role, pin) in USERS.items():
            store.upsert_user(name, role=role, pin=pin)
    return path


@dataclass
class RunningStation:
    station: Station
    config_path: Path
    base_url: str

    async def client(self, user: str = "att") -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=self.base_url, timeout=15)
        response = await client.post("/api/v1/session",
                                     json={"user": user, "pin": USERS[user][1]})
        assert response.status_code == 200, response.text
        client.headers["Authorization"] = f"Bearer {response.json()['token']}"
        return client


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with run_simulator(sim_pumps()) as simulator:
        yield simulator


async def start_station(config_path: Path) -> tuple[Station, asyncio.Task[None]]:
    station = Station(load_config(config_path))
    task = asyncio.create_task(station.run(install_signals=False), name="station")
    started = asyncio.create_task(station.started.wait())
    done, _ = await asyncio.wait({task, started}, timeout=20,
                                 return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        started.cancel()
        task.result()
    assert started in done, "the station did not start"
    return station, task


@pytest.fixture
async def running(sim: Simulator, tmp_path: Path) -> AsyncIterator[RunningStation]:
    assert sim.url is not None
    path = write_config(tmp_path, sim.url)
    station, task = await start_station(path)
    try:
        yield RunningStation(station, path, f"http://127.0.0.1:{station.port}")
    finally:
        station.request_stop()
        await asyncio.wait_for(task, 20)


async def pump_view(client: httpx.AsyncClient, number: int) -> dict[str, Any]:
    response = await client.get("/api/v1/forecourt")
    assert response.status_code == 200, response.text
    pumps = {p["number"]: p for p in response.json()["pumps"]}
    return pumps[number]


async def wait_pump_state(client: httpx.AsyncClient, number: int, *states: str,
                          timeout: float = 15.0) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        view = await pump_view(client, number)
        return view if view["state"] in states else None
    return await wait_until(check, timeout=timeout, what=f"pump {number} in {states}")


async def sales(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/sales", params={"limit": 1000})
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()["sales"]
    return result


async def wait_sales(client: httpx.AsyncClient, count: int,
                     timeout: float = 20.0) -> list[dict[str, Any]]:
    async def check() -> list[dict[str, Any]] | None:
        found = await sales(client)
        return found if len(found) >= count else None
    return await wait_until(check, timeout=timeout, what=f"{count} sale(s)")


def dispensed(sim: Simulator, address: int) -> int:
    """Raw volume of the filling in progress at the pump (centilitres)."""
    sim.tick()
    return sim.pump(address).filling_info[0]
