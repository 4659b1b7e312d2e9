"""The daemon: store, ledger, forecourt and API put together, started and stopped in order.

Start: open the store (migrations), seed prices, open every line and read every pump (recovery
happens per pump as it answers), then serve the API and tell systemd we are ready.
Stop (SIGTERM/SIGINT): stop taking requests, cancel the pump jobs (a sale being written finishes
in the ledger's thread: its transaction commits or rolls back whole), close the lines and the
store, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import uuid
from collections.abc import Callable, Generator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import uvicorn

from edge import __version__
from edge.api.app import create_app
from edge.api.auth import Sessions
from edge.config import StationConfig
from edge.forecourt import Forecourt
from edge.hub import EventHub
from edge.ledger import Ledger
from edge.model import Sale, sale_to_api
from edge.notify import SystemdNotifier
from edge.store import Store

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the station owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class Station:
    def __init__(self, config: StationConfig, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.config = config
        self.clock = clock
        self.version = __version__
        self.boot_id = uuid.uuid4().hex
        self.zone = ZoneInfo(config.station.timezone)
        self.hub = EventHub()
        self.sessions = Sessions(config.api.session_ttl, clock)
        self.notifier = SystemdNotifier()
        self.started = asyncio.Event()
        self._stop = asyncio.Event()
        self.store: Store
        self.ledger: Ledger
        self.forecourt: Forecourt
        self.port: int | None = None

    def now(self) -> datetime:
        return self.clock().astimezone(self.zone)

    def sale_view(self, sale: Sale) -> dict[str, Any]:
        return sale_to_api(sale, self.zone)

    async def health(self) -> dict[str, Any]:
        lines = self.forecourt.lines_online()
        backlog = await self.ledger.read(self.store.outbox_backlog)
        degraded = not self.ledger.writable or not all(line["online"] for line in lines)
        body: dict[str, Any] = {
            "status": "degraded" if degraded else "ok",
            "station_id": self.config.station.id,
            "version": self.version,
            "boot_id": self.boot_id,
            "lines": lines,
            "storage": {"writable": self.ledger.writable,
                        "problem": self.ledger.unavailable_reason},
            "sync": {"connected": False, "backlog": backlog,
                     "configured": self.config.sync is not None},
        }
        return body

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self, *, install_signals: bool = True) -> None:
        loop = asyncio.get_running_loop()
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
        try:
            await self._run()
        finally:
            if install_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)

    async def _run(self) -> None:
        cfg = self.config
        self.store = await asyncio.to_thread(Store.open, cfg.storage.path, zone=self.zone)
        self.ledger = Ledger(self.store, self.hub, zone=self.zone)
        try:
            async with Forecourt(cfg, self.ledger, clock=self.clock) as forecourt:
                self.forecourt = forecourt
                server = _QuietServer(uvicorn.Config(
                    create_app(self), host=cfg.api.host, port=cfg.api.port, log_level="warning",
                    lifespan="off", access_log=False, ws_ping_interval=20))
                async with asyncio.TaskGroup() as tasks:
                    serving = tasks.create_task(server.serve(), name="api")
                    probe = tasks.create_task(self.ledger.probe(), name="store-probe")
                    watchdog = tasks.create_task(self._watchdog(), name="watchdog")
                    while not server.started:
                        if serving.done():
                            raise RuntimeError(f"cannot serve the API on {cfg.api.host}:"
                                               f"{cfg.api.port}")
                        await asyncio.sleep(0.05)
                    self.port = server.servers[0].sockets[0].getsockname()[1]
                    log.info("station %s ready: API on http://%s:%d/, %d pumps on %d lines",
                             cfg.station.id, cfg.api.host, self.port, len(forecourt.pumps),
                             len(forecourt.lines))
                    self.notifier.ready(f"serving on {cfg.api.host}:{self.port}")
                    self.started.set()
                    await self._stop.wait()
                    log.info("stopping: no new requests, finishing writes")
                    self.notifier.stopping()
                    server.should_exit = True
                    await serving
                    probe.cancel()
                    watchdog.cancel()
        finally:
            if hasattr(self, "ledger"):
                await asyncio.to_thread(self.ledger.close)
            await asyncio.to_thread(self.store.close)
            log.info("station stopped")

    async def _watchdog(self) -> None:
        interval = self.notifier.watchdog_interval()
        if interval is None:
            return
        while True:
            # Pinged from the event loop: a wedged loop stops the pings and systemd restarts us.
            self.notifier.watchdog()
            await asyncio.sleep(interval)

