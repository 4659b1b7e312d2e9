"""A login flood from the station LAN while the forecourt sells (docs/security.md, "Logins,
sessions and users").

Strangers at twenty addresses (127.0.0.100 and up) send `POST /api/v1/session` with names
nobody has, back to back, while an attendant authorizes a nozzle and a sale is filled and
recorded. Checked by structure and by conditions, never by timing (the timing is
bench/login_flood.py's):

- no PIN is ever hashed on the ledger's writer thread, the one that records sales;
- the authorization is answered (202) and the sale recorded while the flood goes on;
- every flood request gets 401, 429 or 503, never a 500 and never a hang, and no address has
  more PINs checked than it may try;
- nothing is written per try of a name nobody has.

Once against the daemon in this process (so that the hash function can be watched), once
against `forecourt run` as a child process.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulator.control import Simulator, run_simulator
from tests.e2e.conftest import USERS, sim_pumps, start_station, write_config
from tests.e2e.daemon import Daemon
from tests.helpers import free_port, wait_until

PUMP1 = 0x50
ADDRESSES = [f"127.0.0.{100 + n}" for n in range(20)]
PER_ADDRESS = 3  # requests in flight from each address
MAX_PER_WORKER = 400  # a bound on the flood whatever happens
ADDRESS_ATTEMPTS = 20  # [api] pin_address_attempts, the default


@dataclass
class Flood:
    """Login requests from many addresses until stopped; what they were answered."""

    base_url: str
    answers: Counter[int] = field(default_factory=Counter)
    per_address: Counter[str] = field(default_factory=Counter)  # 401s: PINs checked
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def sent(self) -> int:
        return sum(self.answers.values())

    async def _worker(self, client: httpx.AsyncClient, address: str, worker: int) -> None:
        for n in range(MAX_PER_WORKER):
            if self.stop.is_set():
                return
            response = await client.post("/api/v1/session", json={
                "user": f"intruder-{address}-{worker}-{n}", "pin": "000000"})
            self.answers[response.status_code] += 1
            if response.status_code == 401:
                self.per_address[address] += 1

    async def run(self) -> None:
        clients = [httpx.AsyncClient(
            base_url=self.base_url, timeout=60,
            transport=httpx.AsyncHTTPTransport(local_address=address)) for address in ADDRESSES]
        try:
            async with asyncio.TaskGroup() as group:
                for client, address in zip(clients, ADDRESSES, strict=True):
                    for worker in range(PER_ADDRESS):
                        group.create_task(self._worker(client, address, worker),
                                          name=f"flood {address} {worker}")
        finally:
            for client in clients:
                await client.aclose()


@asynccontextmanager
async def flooding(base_url: str) -> AsyncIterator[Flood]:
    flood = Flood(base_url)
    task = asyncio.create_task(flood.run(), name="login flood")
    try:
        await wait_until(lambda: flood.sent >= 100 or task.done(), timeout=30,
                         what="the flood to be under way")
        assert not task.done(), task
        yield flood
    finally:
        flood.stop.set()
        await asyncio.wait_for(task, 60)


async def logged_in(base_url: str, user: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base_url, timeout=60)
    response = await client.post("/api/v1/session",
                                 json={"user": user, "pin": USERS[user][1]})
    assert response.status_code == 200, response.text
    client.headers["Authorization"] = f"Bearer {response.json()['token']}"
    return client


async def sell_during(flood: Flood, client: httpx.AsyncClient, sim: Simulator) -> None:
    """An authorization and a whole sale while the flood goes on."""
    before = flood.sent
    response = await client.post("/api/v1/nozzles/1/authorize",
                                 json={"preset": {"volume": "2.00"}})
    assert response.status_code == 202, response.text
    sim.lift(PUMP1, 1)
    await wait_until(lambda: len(sim.fills()) >= 1, timeout=60, what="the fill to end")
    sim.hang(PUMP1, 1)

    async def recorded() -> list[Any]:
        found = await client.get("/api/v1/sales", params={"limit": 10})
        assert found.status_code == 200, found.text
        sales: list[Any] = found.json()["sales"]
        return sales
    (sale,) = await wait_until(recorded, timeout=60, what="the sale to be recorded")
    assert sale["volume"] == "2.00"
    assert flood.sent > before, "the flood stopped before the sale was recorded"


def check_flood_answers(flood: Flood) -> None:
    assert set(flood.answers) <= {401, 429, 503}, flood.answers
    assert flood.answers[429] + flood.answers[503] > 0, flood.answers
    assert all(count <= ADDRESS_ATTEMPTS for count in flood.per_address.values()), (
        flood.per_address)


async def no_entries_per_try(client: httpx.AsyncClient) -> None:
    # Logged in as a manager: the audit log has no entry naming an intruder.
    entries = (await client.get("/api/v1/audit", params={"limit": 1000})).json()["entries"]
    assert not [e for e in entries if e["actor"].startswith("intruder-")]


async def test_no_pin_is_hashed_on_the_ledgers_thread_and_sales_go_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hashed_on: list[str] = []
    real_scrypt: Callable[..., bytes] = hashlib.scrypt

    def watched(*args: Any, **kwargs: Any) -> bytes:
        hashed_on.append(threading.current_thread().name)
        return real_scrypt(*args, **kwargs)

    async with run_simulator(sim_pumps()) as sim:
        assert sim.url is not None
        station, task = await start_station(write_config(tmp_path, sim.url))
        try:
            base_url = f"http://127.0.0.1:{station.port}"
            attendant = await logged_in(base_url, "att")
            manager = await logged_in(base_url, "boss")
            writer = await station.ledger.write(lambda: threading.current_thread().name)
            monkeypatch.setattr(hashlib, "scrypt", watched)
            async with flooding(base_url) as flood:
                await sell_during(flood, attendant, sim)
            monkeypatch.undo()
            check_flood_answers(flood)
            assert hashed_on, "no PIN was checked at all"
            assert writer not in hashed_on, (writer, Counter(hashed_on))
            assert threading.main_thread().name not in hashed_on  # nor on the event loop
            await no_entries_per_try(manager)
            await attendant.aclose()
            await manager.aclose()
        finally:
            station.request_stop()
            await asyncio.wait_for(task, 30)


async def test_the_daemon_sells_through_a_login_flood(tmp_path: Path) -> None:
    async with run_simulator(sim_pumps()) as sim:
        assert sim.url is not None
        port = free_port()
        daemon = Daemon(write_config(tmp_path, sim.url, api_port=port), port)
        await daemon.start()
        try:
            base_url = f"http://127.0.0.1:{port}"
            attendant = await logged_in(base_url, "att")
            manager = await logged_in(base_url, "boss")
            async with flooding(base_url) as flood:
                await sell_during(flood, attendant, sim)
            check_flood_answers(flood)
            await no_entries_per_try(manager)
            metrics = (await manager.get("/metrics")).text
            assert 'forecourt_login_failures_total{reason="unknown_user"}' in metrics
            await attendant.aclose()
            await manager.aclose()
        finally:
            if daemon.process is not None and daemon.process.returncode is None:
                daemon.process.terminate()
                await daemon.wait()
