"""Serving a simulated Gilbarco line over TCP (as a serial-to-Ethernet converter does) or a pty.

The same two timing modes as the DART simulator's server (simulator/README.md): unpaced, answers
leave as soon as they are due; line-faithful, bytes leave at the line's speed, 11 bits each
(8E1: 1.9 ms a byte at 5787 baud), after a turnaround, and the converter's echo too. One master
at a time: a new TCP connection replaces the previous one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import tty
from collections.abc import Callable
from types import TracebackType
from typing import Protocol, Self

__all__ = [
    "BITS_PER_BYTE",
    "LINE_FAITHFUL_TURNAROUND",
    "LineEngine",
    "PtyLineServer",
    "TcpLineServer",
]

log = logging.getLogger(__name__)

BITS_PER_BYTE = 11  # start + 8 data + even parity + stop
LINE_FAITHFUL_TURNAROUND = 0.01
"""Time a line-faithful pump takes to start answering (the notes allow at least 68 ms)."""
_READ_SIZE = 4096


class Slave(Protocol):
    def receive_data(self, data: bytes, now: float) -> None: ...
    def data_to_send(self, now: float) -> bytes: ...
    def next_timeout(self) -> float | None: ...
    def reset_line(self) -> None: ...


class ByteSink(Protocol):
    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


class LineEngine:
    """Feeds a slave and writes its answers when they are due, paced or not."""

    def __init__(
        self,
        slave: Slave,
        *,
        clock: Callable[[], float] = time.monotonic,
        baudrate: int = 5787,
        line_faithful: bool = False,
    ) -> None:
        self.slave = slave
        self.clock = clock
        self.baudrate = baudrate
        self.line_faithful = line_faithful
        self._wake = asyncio.Event()

    def received(self, data: bytes) -> None:
        self.slave.receive_data(data, self.clock())
        self._wake.set()

    async def run(self, sink: ByteSink) -> None:
        while True:
            data = self.slave.data_to_send(self.clock())
            if data:
                if self.line_faithful:
                    await self.write_paced(sink, data)
                else:
                    sink.write(data)
                    await sink.drain()
                continue
            self._wake.clear()
            deadline = self.slave.next_timeout()
            timeout = None if deadline is None else max(0.0, deadline - self.clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def write_paced(self, sink: ByteSink, data: bytes) -> None:
        """Write ``data`` as a UART delivers it: byte i is complete at start + (i+1) bytes."""
        byte_time = BITS_PER_BYTE / self.baudrate
        start = self.clock()
        sent = 0
        while sent < len(data):
            complete = min(len(data), int((self.clock() - start) / byte_time))
            if complete > sent:
                sink.write(data[sent:complete])
                await sink.drain()
                sent = complete
            if sent < len(data):
                await asyncio.sleep(start + (sent + 1) * byte_time - self.clock())


class TcpLineServer:
    """The line on ``host:port``; ``async with TcpLineServer(engine) as server:``."""

    def __init__(self, engine: LineEngine, host: str = "127.0.0.1", port: int = 0) -> None:
        self.engine = engine
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._connection: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"socket://{self.host}:{self.port}"

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        await self._drop_connection()
        await self._server.wait_closed()

    async def _drop_connection(self) -> None:
        task, self._connection = self._connection, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if self._connection is not None:
            log.info("master %s replaces the previous connection", peer)
            await self._drop_connection()
        self._connection = asyncio.current_task()
        log.info("master connected from %s", peer)
        self.engine.slave.reset_line()
        try:
            async with asyncio.TaskGroup() as group:
                answers = group.create_task(self.engine.run(writer), name="gilbarco-answers")
                while data := await reader.read(_READ_SIZE):
                    self.engine.received(data)
                answers.cancel()
        except* (ConnectionError, OSError) as group:
            log.info("master %s: %s", peer, group.exceptions[0])
        finally:
            if self._connection is asyncio.current_task():
                self._connection = None
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
            log.info("master %s disconnected", peer)


class _PtySink:
    def __init__(self, fd: int) -> None:
        self._fd = fd

    def write(self, data: bytes) -> None:
        try:
            os.write(self._fd, data)
        except BlockingIOError:
            log.debug("pty full, %d bytes dropped", len(data))

    async def drain(self) -> None:
        return None


class PtyLineServer:
    """The line on a new pseudo-terminal; ``path`` is what a controller opens (parity N: Linux
    ptys carry no parity, PROTOCOLS.md "Library facts")."""

    def __init__(self, engine: LineEngine) -> None:
        self.engine = engine
        self.path = ""
        self._master = -1
        self._slave = -1
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return self.path

    async def __aenter__(self) -> Self:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        asyncio.get_running_loop().add_reader(self._master, self._readable)
        self._task = asyncio.create_task(self.engine.run(_PtySink(self._master)),
                                         name="gilbarco-pty")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        asyncio.get_running_loop().remove_reader(self._master)
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])
        os.close(self._master)
        os.close(self._slave)

    def _readable(self) -> None:
        try:
            data = os.read(self._master, _READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            log.debug("pty read: %s", error)
            return
        if data:
            self.engine.received(data)
