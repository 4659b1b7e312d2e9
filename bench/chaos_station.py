"""The station side of the chaos run: the daemon as a real process, and an attendant at the API.

`StationProcess` starts `forecourt run` with its output piped into a log file (a pipe, not a
file, so that the file size limit used to fill the disk does not silence the daemon's log), can
SIGKILL it, lower its file size limit to nothing and back (`prlimit`, the disk is full), and step
its wall clock (bench/clockshift/clockshift.c, loaded with LD_PRELOAD). It reads the database
file directly for the verdict, as an auditor would.

`Attendant` does what a person at the console does: authorizes the customers waiting at the
attendant pumps, and records every answer with the monotonic time it was asked and answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
from chaos_checks import Attempt, StoredSale
from harness import BenchError, die_with_parent, station_toml

from edge.store import Store
from sync.keys import generate
from tests.e2e.conftest import USERS

FIRST_ADDRESS = 0x50
SOURCE = Path(__file__).resolve().parent / "clockshift" / "clockshift.c"
START_TIMEOUT = 45.0  # a loaded 2-core machine, a database to recover, pumps to reprogram


def build_clockshift(folder: Path) -> Path:
    """Compile the wall-clock shifter into `folder`; BenchError when there is no C compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise BenchError("no C compiler for bench/clockshift (scripts/dev setup installs gcc)")
    library = folder / "libclockshift.so"
    done = subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(library), str(SOURCE),
                           "-ldl"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"bench/clockshift did not build:\n{done.stderr}")
    return library


class StationProcess:
    def __init__(self, folder: Path, line_url: str, broker: str, station_id: str, api_port: int,
                 *, shifter: Path, pumps: int) -> None:
        self.folder = folder
        self.db = folder / "station.db"
        self.config = folder / "station.toml"
        self.log = folder / "daemon.log"
        self.clock_file = folder / "clock-offset"
        self.base_url = f"http://127.0.0.1:{api_port}"
        self._line_url, self._broker, self._station_id = line_url, broker, station_id
        self._api_port, self._shifter, self._pumps = api_port, shifter, pumps
        self._process: asyncio.subprocess.Process | None = None
        self._pump_output: asyncio.Task[None] | None = None
        self._killed = False

    def prepare(self) -> None:
        _, public = generate(self.folder / "keys")
        self.config.write_text(station_toml(
            line_url=self._line_url, db=self.db, api_port=self._api_port, pumps=self._pumps,
            baudrate=9600, station_id=self._station_id, auto_from=self._pumps // 2 + 1,
            # Pre-authorizations nobody lifts for expire soon, not blocking the next customer.
            sections=("[controller]\nlift_timeout_seconds = 20\n"
                      f'[sync]\nbroker = "{self._broker}"\ncloud_public_key = "{public}"\n')),
            "utf-8")
        with Store.open(self.db) as store:
            for name, (role, pin) in USERS.items():
                store.upsert_user(name, role=role, pin=pin)
        self.clock_file.write_bytes(struct.pack("=q", 0))

    # ---- the process -----------------------------------------------------------------------

    async def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "LD_PRELOAD": str(self._shifter),
               "CLOCKSHIFT_FILE": str(self.clock_file)}
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "edge.cli", "run", "--config", str(self.config),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=env, preexec_fn=die_with_parent)
        self._killed = False
        self._pump_output = asyncio.create_task(self._copy_output(self._process))
        deadline = time.monotonic() + START_TIMEOUT
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2) as client:
            while True:
                if self._process.returncode is not None:
                    await self._drain()
                    raise BenchError(f"the daemon exited {self._process.returncode} at start:\n"
                                     f"{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/api/v1/health")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise BenchError(f"the daemon did not answer within {START_TIMEOUT} s:\n"
                                     f"{self.log_tail()}")
                await asyncio.sleep(0.1)

    async def _copy_output(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        # A local file whose appends take microseconds: not worth a thread.
        with open(self.log, "ab") as log:  # noqa: ASYNC230
            while line := await process.stdout.readline():
                log.write(line)
                log.flush()

    async def _drain(self) -> None:
        if self._pump_output is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._pump_output, 5)

    def exited(self) -> bool:
        """The daemon ended without being killed here (a crash, or an exit on an error)."""
        return (self._process is not None and self._process.returncode is not None
                and not self._killed)

    async def kill(self) -> None:
        process = self._require()
        self._killed = True
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGKILL)
        await process.wait()
        await self._drain()

    async def stop(self) -> int:
        process = self._require()
        self._killed = True
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()
        await self._drain()
        assert process.returncode is not None
        return process.returncode

    def _require(self) -> asyncio.subprocess.Process:
        if self._process is None:
            raise BenchError("the daemon was never started")
        return self._process

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def log_count(self, text: str) -> int:
        """Lines of the daemon's log (all its lives) that contain `text`."""
        try:
            with open(self.log, encoding="utf-8", errors="replace") as log:
                return sum(text in line for line in log)
        except OSError:
            return 0

    # ---- faults ----------------------------------------------------------------------------

    def fill_disk(self) -> None:
        """Every write the daemon makes to a file fails from now on (EFBIG, as ENOSPC would)."""
        pid = self._require().pid
        _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (0, hard))

    def free_disk(self) -> None:
        process = self._require()
        if process.returncode is not None:
            return  # died meanwhile; the next start has no limit
        _, hard = resource.prlimit(process.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (hard, hard))

    def shift_clock(self, offset_seconds: int) -> None:
        """The daemon's wall clock runs `offset_seconds` off from now on (its monotonic not)."""
        with open(self.clock_file, "r+b") as file:
            file.write(struct.pack("=q", offset_seconds * 1_000_000_000))

    # ---- what the database holds -------------------------------------------------------------

    def _query(self, sql: str) -> list[Any]:
        with contextlib.closing(sqlite3.connect(self.db, timeout=10)) as conn:
            return conn.execute(sql).fetchall()

    def sale_count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM sales")[0][0])

    def event_count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM events")[0][0])

    def event_seqs(self) -> list[int]:
        return [int(row[0]) for row in self._query("SELECT seq FROM events ORDER BY seq")]

    def sales(self) -> list[StoredSale]:
        rows = self._query("SELECT id, pump, logical, volume, amount, totals_volume_before, "
                           "totals_volume_after FROM sales ORDER BY seq")
        return [StoredSale(id_, FIRST_ADDRESS + pump - 1, logical, Decimal(volume),
                           Decimal(amount), None if before is None else Decimal(before),
                           Decimal(after))
                for id_, pump, logical, volume, amount, before, after in rows]


class Attendant:
    """Authorizes waiting customers on the attendant pumps, as a person at the console would."""

    def __init__(self, station: StationProcess, *, attendant_pumps: tuple[int, ...]) -> None:
        self.station = station
        self.pumps = attendant_pumps
        self.attempts: list[Attempt] = []
        self._client = httpx.AsyncClient(base_url=station.base_url, timeout=10)
        self._task: asyncio.Task[None] | None = None
        self._tried: dict[int, float] = {}

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run(), name="attendant")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._client.aclose()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.3)
            with contextlib.suppress(httpx.HTTPError):
                for nozzle in await self._nozzles("calling"):
                    if time.monotonic() - self._tried.get(nozzle, 0.0) > 1.0:
                        self._tried[nozzle] = time.monotonic()
                        await self.authorize(nozzle)

    async def until_refused(self, seconds: float) -> bool:
        """Ask for authorizations (any nozzle of the attendant pumps, whatever its state: the
        station must refuse for storage before anything else, and its pumps may all be starting
        up or settling when the disk fills) until one is refused for storage or `seconds`
        pass; whether one was."""
        return await self._until(lambda a: a.status == 503 and a.code == "storage_unavailable",
                                 seconds, states=None)

    async def until_accepted(self, seconds: float) -> bool:
        """Ask for authorizations until one is granted or `seconds` pass; whether one was."""
        return await self._until(lambda a: a.status == 202, seconds)

    async def _until(self, wanted: Callable[[Attempt], bool], seconds: float, *,
                     states: tuple[str, ...] | None = ("idle", "calling")) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                for nozzle in await self._nozzles(*(states or ())):
                    if wanted(await self.authorize(nozzle)):
                        return True
            await asyncio.sleep(0.5)
        return False

    async def _nozzles(self, *states: str) -> list[int]:
        response = await self._request("GET", "/api/v1/forecourt")
        if response.status_code != 200:
            return []
        return [n["number"] for p in response.json()["pumps"] if p["number"] in self.pumps
                for n in p["nozzles"] if not states or n["state"] in states]

    async def authorize(self, nozzle: int) -> Attempt:
        sent = time.monotonic()
        response = await self._request("POST", f"/api/v1/nozzles/{nozzle}/authorize", json={})
        code = None
        with contextlib.suppress(ValueError, KeyError, TypeError):
            code = response.json()["error"]["code"]
        attempt = Attempt(sent, time.monotonic(), response.status_code, code)
        self.attempts.append(attempt)
        return attempt

    def answers(self) -> dict[str, int]:
        """How the station answered, by status and error code: {"202": 40, "503 ...": 3}."""
        found: dict[str, int] = {}
        for a in self.attempts:
            key = f"{a.status} {a.code}" if a.code else str(a.status)
            found[key] = found.get(key, 0) + 1
        return found

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self._client.request(method, path, **kwargs)
        if response.status_code == 401:  # a restart, or a clock step that expired the token
            await self._login()
            response = await self._client.request(method, path, **kwargs)
        return response

    async def _login(self) -> None:
        user = "att"
        r = await self._client.post("/api/v1/session", json={"user": user, "pin": USERS[user][1]})
        if r.status_code == 200:
            self._client.headers["Authorization"] = f"Bearer {r.json()['token']}"
