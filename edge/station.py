"""The daemon: store, ledger, forecourt and API put together, started and stopped in order.

Start: open the store (migrations), seed prices, open every line and read every pump (recovery
happens per pump as it answers), then serve the API and tell systemd we are ready.
Stop (SIGTERM/SIGINT): stop taking requests, cancel the pump jobs (a sale being written finishes
in the ledger's thread: its transaction commits or rolls back whole), close the lines and the
store, exit 0.

Every long-running service runs under one supervisor (`edge/services.py`): the forecourt (its
lines and pumps), the API, the store probe and the watchdog are critical (one that dies stops
the station in the same order, and `run()` raises `ServiceFailed`: exit 1, systemd restarts it);
the printer, voice, tank gauges, cloud link feed, app orders, price schedules and housekeeping
are peripheral (restarted in place, health `degraded` meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
import uuid
from collections.abc import Callable, Generator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import uvicorn

from domain.model import Sale, sale_to_api
from edge import __version__
from edge.announcer import Announcer
from edge.api.app import create_app
from edge.api.auth import Sessions
from edge.audit import command_auditor
from edge.backups import last_backup
from edge.books.commands import ACCOUNT_SCHEMAS, account_handlers
from edge.books.parts import Books
from edge.clockwatch import ClockWatch
from edge.commands import CommandHandlers
from edge.config import StationConfig, Sync
from edge.forecourt import Forecourt
from edge.hub import EventHub
from edge.ledger import Ledger
from edge.notify import SystemdNotifier
from edge.orders import Orders
from edge.outbox import LedgerOutbox
from edge.pricing import PriceScheduler
from edge.receipts import ReceiptService
from edge.services import ServiceFailed, Services, ServiceState
from edge.shifts import ShiftService, nozzle_grades
from edge.store import Store, StoreUnavailable
from edge.tanks import TankMonitor
from sync.envelope import event_envelope
from sync.inbox import Inbox
from sync.keys import load_public_key
from sync.link import CloudLink
from sync.mqtt import link_options
from sync.schemas import SCHEMAS

log = logging.getLogger(__name__)

CLOCK_WATCH_INTERVAL = 1.0  # seconds between two looks at the wall clock against the monotonic
API_CLOSE_SECONDS = 3  # seconds open connections get to close at a stop (uvicorn takes an int)


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
        self.services = Services(on_fatal=self._service_failed)
        self.store: Store
        self.ledger: Ledger
        self.forecourt: Forecourt
        self.orders: Orders
        self.pricing: PriceScheduler
        self.commands: CommandHandlers
        self.shifts: ShiftService
        self.link: CloudLink | None = None
        self.receipts: ReceiptService | None = None
        self.announcer: Announcer | None = None
        self.tanks: TankMonitor | None = None
        self.books: Books | None = None  # deliveries, non-sale fuel, month close, accounts
        self.port: int | None = None
        self.clock_watch = ClockWatch()

    def now(self) -> datetime:
        return self.clock().astimezone(self.zone)

    def sale_view(self, sale: Sale) -> dict[str, Any]:
        return sale_to_api(sale, self.zone)

    async def health(self) -> dict[str, Any]:
        lines = self.forecourt.lines_online()
        backlog = await self.ledger.read(self.store.outbox_backlog)
        pumps = self.forecourt.problems()
        degraded = (not self.ledger.writable or not all(line["online"] for line in lines)
                    or bool(self.services.degraded()) or bool(pumps))
        body: dict[str, Any] = {
            "status": "degraded" if degraded else "ok",
            "station_id": self.config.station.id,
            "version": self.version,
            "boot_id": self.boot_id,
            "lines": lines,
            "storage": {"writable": self.ledger.writable,
                        "problem": self.ledger.unavailable_reason},
            "sync": {"connected": False,
                     **(self.link.health() if self.link is not None else {}),
                     "backlog": backlog, "configured": self.config.sync is not None},
            "printer": self.receipts.status() if self.receipts is not None else None,
            "clock": {"steps": self.clock_watch.steps,
                      "last_step_seconds": self.clock_watch.last_step},
            "services": self.services.views(),
            "pumps": pumps,
            # The last verified copy made by `forecourt db backup --dir` (edge/backups.py).
            "backup": last_backup(Path(self.config.storage.path), self.clock()),
        }
        return body

    def request_stop(self) -> None:
        self._stop.set()

    def _service_failed(self, failure: ServiceFailed) -> None:
        # A critical service died: stop in the same order as for SIGTERM; run() then raises.
        self._stop.set()

    async def run(self, *, install_signals: bool = True) -> None:
        loop = asyncio.get_running_loop()
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
            # A write past a file size limit (ulimit -f, LimitFSIZE=) must be a failed write the
            # store turns into fail-safe, like a full disk, not a signal that kills the daemon.
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
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
            # Before any pump is read: every sale from the first start on belongs to a shift.
            self.shifts = ShiftService(ledger=self.ledger, grades=nozzle_grades(cfg),
                                       station_name=cfg.station.name)
            try:
                await self.shifts.open_first()
            except StoreUnavailable as exc:
                log.error("cannot open the first shift now (%s); it opens on first use", exc)
            async with contextlib.AsyncExitStack() as stack:
                # Entered first, left last: every component below runs its loops under it and
                # stops them as it is left.
                services = await stack.enter_async_context(self.services)
                # The books are read first and hook into every pump as the forecourt starts,
                # before any pump is read (a non-sale fill recovered at start-up stays one).
                books = Books(cfg, self.ledger, zone=self.zone, clock=self.clock,
                              tanks=lambda: self.tanks.view if self.tanks else None,
                              receipts=lambda: self.receipts)
                await books.service.load()
                forecourt = await stack.enter_async_context(
                    Forecourt(cfg, self.ledger, clock=self.clock))
                books.service.attach(forecourt.pumps)
                self.books = books
                self.forecourt = forecourt
                # Its lines and pumps are critical: should one of their tasks die, wait() raises
                # and the station stops rather than sell on with a pump nobody follows.
                stack.push_async_callback(services.critical("forecourt", forecourt.wait).stop)
                self.orders = Orders(forecourt, self.ledger, clock=self.clock,
                                     lift_timeout=cfg.controller.lift_timeout)
                stack.callback(self.orders.close)
                await self.orders.start()
                stack.push_async_callback(services.peripheral("orders", self.orders.run).stop)
                self.pricing = PriceScheduler(forecourt, self.ledger, clock=self.clock)
                stack.push_async_callback(services.peripheral(
                    "books", books.service.run).stop)
                self.commands = CommandHandlers(orders=self.orders, prices=self.pricing,
                                                ledger=self.ledger, zone=self.zone)
                self.commands.data_sources["shift"] = self.shifts.data_source
                if cfg.tanks is not None:
                    self.tanks = await stack.enter_async_context(TankMonitor(
                        cfg.tanks, pumps=cfg.pumps, ledger=self.ledger, hub=self.hub,
                        clock=self.clock, zone=self.zone, services=services))
                    tanks = self.tanks
                    self.commands.data_sources["tanks"] = lambda request: tanks.view()
                if cfg.printer is not None:
                    self.receipts = await stack.enter_async_context(
                        ReceiptService.for_station(cfg, cfg.printer, self.ledger,
                                                   clock=self.clock, services=services))
                    self.shifts.receipts = self.receipts
                if cfg.voice is not None and cfg.voice.enabled:
                    self.announcer = await stack.enter_async_context(
                        Announcer.for_station(cfg.voice, cfg, self.ledger, clock=self.clock,
                                              services=services))
                if cfg.sync is not None:
                    # Entered last, left first: the link says "offline" before the rest stops,
                    # while its connection still runs; then its service is stopped. A link that
                    # dies is restarted in place (a peripheral service): sales go on.
                    link = await stack.enter_async_context(self._cloud_link(cfg.sync))
                    stack.push_async_callback(services.peripheral("cloud-link", link.wait).stop)
                    self.link = link
                await self._serve()
        finally:
            if hasattr(self, "ledger"):
                await asyncio.to_thread(self.ledger.close)
            await asyncio.to_thread(self.store.close)
            log.info("station stopped")
        failure = self.services.failure
        if failure is not None:
            # The station's last word (the command line logs it at critical): what died, why,
            # and the service's own traceback as the cause.
            raise failure from failure.error

    async def _serve(self) -> None:
        cfg = self.config
        tls: dict[str, Any] = {}
        if cfg.api.tls_cert is not None and cfg.api.tls_key is not None:
            # HTTPS by the daemon itself: PINs and tokens never cross the LAN in plain text,
            # and the throttle sees the real client address (no proxy in between).
            tls = {"ssl_certfile": str(cfg.api.tls_cert), "ssl_keyfile": str(cfg.api.tls_key)}
        server = _QuietServer(uvicorn.Config(
            create_app(self), host=cfg.api.host, port=cfg.api.port, log_level="warning",
            lifespan="off", access_log=False, ws_ping_interval=20,
            ws_max_size=cfg.api.max_request,
            # At a stop, connections that do not close by themselves (a console's WebSocket
            # whose TLS close never completes) are dropped after this, not waited for forever.
            timeout_graceful_shutdown=API_CLOSE_SECONDS, **tls))
        services = self.services
        own = [services.critical("api", lambda: self._serve_api(server)),
               services.critical("store-probe", self.ledger.probe),
               services.peripheral("price-schedules", self.pricing.run),
               services.peripheral("housekeeping", self._housekeeping),
               services.peripheral("clock-watch", self._watch_clock)]
        api = own[0]
        if self.notifier.watchdog_interval() is not None:
            own.append(services.critical("watchdog", self._watchdog))
        if cfg.api.redirect is not None:
            own.append(services.peripheral("http-redirect", self._serve_redirect))
        if self.link is not None:
            link = self.link
            own.append(services.peripheral("cloud-link-feed", lambda: self._feed_link(link)))
        try:
            while not server.started:
                if api.state is ServiceState.FAILED and api.error is not None:
                    # Not serving at all is a failed start (the port is taken), said as such.
                    raise api.error
                if services.failure is not None:
                    return  # another critical service died first: _run raises it
                await asyncio.sleep(0.05)
            self.port = server.servers[0].sockets[0].getsockname()[1]
            log.info("station %s ready: API on %s://%s:%d/, %d pumps on %d lines, cloud %s",
                     cfg.station.id, cfg.api.scheme, cfg.api.host, self.port,
                     len(self.forecourt.pumps),
                     len(self.forecourt.lines),
                     cfg.sync.broker if cfg.sync is not None else "off (offline)")
            self.notifier.ready(f"serving on {cfg.api.host}:{self.port}")
            self.started.set()
            await self._stop.wait()
            log.info("stopping: no new requests, finishing writes")
            self.notifier.stopping()
            server.should_exit = True
            await api.stop(cancel=False)
        finally:
            for service in reversed(own):
                await service.stop()

    async def _serve_api(self, server: uvicorn.Server) -> None:
        api = self.config.api
        try:
            await server.serve()
        except SystemExit:
            # uvicorn ends the process with sys.exit(3) when it cannot bind (its log line above
            # says why); here that is an error like any other, and systemd restarts the daemon.
            raise RuntimeError(f"cannot serve the API on {api.host}:{api.port} "
                               "(in use by another program?)") from None
        except Exception as exc:
            if not server.should_exit:
                raise
            # Closing the connections at an orderly stop: uvicorn's WebSocket shutdown raises
            # when a console's socket is already closing (websockets' InvalidState). The stop
            # goes on; this is no failure of the station.
            log.warning("API: a connection could not be closed cleanly at stop: %s: %s",
                        type(exc).__name__, exc)
            return
        if not server.should_exit:
            raise RuntimeError(f"the API on {api.host}:{api.port} stopped serving")

    async def _serve_redirect(self) -> None:
        """Plain HTTP on [api] redirect_listen, answering every request with a redirect to
        the HTTPS console (edge/api/redirect.py)."""
        from edge.api.hosts import HostPolicy
        from edge.api.redirect import redirect_app

        api = self.config.api
        assert api.redirect is not None
        host, port = api.redirect
        server = _QuietServer(uvicorn.Config(
            redirect_app(api.port, HostPolicy.for_listen(api.host, api.allowed_hosts)),
            host=host, port=port, log_level="warning", lifespan="off", access_log=False))
        # Stopped by cancellation (a peripheral service): uvicorn is asked to close its socket
        # and is waited for, so no listener outlives the station.
        serving = asyncio.ensure_future(server.serve())
        try:
            await asyncio.shield(serving)
        except SystemExit:
            raise RuntimeError(f"cannot serve the HTTP redirect on {host}:{port} "
                               "(in use by another program?)") from None
        except asyncio.CancelledError:
            server.should_exit = True
            with contextlib.suppress(Exception, SystemExit):
                await serving
            raise

    def _cloud_link(self, sync: Sync) -> CloudLink:
        public_key = load_public_key(sync.cloud_public_key)
        inbox = Inbox(station_id=self.config.station.id, public_key=public_key,
                      remember=self._remember_command,
                      handlers={**self.commands.mapping(),
                                **(account_handlers(self.books.service) if self.books else {})},
                      schemas={**SCHEMAS, **ACCOUNT_SCHEMAS},
                      clock=self.clock, audit=command_auditor(self.ledger))
        sid = self.config.station.id
        return CloudLink(station_id=sid, outbox=LedgerOutbox(self.ledger),
                         envelope=lambda event: event_envelope(sid, event, self.zone),
                         on_command=inbox.handle, live=self.forecourt.snapshot,
                         boot_id=self.boot_id, version=self.version, clock=self.now,
                         **link_options(sync))

    async def _remember_command(self, command_id: str, keep_until: datetime) -> bool:
        new: bool = await self.ledger.write(self.store.remember_command, command_id, keep_until)
        return new

    async def _feed_link(self, link: CloudLink) -> None:
        """Wake the link when events commit or the forecourt changes."""
        async with self.hub.subscribe() as subscription:
            while True:
                message = await subscription.get()
                if "seq" in message:
                    link.events_committed()
                elif message.get("type") == "pump.state":
                    link.live_changed()

    async def _housekeeping(self) -> None:
        while True:
            # Command ids are kept until their expiry has passed; then a replay is refused as
            # expired anyway.
            with contextlib.suppress(StoreUnavailable):
                await self.ledger.write(self.store.forget_commands, self.clock())
            await asyncio.sleep(3600)

    async def _watch_clock(self) -> None:
        while True:
            step = self.clock_watch.observe(time.time(), time.monotonic())
            if step is not None:
                log.warning("wall clock stepped by %+.0f s (NTP sync, RTC reset or a person): "
                            "sale and audit times jump here; sales, seq and timeouts are "
                            "unaffected; check chrony (`chronyc tracking`)", step)
            await asyncio.sleep(CLOCK_WATCH_INTERVAL)

    async def _watchdog(self) -> None:
        interval = self.notifier.watchdog_interval()
        assert interval is not None, "started only under a systemd watchdog"
        while True:
            # Pinged from the event loop: a wedged loop stops the pings and systemd restarts us.
            self.notifier.watchdog()
            await asyncio.sleep(interval)

