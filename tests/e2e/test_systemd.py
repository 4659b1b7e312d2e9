"""systemd Type=notify: READY=1 once serving, WATCHDOG=1 pings, STOPPING=1 on the way out."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from simulator.control import Simulator
from tests.e2e.conftest import start_station, write_config
from tests.helpers import wait_until


async def test_the_daemon_notifies_systemd(sim: Simulator, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    address = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # a ping every 0.1 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    received: list[str] = []

    def drain() -> list[str]:
        while True:
            try:
                received.extend(listener.recv(4096).decode().splitlines())
            except BlockingIOError:
                return received

    assert sim.url is not None
    station, task = await start_station(write_config(tmp_path, sim.url))
    try:
        await wait_until(lambda: "READY=1" in drain(), timeout=5, what="READY=1")
        await wait_until(lambda: drain().count("WATCHDOG=1") >= 3, timeout=5,
                         what="watchdog pings")
    finally:
        station.request_stop()
        await asyncio.wait_for(task, 20)
    assert "STOPPING=1" in drain()
    listener.close()
