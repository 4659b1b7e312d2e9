"""Fixtures for the cloud link tests: a real Mosquitto, a real SQLite store behind the outbox,
a small cloud of our own that acks, and a TCP proxy that can cut the link's connection.

Nothing here is autouse: other test modules in this folder keep their own setup. The link
modules opt in with `pytestmark = pytest.mark.usefixtures("no_leaks")`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiomqtt
import pytest

from domain.model import Event
from edge.store import Store
from sync.envelope import event_envelope
from sync.link import CloudLink
from tests.helpers import wait_until
from tests.mosquitto import Mosquitto

SID = "XJ-TEST-0001"
T0 = datetime(2026, 11, 22, 1, 15, tzinfo=UTC)  # the store's clock: every event at this time


# ------------------------------------------------------------------------------------- leaks


@pytest.fixture
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while True:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.02)  # a worker thread finishing its last job, not a timing assertion
    assert not leaked, f"test leaked threads: {leaked}"


@pytest.fixture
async def no_leaked_tasks() -> AsyncIterator[None]:
    yield
    current = asyncio.current_task()
    deadline = time.monotonic() + 2
    while True:
        # aiomqtt cancels its housekeeping task with call_soon_threadsafe: give it a few turns.
        left = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
        if not left or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.01)
    assert not left, f"test leaked tasks: {left}"


@pytest.fixture
def no_leaks(no_leaked_threads: None, no_leaked_tasks: None) -> None:
    """Threads are checked after the event loop closed, tasks while it still runs."""


# ------------------------------------------------------------------------- broker and store


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    mosquitto = Mosquitto(tmp_path / "broker")
    mosquitto.start()
    try:
        yield mosquitto
    finally:
        mosquitto.stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "station.db", clock=lambda: T0) as opened:
        yield opened


class StoreOutbox:
    """The link's view of the store, as the station adapts its ledger (reads in a thread)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.acks: list[int] = []
        self.alarms: list[dict[str, Any]] = []

    async def pending(self, after_seq: int, limit: int) -> list[Event]:
        return await asyncio.to_thread(self.store.outbox_pending, after_seq=after_seq,
                                       limit=limit)

    async def ack(self, upto_seq: int, epoch: int) -> int:
        self.acks.append(upto_seq)
        return await asyncio.to_thread(self.store.outbox_ack, upto_seq, epoch)

    async def position(self) -> tuple[int, int]:
        return await asyncio.to_thread(self.store.ledger_position)

    async def alarm(self, data: dict[str, Any]) -> None:
        self.alarms.append(data)
        await asyncio.to_thread(self.store.append_event, "cloud.alarm", data)

    async def conflict(self, epoch: int, seq: int, cloud_epoch: int) -> int | None:
        started = await asyncio.to_thread(self.store.resolve_epoch_conflict, epoch, seq,
                                          cloud_epoch)
        return None if started is None else started.epoch

    async def backlog(self) -> int:
        return await asyncio.to_thread(self.store.outbox_backlog)

    async def unacked(self) -> list[int]:
        return [event.seq for event in await self.pending(0, 10_000)]


@pytest.fixture
def outbox(store: Store) -> StoreOutbox:
    return StoreOutbox(store)


async def append(store: Store, link: CloudLink | None, count: int, *, start: int = 0) -> None:
    """Commits `count` events one by one, telling the link after each as the station does."""
    for n in range(start, start + count):
        await asyncio.to_thread(store.append_event, "tank.reading",
                                {"tank": 1, "n": n, "level": "1234.50"})
        if link is not None:
            link.events_committed()


# -------------------------------------------------------------------------- commands, live


@dataclass
class Commands:
    """The link's command handler: records payloads, answers each with a reply envelope."""

    received: list[bytes] = field(default_factory=list)
    fail_on: bytes | None = None

    async def __call__(self, payload: bytes) -> dict[str, Any] | None:
        self.received.append(payload)
        if payload == self.fail_on:
            raise RuntimeError("handler broke")
        if payload == b"quiet":
            return None
        return {"v": 1, "id": f"reply-{len(self.received)}", "type": "reply", "station": SID,
                "ts": "2026-11-22T09:15:00+08:00",
                "data": {"re": payload.decode(errors="replace"), "ok": True, "error": None,
                         "result": None}}


@dataclass
class Forecourt:
    """The live state the link publishes."""

    n: int = 0

    def __call__(self) -> dict[str, Any]:
        return {"pumps": [{"number": 1, "state": "idle"}], "n": self.n}


def make_link(broker: str, outbox: StoreOutbox, **overrides: Any) -> CloudLink:
    options: dict[str, Any] = {
        "station_id": SID,
        "broker": broker,
        "outbox": outbox,
        "envelope": functools.partial(event_envelope, SID),
        "on_command": Commands(),
        "live": Forecourt(),
        "boot_id": "boot-1",
        "version": "0.1.0",
        "clock": lambda: datetime.now(UTC),
        "reconnect_min": 0.05,
        "reconnect_max": 0.4,
        "close_timeout": 3.0,
    }
    options.update(overrides)
    return CloudLink(**options)


# -------------------------------------------------------------------------------- the cloud


@dataclass
class Received:
    topic: str
    body: dict[str, Any]
    retain: bool


class Cloud:
    """A small cloud: one aiomqtt client on `fcc/v1/{sid}/#` that keeps everything it gets and
    acks the highest contiguous seq after every event (duplicates included: a lost ack must be
    repeated). Reconnects on its own, with a persistent session."""

    def __init__(self, broker: Mosquitto, *, ack: bool = True, identifier: str = "test-cloud",
                 clean_session: bool = False) -> None:
        self.port = broker.port
        self.ack = ack
        self.identifier = identifier
        self.clean_session = clean_session
        self.messages: list[Received] = []
        self.garbage: list[bytes] = []
        self.client: aiomqtt.Client | None = None
        self.connects = 0
        self._group: asyncio.TaskGroup | None = None
        self._task: asyncio.Task[None] | None = None

    def topic(self, leaf: str) -> str:
        return f"fcc/v1/{SID}/{leaf}"

    def of(self, leaf: str) -> list[Received]:
        return [m for m in self.messages if m.topic == self.topic(leaf)]

    @property
    def events(self) -> list[dict[str, Any]]:
        return [m.body for m in self.of("events")]

    @property
    def seqs(self) -> list[int]:
        return [int(body["seq"]) for body in self.events]

    def contiguous(self) -> int:
        seen = set(self.seqs)
        upto = 0
        while upto + 1 in seen:
            upto += 1
        return upto

    async def __aenter__(self) -> Self:
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        self._task = self._group.create_task(self._run(), name="test cloud")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._group is not None and self._task is not None
        self._task.cancel()
        await self._group.__aexit__(None, None, None)

    async def connected(self, timeout: float = 10) -> None:
        await wait_until(lambda: self.client is not None, timeout=timeout, what="cloud connected")

    async def publish(self, leaf: str, payload: bytes) -> None:
        assert self.client is not None, "the cloud is not connected"
        await self.client.publish(self.topic(leaf), payload, qos=1)

    async def _run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client("127.0.0.1", self.port, identifier=self.identifier,
                                          clean_session=self.clean_session) as client:
                    await client.subscribe(self.topic("#"), qos=1)
                    self.client = client
                    self.connects += 1
                    async for message in client.messages:
                        await self._handle(client, message)
            except aiomqtt.MqttError:
                pass
            finally:
                self.client = None
                # A publish that timed out leaves the client's disconnect error unread; read it
                # so asyncio does not log "Future exception was never retrieved".
                with contextlib.suppress(Exception):
                    client._disconnected.exception()
            await asyncio.sleep(0.05)  # reconnect pace of a test peer

    async def _handle(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        payload = message.payload
        assert isinstance(payload, bytes)
        topic = message.topic.value
        if topic in (self.topic("acks"), self.topic("commands")):
            return  # our own messages to the station
        try:
            body = json.loads(payload)
        except ValueError:
            self.garbage.append(payload)
            return
        self.messages.append(Received(topic, body, bool(message.retain)))
        if topic == self.topic("events") and self.ack:
            # aiomqtt does not fail a pending publish when the connection drops: bound the wait.
            await client.publish(self.topic("acks"),
                                 json.dumps({"upto_seq": self.contiguous()}).encode(), qos=1,
                                 timeout=1)


# ------------------------------------------------------------------ a proxy that can cut wires


class TcpProxy:
    """Forwards 127.0.0.1:port to the broker; `cut()` resets every connection through it at
    once, as a dead mobile link would, so the broker sees the station vanish without an MQTT
    DISCONNECT."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self.accepted = 0

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def cut(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.accepted += 1
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1",
                                                                     self.target_port)
            except OSError:
                writer.transport.abort()
                return
            self._writers.update((writer, up_writer))
            try:
                async with asyncio.TaskGroup() as pipes:
                    pipes.create_task(self._pipe(reader, up_writer))
                    pipes.create_task(self._pipe(up_reader, writer))
            finally:
                writer.transport.abort()
                up_writer.transport.abort()
                self._writers.difference_update((writer, up_writer))
        finally:
            self._handlers.discard(task)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        writer.transport.abort()  # one side gone: the whole connection is gone
