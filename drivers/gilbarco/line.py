"""I/O shell of one Gilbarco two-wire line: owns the port, runs a ``GilbarcoBus``.

The same shape as the DART line's shell (docs/dart.md): pyserial has no asyncio API, so one
thread per line does the blocking reads and writes and the event loop submits requests and
receives events; the thread and the loop share the core under a lock never held across I/O. The
port is opened once with every setting (8E1 at 5787 baud unless told otherwise; PROTOCOLS.md,
"Library facts": a later settings change on a pty raises ``termios.error``).

A port that cannot be opened, or that drops, is retried here and only here, under the named
policy ``domain.retry.LINE_RECONNECT``; meanwhile every pump is offline and requests fail at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Protocol, cast

import serial

from domain.retry import LINE_RECONNECT

from .bus import BusStats, GilbarcoBus
from .commands import DigitsMode, PumpStatus
from .errors import GilbarcoCommandError
from .events import BusEvent, CommandDone, CommandFailed, LineNoise, PumpOffline, PumpOnline
from .requests import AllStop, Answer, Request
from .timing import DEFAULT_BAUDRATE, OFFLINE_AFTER, Timing

__all__ = ["GilbarcoLine", "LineStats"]

log = logging.getLogger(__name__)

READ_SLICE = 0.005
"""Seconds a read blocks at most: the resolution of the core's timers."""

WRITE_TIMEOUT = 1.0
MAX_READ = 4096


class _PortFailed(Exception):
    """The port could not be opened, or failed before it carried any data: retry it."""


class _Port(Protocol):
    @property
    def in_waiting(self) -> int: ...
    def read(self, size: int = 1) -> bytes: ...
    def write(self, data: bytes, /) -> int | None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class LineStats:
    """A snapshot of a line's counters, for metrics."""

    bus: BusStats
    connected: bool
    port_failures: int
    events_dropped: int


class GilbarcoLine:
    """One Gilbarco line (any pyserial URL) with pumps 1..16; an async context manager.

    ``echo`` skips the master's own bytes that a current-loop converter sends back. ``timing``
    holds the answer windows and pauses; ``offline_after`` missed answers in a row take a pump
    offline. ``reconnect_delay`` and ``reconnect_delay_max`` tune ``LINE_RECONNECT``.
    """

    def __init__(
        self,
        url: str,
        pumps: Sequence[int],
        *,
        baudrate: int = DEFAULT_BAUDRATE,
        parity: str = "E",
        mode: DigitsMode = DigitsMode.STANDARD,
        echo: bool = False,
        timing: Timing | None = None,
        poll_interval: float = 0.0,
        offline_after: int = OFFLINE_AFTER,
        name: str = "line",
        reconnect_delay: float = LINE_RECONNECT.first,
        reconnect_delay_max: float = LINE_RECONNECT.cap,
        max_queued_events: int = 10_000,
    ) -> None:
        self._url = url
        self._baudrate = baudrate
        self._parity = parity
        self._name = name
        self._bus = GilbarcoBus(
            pumps,
            mode=mode,
            baudrate=baudrate,
            echo=echo,
            timing=timing,
            offline_after=offline_after,
            poll_interval=poll_interval,
        )
        self._reconnect = LINE_RECONNECT.but(first=reconnect_delay, cap=reconnect_delay_max)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._finished: asyncio.Future[None] | None = None
        self._queue: asyncio.Queue[BusEvent | None] = asyncio.Queue(max_queued_events)
        self._waiters: dict[int, tuple[int | None, asyncio.Future[Answer]]] = {}
        self._closed = False
        self._connected = False
        self._failing = False
        self._carried_data = False
        self._port_failures = 0
        self._events_dropped = 0
        self._echo_told = False

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> GilbarcoLine:
        if self._thread is not None:
            raise RuntimeError("a GilbarcoLine runs once")
        self._loop = asyncio.get_running_loop()
        self._finished = self._loop.create_future()
        self._thread = threading.Thread(target=self._run, name=f"gilbarco-{self._name}",
                                        daemon=True)
        self._thread.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        assert self._thread is not None and self._finished is not None
        try:
            await asyncio.shield(self._finished)
        finally:
            self._thread.join()
            self._closed = True
            for pump, future in self._waiters.values():
                if not future.done():
                    future.set_exception(GilbarcoCommandError(pump, "line closed"))
            self._waiters.clear()
            self._put(None)

    # ------------------------------------------------------------ API

    @property
    def name(self) -> str:
        return self._name

    @property
    def mode(self) -> DigitsMode:
        return self._bus.mode

    @property
    def timing(self) -> Timing:
        return self._bus.timing

    @property
    def online(self) -> dict[int, bool]:
        with self._lock:
            return self._bus.online()

    def status(self, pump: int) -> PumpStatus | None:
        with self._lock:
            return self._bus.status(pump)

    @property
    def stats(self) -> LineStats:
        with self._lock:
            bus = replace(self._bus.stats)
        return LineStats(bus, self._connected, self._port_failures, self._events_dropped)

    async def request(
        self,
        pump: int | None,
        request: Request | AllStop,
        # The deadline is part of the line's interface: on expiry a request that has not gone
        # on the wire is withdrawn from the queue.
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> Answer:
        """One request; its answer (None for requests that get none), else GilbarcoCommandError.

        The error's reason is ``"offline"``, ``"line down"``, ``"line closed"``, ``"timeout"``,
        ``"no answer"`` or ``"not ready for data (status X)"``.
        """
        if self._loop is None or self._closed or self._stop.is_set():
            raise GilbarcoCommandError(pump, "line not running")
        future: asyncio.Future[Answer] = self._loop.create_future()
        with self._lock:
            request_id = self._bus.submit(pump, request)
        self._waiters[request_id] = (pump, future)
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise GilbarcoCommandError(pump, "timeout") from None
        finally:
            if self._waiters.pop(request_id, None) is not None:
                with self._lock:
                    self._bus.cancel(request_id)

    async def all_stop(self, timeout: float = 2.0) -> None:  # noqa: ASYNC109
        """0xFC: every pump of the line stops (no pump answers it)."""
        await self.request(None, AllStop(), timeout)

    async def events(self) -> AsyncIterator[BusEvent]:
        """Pump events in line order (not ``CommandDone``/``CommandFailed``); ends at close."""
        while True:
            event = await self._queue.get()
            if event is None:
                self._queue.put_nowait(None)
                return
            yield event

    # ------------------------------------------------------------ loop side

    def _deliver(self, events: list[BusEvent]) -> None:
        for event in events:
            if isinstance(event, CommandDone | CommandFailed):
                waiter = self._waiters.pop(event.request_id, None)
                if waiter is not None and not waiter[1].done():
                    if isinstance(event, CommandDone):
                        waiter[1].set_result(event.answer)
                    else:
                        waiter[1].set_exception(GilbarcoCommandError(event.pump, event.reason))
                continue
            if isinstance(event, PumpOnline):
                log.info("%s: pump %d online", self._name, event.pump)
            elif isinstance(event, PumpOffline) and not self._stop.is_set():
                log.warning("%s: pump %d offline", self._name, event.pump)
            elif isinstance(event, LineNoise):
                log.debug("%s: noise: %s", self._name, event.error)
                if event.error.reason == "an echo on a line without echo" and not self._echo_told:
                    self._echo_told = True
                    log.warning("%s: the converter sends back what the controller writes: set "
                                "echo = true for this line (docs/gilbarco.md, wiring)",
                                self._name)
            self._put(event)

    def _put(self, event: BusEvent | None) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self._events_dropped += 1
            if self._events_dropped == 1:
                log.error("%s: event queue full, dropping the oldest events", self._name)
        self._queue.put_nowait(event)

    # ------------------------------------------------------------ thread side

    def _run(self) -> None:
        retrying = self._reconnect.retrying(
            log, f"{self._name}: {self._url}", retry_on=(_PortFailed,), until=self._stop.is_set,
            sleep=self._pause, log_failures=False)
        try:
            while not self._stop.is_set():
                try:
                    retrying(self._connect_and_serve)
                except _PortFailed:
                    continue  # stopped while the port was failing
                if not self._stop.is_set():
                    # A connection that worked, then dropped: the backoff starts over.
                    self._pause(self._reconnect.wait().delay(1))
        finally:
            self._call_soon(self._set_finished)

    def _pause(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _connect_and_serve(self) -> None:
        self._carried_data = False
        try:
            port = cast(
                _Port,
                serial.serial_for_url(
                    self._url,
                    baudrate=self._baudrate,
                    bytesize=serial.EIGHTBITS,
                    parity=self._parity,
                    stopbits=serial.STOPBITS_ONE,
                    timeout=READ_SLICE,
                    write_timeout=WRITE_TIMEOUT,
                ),
            )
        except Exception as exc:  # any failure to open is retried, never fatal
            self._failed(f"cannot open {self._url}: {exc}")
            self._connection_lost()
            raise _PortFailed from exc
        try:
            self._serve(port)
        except Exception as exc:  # a dropped port, or a bug: retried alike
            self._failed(f"{self._url}: {exc}")
        finally:
            self._connected = False
            port.close()
        self._connection_lost()
        if not self._stop.is_set() and not self._carried_data:
            raise _PortFailed

    def _serve(self, port: _Port) -> None:
        bus = self._bus
        self._connected = True
        log.debug("%s: %s open", self._name, self._url)
        while not self._stop.is_set():
            data = port.read(1)
            if data:
                waiting = port.in_waiting
                while waiting and len(data) < MAX_READ:
                    data += port.read(waiting)
                    waiting = port.in_waiting
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("%s < %s", self._name, data.hex(" "))
                if not self._carried_data:
                    self._carried_data = True
                    if self._failing:
                        self._failing = False
                        log.info("%s: %s working again", self._name, self._url)
            with self._lock:
                now = time.monotonic()
                if data:
                    bus.receive_data(data, now)
                bus.handle_timeout(now)
                out = bus.data_to_send(now)
                events = self._drain()
            self._deliver_soon(events)
            if out:
                port.write(out)
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("%s > %s", self._name, out.hex(" "))

    def _failed(self, message: str) -> None:
        self._port_failures += 1
        if self._failing:
            log.debug("%s: %s", self._name, message)
        else:
            self._failing = True
            log.error("%s: %s (retrying)", self._name, message)

    def _connection_lost(self) -> None:
        with self._lock:
            self._bus.connection_lost(time.monotonic())
            events = self._drain()
        self._deliver_soon(events)

    def _drain(self) -> list[BusEvent]:
        events = []
        while (event := self._bus.next_event()) is not None:
            events.append(event)
        return events

    def _set_finished(self) -> None:
        if self._finished is not None and not self._finished.done():
            self._finished.set_result(None)

    def _deliver_soon(self, events: list[BusEvent]) -> None:
        if events:
            self._call_soon(self._deliver, events)

    def _call_soon(self, callback: Callable[..., object], *args: object) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(callback, *args)
