"""The API under test: the real daemon on a real port, its pumps simulated over a real socket.

A station takes about a second to start, so each test module shares one (module-scoped, on the
module's event loop: modules mark themselves ``pytest.mark.asyncio(loop_scope="module")``).
Tests that change the station for good (sales, lockouts) live in modules of their own.
Whatever a station started must be gone once it stopped: threads, tasks, the loop's executor.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from domain.model import Role
from edge.station import Station
from edge.store import Store
from simulator.control import Simulator, run_simulator
from tests.e2e.conftest import USERS, sim_pumps, start_station
from tests.helpers import StationSpec, free_port, wait_until

PUMP1 = 0x50
PUMP2 = 0x51

#: Users beyond the end-to-end ones: an admin, and one to lock out without locking anybody else.
EXTRA_USERS = {"root": (Role.ADMIN, "5555"), "lock": (Role.ATTENDANT, "6666")}
PINS = {name: pin for name, (_, pin) in {**USERS, **EXTRA_USERS}.items()}
#: One user per role.
ROLE_USERS = {"attendant": "att", "cashier": "cash", "manager": "boss", "finance": "fin",
              "admin": "root"}

# The simulator shares the station's event loop here, so a loop busy serving a burst of API
# requests delays the pumps' answers; the end-to-end 25 ms would let pumps flap offline.
REPLY_TIMEOUT_MS = 100

# Worker threads of the loop's default executor live as long as the loop; they are checked
# when the station that used them has stopped, not after every test.
EXECUTOR_PREFIX = "asyncio_"
ANYIO_WORKER = "AnyIO worker thread"


@dataclass
class Api:
    """A running station and what the tests need to talk to it."""

    station: Station
    base_url: str
    sim: Simulator | None = None
    _clients: list[httpx.AsyncClient] = field(default_factory=list)
    _tokens: dict[str, str] = field(default_factory=dict)

    @property
    def ws_url(self) -> str:
        return "ws" + self.base_url.removeprefix("http") + "/api/v1/events"

    def anonymous(self) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=self.base_url, timeout=15)
        self._clients.append(client)
        return client

    async def login(self, user: str) -> str:
        response = await self.anonymous().post(
            "/api/v1/session", json={"user": user, "pin": PINS[user]})
        assert response.status_code == 200, response.text
        token: str = response.json()["token"]
        return token

    async def token(self, user: str) -> str:
        """A session of ``user`` shared by the module's tests (a login costs a PIN hash)."""
        if user not in self._tokens:
            self._tokens[user] = await self.login(user)
        return self._tokens[user]

    async def client(self, user: str = "att", *, fresh: bool = False) -> httpx.AsyncClient:
        """A client logged in as ``user``; ``fresh`` for a session of its own."""
        token = await self.login(user) if fresh else await self.token(user)
        client = self.anonymous()
        client.headers["Authorization"] = f"Bearer {token}"
        return client

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
        self._clients.clear()


def prepare_station(tmp_path: Path, line_url: str) -> Path:
    """The end-to-end station's config with every user of ``PINS`` in its store."""
    spec = StationSpec(port_url=line_url, db=tmp_path / "station.db", api_port=free_port(),
                       reply_timeout_ms=REPLY_TIMEOUT_MS)
    path = tmp_path / "station.toml"
    path.write_text(spec.toml(), "utf-8")
    with Store.open(spec.db) as store:
        for name, (role, pin) in {**USERS, **EXTRA_USERS}.items():
            store.upsert_user(name, role=role, pin=pin)
    return path


def _new_tasks(before: set[asyncio.Task[Any]]) -> list[asyncio.Task[Any]]:
    current = asyncio.current_task()
    return [t for t in asyncio.all_tasks() if t is not current and t not in before
            and not t.done()]


async def assert_tasks_finish(before: set[asyncio.Task[Any]], timeout: float = 5.0) -> None:
    """Tasks started since ``before`` must end on their own (a closed socket ends its handler)."""
    try:
        await wait_until(lambda: not _new_tasks(before), timeout=timeout, interval=0.02,
                         what="tasks to finish")
    except AssertionError:
        raise AssertionError(f"tasks left running: {_new_tasks(before)}") from None


async def assert_nothing_left(threads: set[threading.Thread],
                              tasks: set[asyncio.Task[Any]]) -> None:
    await assert_tasks_finish(tasks)
    await asyncio.get_running_loop().shutdown_default_executor()

    def leaked() -> list[threading.Thread]:
        # AnyIO's workers (FastAPI runs sync dependencies there) end with the task that runs
        # the test; the per-test check sees to them.
        return [t for t in threading.enumerate() if t not in threads and t.is_alive()
                and t.name != ANYIO_WORKER]

    try:
        await wait_until(lambda: not leaked(), timeout=5, interval=0.02, what="threads to end")
    except AssertionError:
        raise AssertionError(f"threads left running: {leaked()}") from None


@asynccontextmanager
async def serve(tmp_path: Path, line_url: str, sim: Simulator | None = None
                ) -> AsyncIterator[Api]:
    """The daemon on a free port with the end-to-end users plus ``EXTRA_USERS``."""
    station, task = await start_station(prepare_station(tmp_path, line_url))
    assert station.port is not None
    api = Api(station, f"http://127.0.0.1:{station.port}", sim)
    try:
        yield api
    finally:
        await api.aclose()
        station.request_stop()
        await asyncio.wait_for(task, 20)


async def pumps_idle(station: Station) -> None:
    await wait_until(lambda: all(p.online and p.state.value == "idle"
                                 for p in station.forecourt.pumps.values()),
                     timeout=15, what="every pump online and idle")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def station_api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    """One station for the whole module, both pumps online and idle when it is handed out."""
    threads = set(threading.enumerate())
    tasks = set(asyncio.all_tasks())
    tmp_path = tmp_path_factory.mktemp("station")
    async with run_simulator(sim_pumps()) as sim, serve(tmp_path, sim.url, sim) as api:
        await pumps_idle(api.station)
        yield api
    await assert_nothing_left(threads, tasks)


@pytest_asyncio.fixture(loop_scope="module")
async def api(station_api: Api) -> AsyncIterator[Api]:
    """The module's station, checking that the test leaves no task of its own running."""
    tasks = set(asyncio.all_tasks())
    yield station_api
    await station_api.aclose()
    await assert_tasks_finish(tasks)


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """New threads must end with the test (a worker that ran a request may take a moment)."""
    before = set(threading.enumerate())
    yield

    def leaked() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t not in before and t.is_alive()
                and not t.name.startswith(EXECUTOR_PREFIX)]

    deadline = time.monotonic() + 5
    while leaked() and time.monotonic() < deadline:
        time.sleep(0.01)  # a sync fixture: the loop is not running here
    assert not leaked(), f"threads left running: {leaked()}"


# ----------------------------------------------------------------- checks shared by the modules


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> str:
    """The one error shape of CONTRACT section 3; returns the code."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"], body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    if code is not None:
        assert body["error"]["code"] == code, body
    result: str = body["error"]["code"]
    return result


async def assert_forecourt_untouched(api: Api, client: httpx.AsyncClient) -> None:
    """No authorization anywhere (API, store, pumps) and no sale."""
    response = await client.get("/api/v1/forecourt")
    assert response.status_code == 200, response.text
    for pump in response.json()["pumps"]:
        assert pump["authorization_id"] is None, pump
        # "offline": a pump missing a few polls on a loaded test machine is not our concern
        # here; the simulated pump itself is checked below.
        assert pump["state"] in ("idle", "offline"), pump
        assert {n["state"] for n in pump["nozzles"]} <= {"idle", "offline"}, pump
    station = api.station
    assert await station.ledger.read(station.store.active_authorizations) == []
    if api.sim is not None:
        for address in (PUMP1, PUMP2):
            pump = api.sim.pump(address)
            assert pump.allowed is None and pump.preset_volume is None
            assert pump.preset_amount is None and pump.status.name != "AUTHORIZED"
    sales = await client.get("/api/v1/sales", params={"limit": 1000})
    assert sales.status_code == 200, sales.text
    assert sales.json() == {"sales": []}
