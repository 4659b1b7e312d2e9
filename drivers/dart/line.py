"""I/O shell of one DART line: owns the port, runs a ``DartBus`` (PROTOCOLS.md, DART section).

pyserial has no asyncio API and its ``socket://``, ``loop://`` and tty ports differ in what
their file descriptors can do, so one thread per line does the blocking reads and writes and
the event loop only submits commands and receives events. The thread and the loop share the
core under a lock that is never held across I/O.

The port is opened once with every setting (PROTOCOLS.md, "Library facts": a later settings
change on a pty raises ``termios.error``), which is also why the read timeout is a fixed slice
rather than the core's next deadline: changing ``timeout`` reconfigures the port.

A port that cannot be opened, or that drops, is retried here and only here, under the named
policy `domain.retry.LINE_RECONNECT` (capped, jittered exponential backoff, run by tenacity);
meanwhile every pump is offline and commands fail at once.
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

from .bus import BusStats, DartBus
from .errors import DartCommandError
from .events import BusEvent, CommandDone, CommandFailed, LineNoise, PumpOffline, PumpOnline
from .transactions import Command, UnknownTransaction

__all__ = ["DartLine", "LineStats"]

log = logging.getLogger(__name__)

READ_SLICE = 0.005
"""Seconds a read blocks at most: the resolution of the core's timers."""

WRITE_TIMEOUT = 1.0
"""Seconds a write may block before the port is deemed gone."""

MAX_READ = 4096
"""Bytes read at most in one go, so that a babbling line cannot starve the timers."""


class _PortFailed(Exception):
    """The port could not be opened, or failed before it carried any data: retry it."""


class _Port(Protocol):
    """What the shell uses of a pyserial port (the stubs type ``serial_for_url`` loosely)."""

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


class DartLine:
    """One RS-485 DART line (any pyserial URL) with its pumps; an async context manager.

    ``url`` is anything ``serial.serial_for_url`` takes (``/dev/ttyUSB0``,
    ``socket://10.0.0.9:4001``). ``parity`` is DART's odd parity unless a pty (Linux drops
    parity there) or a converter needs otherwise. ``reply_timeout`` is the first-byte window
    after a request is on the wire; ``poll_interval`` the idle gap between poll rounds (0: as
    fast as the pumps answer). ``max_retries`` NAKs fail a command; ``offline_after``
    consecutive missed exchanges take a pump offline. A port that cannot be opened or drops is
    retried after ``reconnect_delay``, doubling up to ``reconnect_delay_max``, jittered
    (``LINE_RECONNECT`` with these numbers).
    ``max_queued_events`` bounds the events not yet read; beyond it the oldest are dropped.
    """

    def __init__(
        self,
        url: str,
        addresses: Sequence[int],
        *,
        baudrate: int = 9600,
        parity: str = "O",
        reply_timeout: float = 0.025,
        poll_interval: float = 0.0,
        name: str = "line",
        max_retries: int = 3,
        offline_after: int = 3,
        reconnect_delay: float = 0.5,
        reconnect_delay_max: float = 30.0,
        max_queued_events: int = 10_000,
        ack_poll: Sequence[int] = (),
    ) -> None:
        self._url = url
        self._baudrate = baudrate
        self._parity = parity
        self._name = name
        self._bus = DartBus(
            addresses,
            baudrate=baudrate,
            reply_timeout=reply_timeout,
            max_retries=max_retries,
            offline_after=offline_after,
            poll_interval=poll_interval,
            ack_poll=ack_poll,
        )
        self._reconnect = LINE_RECONNECT.but(first=reconnect_delay, cap=reconnect_delay_max)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._finished: asyncio.Future[None] | None = None
        self._queue: asyncio.Queue[BusEvent | None] = asyncio.Queue(max_queued_events)
        self._waiters: dict[int, tuple[int, asyncio.Future[None]]] = {}
        self._closed = False
        self._connected = False
        self._failing = False  # a port failure was logged and the port has not worked since
        self._carried_data = False  # the current connection has received bytes
        self._port_failures = 0
        self._events_dropped = 0

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> DartLine:
        if self._thread is not None:
            raise RuntimeError("a DartLine runs once")
        self._loop = asyncio.get_running_loop()
        self._finished = self._loop.create_future()
        self._thread = threading.Thread(target=self._run, name=f"dart-{self._name}", daemon=True)
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
            # The thread sees the stop flag within one read slice (or one connect attempt).
            self._thread.join()
            self._closed = True
            for address, future in self._waiters.values():
                if not future.done():
                    future.set_exception(DartCommandError(address, "line closed"))
            self._waiters.clear()
            self._put(None)

    # ------------------------------------------------------------ API

    @property
    def name(self) -> str:
        return self._name

    @property
    def online(self) -> dict[int, bool]:
        with self._lock:
            return self._bus.online()

    @property
    def stats(self) -> LineStats:
        with self._lock:
            bus = replace(self._bus.stats)
        return LineStats(bus, self._connected, self._port_failures, self._events_dropped)

    async def command(
        self,
        address: int,
        commands: Sequence[Command | UnknownTransaction],
        # A parameter rather than the caller's asyncio.timeout(): the pump-level deadline is
        # part of the line's interface, and on expiry the block is withdrawn from the queue.
        timeout: float = 2.0,  # noqa: ASYNC109
    ) -> None:
        """Send one DATA block; return once the pump ACKed it, else raise DartCommandError.

        The error's reason is ``"NAKed 3 times"``, ``"offline"``, ``"line down"``,
        ``"line closed"`` or ``"timeout"``. After a timeout a block that never went on the wire
        is withdrawn; one that did may still reach the pump (its TX# keeps it from being
        applied twice), so the caller should read the pump's status rather than assume.
        """
        if self._loop is None or self._closed or self._stop.is_set():
            raise DartCommandError(address, "line not running")
        future: asyncio.Future[None] = self._loop.create_future()
        with self._lock:
            request_id = self._bus.submit(address, commands)
        # Registered before the next await, so the outcome cannot be delivered before it.
        self._waiters[request_id] = (address, future)
        try:
            async with asyncio.timeout(timeout):
                await future
        except TimeoutError:
            raise DartCommandError(address, "timeout") from None
        finally:
            if self._waiters.pop(request_id, None) is not None:
                with self._lock:
                    self._bus.cancel(request_id)

    async def events(self) -> AsyncIterator[BusEvent]:
        """Pump events in line order; ends when the line is closed.

        ``CommandDone``/``CommandFailed`` are not here: ``command()`` consumes them.
        """
        while True:
            event = await self._queue.get()
            if event is None:
                self._queue.put_nowait(None)  # let any other reader end too
                return
            yield event

    # ------------------------------------------------------------ loop side

    def _deliver(self, events: list[BusEvent]) -> None:
        for event in events:
            if isinstance(event, CommandDone | CommandFailed):
                waiter = self._waiters.pop(event.request_id, None)
                if waiter is not None and not waiter[1].done():
                    if isinstance(event, CommandDone):
                        waiter[1].set_result(None)
                    else:
                        waiter[1].set_exception(DartCommandError(event.address, event.reason))
                continue
            if isinstance(event, PumpOnline):
                log.info("%s: pump 0x%02X online", self._name, event.address)
            elif isinstance(event, PumpOffline) and not self._stop.is_set():
                log.warning("%s: pump 0x%02X offline", self._name, event.address)
            elif isinstance(event, LineNoise):
                log.debug("%s: noise: %s", self._name, event.error)
            self._put(event)

    def _put(self, event: BusEvent | None) -> None:
        if self._queue.full():
            # Nobody reads fast enough: the oldest event goes, the line keeps running.
            self._queue.get_nowait()
            self._events_dropped += 1
            if self._events_dropped == 1:
                log.error("%s: event queue full, dropping the oldest events", self._name)
        self._queue.put_nowait(event)

    # ------------------------------------------------------------ thread side

    def _run(self) -> None:
        # The line's reconnect policy runs the attempts (tenacity, sleeping on the stop flag so
        # that closing never waits out a backoff). `_failed` logs the first failure at error and
        # repeats at debug; the recovery is logged when data flows again, not at a mere open.
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
                    # A connection that worked, then dropped: a fresh run of attempts (the
                    # backoff starts over), after the policy's first wait.
                    self._pause(self._reconnect.wait().delay(1))
        finally:
            self._call_soon(self._set_finished)

    def _pause(self, seconds: float) -> None:
        self._stop.wait(seconds)  # closing the line cuts the wait short

    def _connect_and_serve(self) -> None:
        """One connection: returns when stopped or after a connection that carried data;
        raises _PortFailed when the port could not be opened or failed before any data."""
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
        """Run the core on an open port until stopped or until the port fails."""
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
        """Log a port failure: the first at error, repeats at debug until it works again."""
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
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is left to tell
            self._loop.call_soon_threadsafe(callback, *args)
