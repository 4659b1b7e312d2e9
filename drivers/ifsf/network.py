"""The asyncio shell of one IFSF LAN: heartbeats over UDP, two one-way TCP links per node
(PROTOCOLS.md, IFSF "Heartbeat", "Links").

``IfsfNetwork`` runs a ``LanCore`` and does the I/O the core asks for:

* one UDP socket on the heartbeat port (bound to all addresses with SO_REUSEADDR, so that
  several programs on one machine hear the same broadcasts): ours go out every
  ``heartbeat_interval`` to ``heartbeat_destination``, theirs feed the core;
* our listening TCP server, whose port our heartbeat advertises: dispensers connect to it and
  send their answers, acknowledges and unsolicited messages;
* per node, our client connection to the port the node advertises (or its static host:port),
  carrying our requests; reopened with the project's reconnect policy while the node's
  heartbeat is seen (or always, for a static node).

Everything runs in one task group owned by the context manager: leaving it cancels and awaits
every task and closes every socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from types import TracebackType

from domain.retry import LINE_RECONNECT, RetryPolicy

from .address import Address, Lna
from .codec import Ack, Answer, DataItem
from .errors import IfsfCommandError
from .events import (
    LanEvent,
    LinkNoise,
    NodeOffline,
    NodeOnline,
    Replied,
    RequestFailed,
    UnknownNode,
)
from .heartbeat import DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_UDP_PORT, Heartbeat
from .lan import LanCore, LanStats, NodeSettings
from .link import LinkStats

__all__ = ["CONNECT_TIMEOUT", "NODE_RECONNECT", "IfsfNetwork", "NetworkStats"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 3.0
"""Seconds a TCP connection attempt to a node may take."""

NODE_RECONNECT = LINE_RECONNECT.but(name="ifsf node reconnect", first=1.0, cap=5.0)
"""The notes: reconnect every few seconds while the peer's heartbeat is seen."""

_READ_SIZE = 4096


@dataclass(frozen=True)
class NetworkStats:
    lan: LanStats
    links: Mapping[Lna, LinkStats]
    events_dropped: int


class _Heard(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, tuple[str, int]], None]) -> None:
        self._on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self._on_datagram(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.debug("heartbeat socket: %s", exc)


def _advertised_address(destination: str) -> IPv4Address:
    """The address other nodes reach us at: the one the route to ``destination`` leaves from."""
    if destination.startswith("127."):
        return IPv4Address("127.0.0.1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        try:
            probe.connect((destination, DEFAULT_UDP_PORT))
            return IPv4Address(probe.getsockname()[0])
        except OSError:
            return IPv4Address("0.0.0.0")


class IfsfNetwork:
    """One IFSF LAN seen from the controller ``controller``; an async context manager.

    ``nodes`` names every dispenser node to drive, each found by heartbeat or at a static
    host:port (``NodeSettings``). ``udp_port`` (default 3486; PetroChina's boards use 3485),
    ``heartbeat_interval``, ``heartbeat_destination`` (a broadcast address; 127.255.255.255
    for tests on one machine), ``listen`` (our TCP server; port 0 picks a free one) and
    ``advertise`` (the IPv4 address our heartbeat carries; derived from the route to the
    heartbeat destination when None) are the configuration's.
    """

    def __init__(
        self,
        controller: Lna,
        nodes: Mapping[Lna, NodeSettings],
        *,
        udp_port: int = DEFAULT_UDP_PORT,
        udp_host: str = "0.0.0.0",
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
        heartbeat_destination: str = "255.255.255.255",
        listen: tuple[str, int] = ("0.0.0.0", 0),
        advertise: str | None = None,
        reconnect: RetryPolicy = NODE_RECONNECT,
        name: str = "ifsf",
        max_queued_events: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._core = LanCore(controller, nodes)
        self.controller = controller
        self._udp = (udp_host, udp_port)
        self._interval = heartbeat_interval
        self._destination = heartbeat_destination
        self._listen = listen
        self._advertise = None if advertise is None else IPv4Address(advertise)
        self._reconnect = reconnect
        self.name = name
        self._clock = clock
        self._wake = asyncio.Event()
        self._node_wakes = {node: asyncio.Event() for node in nodes}
        self._writers: dict[Lna, asyncio.StreamWriter] = {}
        self._waiters: dict[tuple[Lna, int], asyncio.Future[tuple[Answer | Ack, ...]]] = {}
        self._queue: asyncio.Queue[LanEvent | None] = asyncio.Queue(max_queued_events)
        self._streams = itertools.count(1)
        self._stream_tasks: set[asyncio.Task[None]] = set()
        self._stream_writers: dict[int, asyncio.StreamWriter] = {}
        self._server: asyncio.Server | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._runner: asyncio.Task[None] | None = None
        self._failing: set[Lna] = set()  # nodes whose connection failure was logged
        self._noisy: set[Lna | None] = set()  # sources whose noise was logged at warning
        self._events_dropped = 0
        self._closing = False
        self.listen_port = 0

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> IfsfNetwork:
        if self._runner is not None:
            raise RuntimeError("an IfsfNetwork runs once")
        loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(self._serve_stream, *self._listen)
        self.listen_port = self._server.sockets[0].getsockname()[1]
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            sock.bind(self._udp)
            sock.setblocking(False)
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Heard(self._on_datagram), sock=sock)
        except BaseException:
            sock.close()
            self._server.close()
            raise
        self._transport = transport
        if self._advertise is None:
            self._advertise = _advertised_address(self._destination)
        self._runner = asyncio.create_task(self._run(), name=f"ifsf-{self.name}")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self._runner is not None
        self._closing = True  # nodes going offline now is the shutdown, not news
        self._runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._runner
        for writer in list(self._writers.values()):
            writer.close()
        self._writers.clear()
        if self._transport is not None:
            self._transport.close()
        if self._server is not None:
            self._server.close()
        # Connections the dispensers opened to us: closed, their handlers see the end and
        # return (a cancelled handler would be reported by asyncio's streams as an error).
        for writer in self._stream_writers.values():
            writer.close()
        if self._stream_tasks:
            _, pending = await asyncio.wait(self._stream_tasks, timeout=CONNECT_TIMEOUT)
            for task in pending:
                task.cancel()
        if self._server is not None:
            await self._server.wait_closed()
        now = self._clock()
        for link in self._core.links.values():
            link.close(now)
        self._deliver()
        for (node, _), future in self._waiters.items():
            if not future.done():
                future.set_exception(IfsfCommandError(str(node), "closed"))
        self._put(None)

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._engine(), name=f"ifsf-{self.name}-engine")
            group.create_task(self._heartbeats(), name=f"ifsf-{self.name}-heartbeat")
            for node in self._core.links:
                group.create_task(self._connector(node), name=f"ifsf-{self.name}-{node}")

    # ------------------------------------------------------------ API

    def online(self, node: Lna) -> bool:
        return self._core.link(node).online

    @property
    def nodes(self) -> tuple[Lna, ...]:
        return tuple(self._core.links)

    @property
    def stats(self) -> NetworkStats:
        links = {node: replace(link.stats) for node, link in self._core.links.items()}
        return NetworkStats(replace(self._core.stats), links, self._events_dropped)

    async def read(self, node: Lna, address: Address,
                   ids: tuple[int, ...]) -> tuple[Answer | Ack, ...]:
        """Read ``ids`` at ``address``: the answers (and the closing acknowledge, if any).

        Raises ``IfsfCommandError`` ("offline", "timeout", "link down", "closed").
        """
        link = self._core.link(node)
        return await self._wait(node, link.submit_read(address, ids))

    async def write(self, node: Lna, address: Address, items: tuple[DataItem, ...]) -> Ack:
        """Write ``items``; the acknowledge, whatever its status (see ``accepted``)."""
        link = self._core.link(node)
        messages = await self._wait(node, link.submit_write(address, items))
        ack = messages[-1] if messages else None
        if not isinstance(ack, Ack):
            raise IfsfCommandError(str(node), "write answered without an acknowledge")
        return ack

    async def events(self) -> AsyncIterator[LanEvent]:
        """Node and message events in order; ends when the network is closed.

        ``Replied`` and ``RequestFailed`` are not here: ``read``/``write`` consume them.
        """
        while True:
            event = await self._queue.get()
            if event is None:
                self._queue.put_nowait(None)
                return
            yield event

    # ------------------------------------------------------------ internals

    async def _wait(self, node: Lna, request_id: int) -> tuple[Answer | Ack, ...]:
        if self._runner is None or self._runner.done():
            raise IfsfCommandError(str(node), "closed")
        future: asyncio.Future[tuple[Answer | Ack, ...]] = (
            asyncio.get_running_loop().create_future())
        self._waiters[(node, request_id)] = future
        self._wake.set()
        try:
            return await future
        finally:
            if self._waiters.pop((node, request_id), None) is not None:
                self._core.link(node).cancel(request_id)

    def _on_datagram(self, data: bytes, sender: tuple[str, int]) -> None:
        self._core.datagram(data, sender, self._clock())
        self._wake.set()

    async def _serve_stream(self, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
        stream = next(self._streams)
        peer = writer.get_extra_info("peername")
        log.debug("%s: connection %d from %s", self.name, stream, peer)
        task = asyncio.current_task()
        assert task is not None
        self._stream_tasks.add(task)
        self._stream_writers[stream] = writer
        self._core.stream_opened(stream)
        try:
            while data := await reader.read(_READ_SIZE):
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("%s < %s", self.name, data.hex(" "))
                self._core.stream_data(stream, data, self._clock())
                self._wake.set()
        except (ConnectionError, OSError) as error:
            log.debug("%s: connection %d from %s: %s", self.name, stream, peer, error)
        finally:
            self._stream_tasks.discard(task)
            self._stream_writers.pop(stream, None)
            self._core.stream_closed(stream)
            writer.close()

    async def _heartbeats(self) -> None:
        assert self._transport is not None and self._advertise is not None
        heartbeat = Heartbeat(self._advertise, self.listen_port, self.controller).to_bytes()
        target = (self._destination, self._udp[1])
        while True:
            try:
                self._transport.sendto(heartbeat, target)
            except OSError as error:  # a network that is not up yet: try at the next beat
                log.debug("%s: heartbeat to %s: %s", self.name, target, error)
            await asyncio.sleep(self._interval)

    async def _connector(self, node: Lna) -> None:
        """Keep our client link to ``node`` up while the core wants it."""
        link = self._core.link(node)
        wake = self._node_wakes[node]
        failures = 0
        while True:
            wake.clear()
            endpoint = link.endpoint
            if endpoint is None or not link.wants_connection(self._clock()):
                await wake.wait()
                continue
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    reader, writer = await asyncio.open_connection(*endpoint)
            except (OSError, TimeoutError) as error:
                failures += 1
                self._connect_failed(node, endpoint, error)
                await asyncio.sleep(self._reconnect.wait().delay(failures))
                continue
            sock = writer.get_extra_info("socket")
            if sock is not None:
                # One message per segment: some firmware takes each TCP read as one message.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if node in self._failing:
                self._failing.discard(node)
                log.info("%s: node %s reachable again at %s:%d", self.name, node, *endpoint)
            self._writers[node] = writer
            link.link_up(self._clock())
            self._wake.set()
            answered = False
            try:
                answered = await self._hold(node, reader)
            finally:
                self._writers.pop(node, None)
                writer.close()
                link.link_down(self._clock())
                self._wake.set()
            failures = 0 if answered else failures + 1
            if failures:
                await asyncio.sleep(self._reconnect.wait().delay(failures))

    async def _hold(self, node: Lna, reader: asyncio.StreamReader) -> bool:
        """Read our client link until it drops (dispensers do not send on it, but a lenient
        reader takes whatever comes as messages); True when the node was online meanwhile."""
        link = self._core.link(node)
        stream = next(self._streams)
        self._core.stream_opened(stream)
        was_online = False
        try:
            while True:
                data = await reader.read(_READ_SIZE)
                was_online = was_online or link.online
                if not data:
                    return was_online or link.online
                self._core.stream_data(stream, data, self._clock())
                self._wake.set()
        except (ConnectionError, OSError) as error:
            log.debug("%s: link to %s: %s", self.name, node, error)
            return was_online or link.online
        finally:
            self._core.stream_closed(stream)

    def _connect_failed(self, node: Lna, endpoint: tuple[str, int], error: BaseException) -> None:
        reason = str(error) or type(error).__name__
        if node in self._failing:
            log.debug("%s: node %s at %s:%d: %s", self.name, node, *endpoint, reason)
        else:
            self._failing.add(node)
            log.warning("%s: cannot connect to node %s at %s:%d: %s (retrying)", self.name,
                        node, *endpoint, reason)

    async def _engine(self) -> None:
        core = self._core
        while True:
            now = self._clock()
            core.handle_timeout(now)
            for node, link in core.links.items():
                if link.take_reset():
                    writer = self._writers.get(node)
                    if writer is not None:
                        writer.close()  # the connector sees the end and reconnects
                writer = self._writers.get(node)
                if writer is not None:
                    while (data := link.next_message(now)) is not None:
                        if log.isEnabledFor(logging.DEBUG):
                            log.debug("%s > %s %s", self.name, node, data.hex(" "))
                        writer.write(data)
                if link.wants_connection(now) != (writer is not None):
                    self._node_wakes[node].set()
            self._deliver()
            self._wake.clear()
            deadline = core.next_timeout()
            timeout = None if deadline is None else max(0.0, deadline - self._clock())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    def _deliver(self) -> None:
        for event in self._core.events():
            if isinstance(event, Replied | RequestFailed):
                future = self._waiters.pop((event.node, event.request_id), None)
                if future is not None and not future.done():
                    if isinstance(event, Replied):
                        future.set_result(event.messages)
                    else:
                        future.set_exception(IfsfCommandError(str(event.node), event.reason))
                continue
            self._log(event)
            self._put(event)

    def _log(self, event: LanEvent) -> None:
        if isinstance(event, NodeOnline):
            self._noisy.discard(event.node)
            log.info("%s: node %s online at %s:%d", self.name, event.node, *event.endpoint)
        elif isinstance(event, NodeOffline):
            log.log(logging.DEBUG if self._closing else logging.WARNING,
                    "%s: node %s offline: %s", self.name, event.node, event.reason)
        elif isinstance(event, UnknownNode):
            where = "" if event.endpoint is None else f" at {event.endpoint[0]}:{event.endpoint[1]}"
            log.warning("%s: node %s%s is not in the configuration; ignored", self.name,
                        event.node, where)
        elif isinstance(event, LinkNoise):
            if event.node in self._noisy:
                log.debug("%s: %s: %s", self.name, event.node or "LAN", event.error)
            else:
                self._noisy.add(event.node)
                log.warning("%s: %s: %s", self.name, event.node or "LAN", event.error)

    def _put(self, event: LanEvent | None) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self._events_dropped += 1
            if self._events_dropped == 1:
                log.error("%s: event queue full, dropping the oldest events", self.name)
        self._queue.put_nowait(event)
