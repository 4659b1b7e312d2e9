"""`forecourt run` as a real child process, for tests that kill it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx

from tests.e2e.conftest import USERS
from tests.helpers import wait_until


class Daemon:
    """`forecourt run` as a real child process."""

    def __init__(self, config: Path, port: int) -> None:
        self.config = config
        self.port = port
        self.process: asyncio.subprocess.Process | None = None
        self.log = config.parent / "daemon.log"

    async def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "edge.cli", "run", "--config", str(self.config),
                stdout=log, stderr=log)
        await wait_until(self._healthy, timeout=20, what="the daemon's API")

    async def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.returncode is not None:
            raise AssertionError(f"daemon exited {self.process.returncode}: "
                                 f"{self.log.read_text(errors='replace')[-2000:]}")
        try:
            async with httpx.AsyncClient() as client:
                r = await client.get(f"http://127.0.0.1:{self.port}/api/v1/health", timeout=1)
                return r.status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)

    async def wait(self) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), 20)

    async def client(self, user: str = "att") -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=15)
        r = await client.post("/api/v1/session", json={"user": user, "pin": USERS[user][1]})
        assert r.status_code == 200, r.text
        client.headers["Authorization"] = f"Bearer {r.json()['token']}"
        return client
