"""Serving simulated IFSF nodes on a network: heartbeats over UDP, two one-way TCP links per
node (PROTOCOLS.md, IFSF "Heartbeat", "Links").

The I/O shell around ``SimulatedNode``. Per node: a TCP server on the port its heartbeat
advertises (the controller's commands arrive there), and a client link to the port the
controller's heartbeat advertises (or a static controller address), on which the node sends its
answers, acknowledges and unsolicited messages; every fuelling point's status is announced each
time that link comes up. One UDP socket, bound to all addresses with SO_REUSEADDR, sends every
node's heartbeat and hears the controller's.

Quirks and faults of the network side:

- ``one_message_per_read``: the node takes each TCP read as one message; further messages in
  the same read are lost (counted in ``lost``), as with some dispenser firmware.
- ``heartbeat``: False stops the node's heartbeats (a node that vanished from the LAN).
- ``mute``: the node reads but answers nothing.
- ``drop_links()``: both TCP links are closed once; the node reconnects, the controller too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from types import TracebackType
from typing import Self

from drivers.ifsf.address import Lna
from drivers.ifsf.errors import IfsfProtocolError
from drivers.ifsf.heartbeat import DEFAULT_UDP_PORT, Heartbeat
from drivers.ifsf.ids import CONTROLLER_SUBNET
from drivers.ifsf.stream import MessageSplitter

from .node import SimulatedNode

__all__ = ["TICK", "IfsfServer", "NodeLinkStats", "NodeNetFaults"]

log = logging.getLogger(__name__)

TICK = 0.05
"""Seconds between two looks at the nodes while nothing arrives (fuel flows meanwhile)."""

RECONNECT_DELAY = 1.0
"""Seconds between a node's attempts to reach the controller."""

_READ_SIZE = 4096


@dataclass
class NodeNetFaults:
    heartbeat: bool = True
    mute: bool = False


@dataclass
class NodeLinkStats:
    received: int = 0
    sent: int = 0
    lost: int = 0  # messages dropped by one-message-per-read
    undelivered: int = 0  # messages with no link to the controller
    errors: int = 0  # bytes that did not make a message


class _Heard(asyncio.DatagramProtocol):
    def __init__(self, server: IfsfServer) -> None:
        self._server = server

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self._server.datagram(data)


class _NodeNet:
    """The network side of one node."""

    def __init__(self, node: SimulatedNode) -> None:
        self.node = node
        self.faults = NodeNetFaults()
        self.stats = NodeLinkStats()
        self.server: asyncio.Server | None = None
        self.port = 0
        self.inbound: asyncio.StreamWriter | None = None  # the controller's link to us
        self.outbound: asyncio.StreamWriter | None = None  # ours to the controller
        self.wake = asyncio.Event()


class IfsfServer:
    """Every simulated node of one process on the network; an async context manager."""

    def __init__(
        self,
        nodes: Sequence[SimulatedNode],
        *,
        host: str = "127.0.0.1",
        ports: Sequence[int] = (),
        udp_port: int = DEFAULT_UDP_PORT,
        heartbeat_interval: float = 10.0,
        heartbeat_destination: str = "255.255.255.255",
        advertise: str | None = None,
        controller: tuple[str, int] | None = None,
        one_message_per_read: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        lnas = [n.lna for n in nodes]
        if not nodes or len(set(lnas)) != len(lnas):
            raise ValueError("one or more nodes, each with its own node number")
        self.nets = {n.lna: _NodeNet(n) for n in nodes}
        self.host = host
        self._ports = list(ports) + [0] * (len(nodes) - len(ports))
        self.udp_port = udp_port
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_destination = heartbeat_destination
        self.advertise = IPv4Address(advertise or ("127.0.0.1" if host in ("127.0.0.1",
                                                   "localhost", "0.0.0.0") else host))
        self.controller = controller  # static: no need to hear the controller's heartbeat
        self.one_message_per_read = one_message_per_read
        self.clock = clock
        self._transport: asyncio.DatagramTransport | None = None
        self._runner: asyncio.Task[None] | None = None
        self._serving: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        try:
            sock.bind(("0.0.0.0", self.udp_port))
            sock.setblocking(False)
            self._transport, _ = await loop.create_datagram_endpoint(lambda: _Heard(self),
                                                                     sock=sock)
        except BaseException:
            sock.close()
            raise
        try:
            for net, port in zip(self.nets.values(), self._ports, strict=True):
                net.server = await asyncio.start_server(
                    functools.partial(self._serve, net), self.host, port)
                net.port = net.server.sockets[0].getsockname()[1]
        except BaseException:
            await self._close()
            raise
        self._runner = asyncio.create_task(self._run(), name="ifsf-simulator")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        await self._close()

    async def _close(self) -> None:
        for net in self.nets.values():
            self._drop(net)
            if net.server is not None:
                net.server.close()
        # The controllers' links were closed above: their handlers see the end and return.
        if self._serving:
            _, pending = await asyncio.wait(self._serving, timeout=RECONNECT_DELAY * 3)
            for task in pending:
                task.cancel()
        for net in self.nets.values():
            if net.server is not None:
                await net.server.wait_closed()
        if self._transport is not None:
            self._transport.close()

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._heartbeats(), name="ifsf-simulator-heartbeats")
            for lna, net in self.nets.items():
                group.create_task(self._ticker(net), name=f"ifsf-simulator-{lna}")
                group.create_task(self._link(net), name=f"ifsf-simulator-{lna}-link")

    # ------------------------------------------------------------ controls

    def port(self, node: Lna) -> int:
        return self.nets[node].port

    def drop_links(self, node: Lna) -> None:
        self._drop(self.nets[node])

    def poke(self, node: Lna) -> None:
        """Something changed at the node (a customer): send what it has to say now."""
        self.nets[node].wake.set()

    # ------------------------------------------------------------ internals

    def datagram(self, data: bytes) -> None:
        try:
            heartbeat = Heartbeat.from_bytes(data)
        except IfsfProtocolError:
            return
        if heartbeat.node.subnet != CONTROLLER_SUBNET:
            return
        if self.controller is None or self.controller != (str(heartbeat.ip), heartbeat.port):
            if self.controller is not None:
                log.info("controller %s now at %s:%d", heartbeat.node, heartbeat.ip,
                         heartbeat.port)
            self.controller = (str(heartbeat.ip), heartbeat.port)
            for net in self.nets.values():
                self._drop_outbound(net)
        for net in self.nets.values():
            net.node.controller_heard(heartbeat.node)

    def _drop(self, net: _NodeNet) -> None:
        if net.inbound is not None:
            net.inbound.close()
            net.inbound = None
        self._drop_outbound(net)

    @staticmethod
    def _drop_outbound(net: _NodeNet) -> None:
        if net.outbound is not None:
            net.outbound.close()
            net.outbound = None
        net.wake.set()

    async def _heartbeats(self) -> None:
        assert self._transport is not None
        target = (self.heartbeat_destination, self.udp_port)
        while True:
            for net in self.nets.values():
                if not net.faults.heartbeat:
                    continue
                status = 1 if net.node.configuration_needed else 0
                beat = Heartbeat(self.advertise, net.port, net.node.lna, status)
                with contextlib.suppress(OSError):
                    self._transport.sendto(beat.to_bytes(), target)
            await asyncio.sleep(self.heartbeat_interval)

    async def _serve(self, net: _NodeNet, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        if net.inbound is not None:
            net.inbound.close()  # a controller that reconnects replaces its old link
        net.inbound = writer
        task = asyncio.current_task()
        assert task is not None
        self._serving.add(task)
        splitter = MessageSplitter(net.node.lna, frozenset({CONTROLLER_SUBNET}))
        try:
            while data := await reader.read(_READ_SIZE):
                items = splitter.feed(data)
                messages = [m for m in items if not isinstance(m, IfsfProtocolError)]
                net.stats.errors += len(items) - len(messages)
                if self.one_message_per_read and len(messages) > 1:
                    net.stats.lost += len(messages) - 1
                    messages = messages[:1]
                net.stats.received += len(messages)
                if net.faults.mute:
                    continue
                for message in messages:
                    net.node.handle(message, self.clock())
                net.wake.set()
        except (ConnectionError, OSError):
            pass
        finally:
            self._serving.discard(task)
            if net.inbound is writer:
                net.inbound = None
            writer.close()

    async def _ticker(self, net: _NodeNet) -> None:
        while True:
            net.node.tick(self.clock())
            out = net.node.take_outbox()
            if out:
                writer = net.outbound
                if writer is None or net.faults.mute:
                    net.stats.undelivered += len(out)
                else:
                    for message in out:
                        writer.write(message.to_bytes())
                        net.stats.sent += 1
                    with contextlib.suppress(ConnectionError, OSError):
                        await writer.drain()
            net.wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TICK):
                    await net.wake.wait()

    async def _link(self, net: _NodeNet) -> None:
        """Keep the node's link to the controller up while the controller is known."""
        while True:
            endpoint = self.controller
            if endpoint is None or net.outbound is not None:
                await asyncio.sleep(TICK)
                continue
            try:
                async with asyncio.timeout(RECONNECT_DELAY * 3):
                    reader, writer = await asyncio.open_connection(*endpoint)
            except (OSError, TimeoutError):
                await asyncio.sleep(RECONNECT_DELAY)
                continue
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            net.outbound = writer
            net.node.announce()
            net.wake.set()
            with contextlib.suppress(ConnectionError, OSError):
                while await reader.read(_READ_SIZE):
                    pass  # the controller does not send on this link
            if net.outbound is writer:
                net.outbound = None
            writer.close()
            await asyncio.sleep(RECONNECT_DELAY)
