"""The simulator over real sockets on 127.0.0.1, driven with the codec alone (no driver): its
heartbeat, the two one-way links, and the one-message-per-read quirk."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from ipaddress import IPv4Address

import pytest

from drivers.ifsf import (
    Ack,
    Answer,
    DataItem,
    FpId,
    FpState,
    FpStatus,
    FuellingPointAddress,
    Heartbeat,
    Lna,
    Message,
    MessageSplitter,
    Read,
    Unsolicited,
    Write,
)
from simulator.ifsf import IfsfSimulator, Layout, make_nodes, run_ifsf_simulator

US = Lna(2, 1)
NODE = Lna(1, 1)


class Peer:
    """A controller made of sockets and the codec."""

    def __init__(self, udp_port: int) -> None:
        self.udp_port = udp_port
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.udp.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        self.udp.bind(("0.0.0.0", udp_port))
        self.udp.setblocking(False)
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.server: asyncio.Server | None = None
        self.port = 0
        self.handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        splitter = MessageSplitter(US)
        try:
            while data := await reader.read(4096):
                for item in splitter.feed(data):
                    assert not isinstance(item, Exception), item
                    self.inbox.put_nowait(item)
        finally:
            self.handlers.discard(task)
            writer.close()

    async def heartbeat_of(self, node: Lna) -> Heartbeat:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(10):
            while True:
                data = await loop.sock_recv(self.udp, 64)
                beat = Heartbeat.from_bytes(data)
                if beat.node == node:
                    return beat

    def beat(self) -> None:
        ours = Heartbeat(IPv4Address("127.0.0.1"), self.port, US)
        self.udp.sendto(ours.to_bytes(), ("127.255.255.255", self.udp_port))

    async def next(self, kind: type, address: object = None) -> Message:
        async with asyncio.timeout(10):
            while True:
                message = await self.inbox.get()
                if isinstance(message, kind) and address in (None, message.address):
                    return message

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        self.udp.close()


@pytest.fixture
async def peer(udp_port: int) -> AsyncIterator[Peer]:
    p = Peer(udp_port)
    await p.start()
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
async def sim(udp_port: int) -> AsyncIterator[IfsfSimulator]:
    async with run_ifsf_simulator(make_nodes(Layout.TQC, fps=2), udp_port=udp_port,
                                  heartbeat_interval=0.2,
                                  heartbeat_destination="127.255.255.255") as simulator:
        yield simulator


async def test_heartbeat_links_and_one_message_per_read(peer: Peer, sim: IfsfSimulator) -> None:
    beat = await peer.heartbeat_of(NODE)
    assert beat.configuration_needed and beat.port == sim.port(1)
    assert str(beat.ip) == "127.0.0.1"
    peer.beat()  # the node learns where we listen, connects, announces its points
    first = await peer.next(Unsolicited, FuellingPointAddress(1))
    assert FpStatus.from_items(first.items).state is FpState.CLOSED  # type: ignore[union-attr]
    _, writer = await asyncio.open_connection("127.0.0.1", beat.port)
    try:
        writer.write(Write(NODE, US, 1, FuellingPointAddress(1),
                           (DataItem(FpId.OPEN_FP),)).to_bytes())
        await writer.drain()
        ack = await peer.next(Ack)
        assert ack.token == 1 and ack.accepted  # type: ignore[union-attr]
        status = await peer.next(Unsolicited, FuellingPointAddress(1))
        assert FpStatus.from_items(status.items).state is FpState.IDLE  # type: ignore[union-attr]
        # Two messages in one TCP read: the node takes the first only.
        both = (Read(NODE, US, 2, FuellingPointAddress(1), (FpId.FP_STATE,)).to_bytes()
                + Read(NODE, US, 3, FuellingPointAddress(2), (FpId.FP_STATE,)).to_bytes())
        writer.write(both)
        await writer.drain()
        answer = await peer.next(Answer)
        assert answer.token == 2
        # Had the second been answered, its answer would come before the next one's.
        writer.write(Read(NODE, US, 4, FuellingPointAddress(2), (FpId.FP_STATE,)).to_bytes())
        await writer.drain()
        assert (await peer.next(Answer)).token == 4
        assert sim.state()["nodes"][0]["stats"]["lost"] == 1
    finally:
        writer.close()
