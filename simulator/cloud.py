"""The cloud's side of the MQTT link (CONTRACT.md section 4), for tests, the demo and benches.

`StationStream` is what the cloud keeps of one station's event stream: every event by (epoch,
seq) with its id, how many came again, and per epoch the highest seq below which nothing is
missing, which is all it may ever ack (acking past a gap would make the station drop the missing
event for good). A seq the station uses again for another event (a ledger restored without a
new epoch, a new PC) is a conflict, reported on `acks` (docs/cloud.md, "Epochs"). It does no I/O
and takes time as an argument, so the fleet bench's shared-subscription consumers use it too.

`CloudPeer` is one MQTT client around a `StationStream`: it subscribes to the station's events,
replies, status and live state, acks the contiguous prefix of each epoch, reports conflicts,
signs and sends commands and waits for their replies. It survives broker restarts (one
reconnect loop, persistent session) and counts garbage instead of crashing on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import socket
import ssl
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from simulator.cloud_stream import ACK_INTERVAL, Received, StationStream, parse_envelope
from sync.keys import command_envelope, sign_command

__all__ = ["ACK_INTERVAL", "CloudPeer", "Received", "StationStream", "parse_envelope"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0  # seconds __aenter__ waits for the first connection and subscriptions
RECONNECT_MIN, RECONNECT_MAX = 0.05, 2.0  # seconds between connection attempts (backoff)
# Acks and commands are small messages answering the station's: with Nagle's algorithm they
# wait for the kernel's delayed ACK of the previous segment (tens of ms each).
NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
STATION_TOPICS = ("events", "replies", "status", "live")  # what the cloud subscribes to


def _check_cancelled() -> None:
    """Raises CancelledError if this task was asked to stop during its last await.

    aiomqtt waits with Python 3.11's asyncio.wait_for, which returns the result instead of
    raising when a cancellation and the result arrive in the same loop turn; the task still
    counts the request. Without this, a peer stopped as an ack's PUBACK came in would never end.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _broker_address(url: str) -> tuple[str, int, ssl.SSLContext | None]:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"broker must be mqtt://host[:port] or mqtts://host[:port], got {url!r}")
    tls = parts.scheme == "mqtts"
    port = parts.port or (8883 if tls else 1883)
    return parts.hostname, port, ssl.create_default_context() if tls else None


class CloudPeer:
    """The cloud for one station over a real broker; `async with CloudPeer(...) as cloud:`."""

    def __init__(self, broker: str, station_id: str, *,
                 private_key: Ed25519PrivateKey | None = None, ack: bool = True,
                 ack_every: int = 1, ack_delay: float = 0.0, client_id: str | None = None,
                 committed: int = 0, username: str | None = None,
                 password: str | None = None) -> None:
        self._host, self._port, self._tls = _broker_address(broker)
        self.station_id = station_id
        self._private_key = private_key
        self._ack = ack
        self._ack_delay = ack_delay
        # A fixed identifier and a persistent session: what the broker queued for the cloud
        # while it was away (replies, events) is delivered when it comes back.
        self.client_id = client_id or f"cloud-{station_id}-{uuid.uuid4().hex[:8]}"
        self._username = username
        self._password = password
        self.stream = StationStream(committed=committed, ack_every=ack_every)
        self.status: dict[str, Any] | None = None
        self.live: dict[str, Any] | None = None
        self.replies: list[dict[str, Any]] = []
        self.malformed = 0  # messages that were not a valid envelope of this station
        self.acks_sent = 0
        self.conflicts_sent = 0
        self.last_ack = 0  # the highest upto_seq the broker has accepted from us, any epoch
        self.last_acks: dict[int, int] = {}  # the same, per epoch
        self.connections = 0
        self._last_boot: str | None = None  # the station's boot_id in its last status
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self._changed = asyncio.Event()
        self._ack_wake = asyncio.Event()
        self._reply_waiters: dict[str, list[asyncio.Future[dict[str, Any]]]] = {}
        self._in_flight: set[asyncio.Timeout] = set()  # publishes waiting for their PUBACK
        self._group: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # ---- the stream, as the tests read it ------------------------------------------------------

    @property
    def received(self) -> dict[int, dict[str, Any]]:
        """seq -> the envelope of the station's current ledger with that seq (from the newest
        epoch that has one)."""
        return self.stream.received

    def events(self) -> list[dict[str, Any]]:
        """Every event committed, each once, in (epoch, seq) order: what the cloud holds."""
        return self.stream.events()

    @property
    def duplicates(self) -> int:
        return self.stream.duplicates

    def gaps(self) -> list[int]:
        return self.stream.gaps()

    def contiguous(self) -> int:
        return self.stream.contiguous()

    def sales(self) -> list[dict[str, Any]]:
        """The `data` of every `sale.completed` committed, each once, in (epoch, seq) order:
        after a restore, the sales of the lost ledger as well as those of the restored one."""
        return [envelope["data"] for envelope in self.stream.events()
                if envelope["type"] == "sale.completed"]

    def online(self) -> bool | None:
        """What the retained status says (None before any): `online` in its data or body."""
        if self.status is None:
            return None
        body = self.status.get("data", self.status)
        online = body.get("online") if isinstance(body, dict) else None
        return online if isinstance(online, bool) else None

    # ---- lifetime --------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        self._tasks.append(self._group.create_task(
            self._connection(), name=f"cloud {self.station_id}: connection"))
        if self._ack:
            self._tasks.append(self._group.create_task(
                self._acker(), name=f"cloud {self.station_id}: acks"))
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await self._connected.wait()
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._stop()

    async def _stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._group is not None:
            await self._group.__aexit__(None, None, None)
        self._group = None
        self._tasks.clear()
        for waiters in self._reply_waiters.values():
            for waiter in waiters:
                waiter.cancel()
        self._reply_waiters.clear()

    def _topic(self, kind: str) -> str:
        return f"fcc/v1/{self.station_id}/{kind}"

    async def _connection(self) -> None:
        """The one reconnect loop: jittered exponential backoff, reset once subscribed."""
        backoff = RECONNECT_MIN
        failures = 0
        while True:
            client = aiomqtt.Client(self._host, self._port, identifier=self.client_id,
                                    username=self._username, password=self._password,
                                    clean_session=False, tls_context=self._tls, keepalive=10,
                                    socket_options=NO_DELAY)
            try:
                async with client:
                    for kind in STATION_TOPICS:
                        await client.subscribe(self._topic(kind), qos=1)
                    _check_cancelled()
                    self._client = client
                    self.connections += 1
                    if failures:
                        log.info("cloud peer for %s connected again", self.station_id)
                    failures, backoff = 0, RECONNECT_MIN
                    self.stream.reack()
                    self._ack_wake.set()
                    self._connected.set()
                    async for message in client.messages:
                        self._handle(message.topic.value, message.payload)
            except aiomqtt.MqttError as exc:
                failures += 1
                level = logging.WARNING if failures == 1 else logging.DEBUG
                log.log(level, "cloud peer for %s: broker connection: %s", self.station_id, exc)
            except Exception:  # a test cloud that dies would fail the test that uses it
                failures += 1
                log.exception("cloud peer for %s: connection failed", self.station_id)
            finally:
                self._client = None
                self._connected.clear()
                now = asyncio.get_running_loop().time()
                for cut in self._in_flight:
                    if not cut.expired():
                        cut.reschedule(now)
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
            backoff = min(backoff * 2, RECONNECT_MAX)

    # ---- what arrives ----------------------------------------------------------------------------

    def _handle(self, topic: str, payload: Any) -> None:
        kind = topic.rsplit("/", 1)[-1]
        if not isinstance(payload, bytes | str):
            self.malformed += 1
            return
        if kind in ("status", "live"):
            self._handle_state(kind, payload)
        else:
            envelope = parse_envelope(payload, self.station_id, event=kind == "events")
            if envelope is None:
                self.malformed += 1
                log.debug("not an envelope on %s: %r", topic, payload[:200])
            elif kind == "events":
                result = self.stream.add(envelope, asyncio.get_running_loop().time())
                if result is Received.CONFLICT:
                    log.warning("station %s sent seq %d of epoch %d with another id: "
                                "reporting a conflict", self.station_id, envelope["seq"],
                                envelope.get("epoch", 1))
                self._ack_wake.set()
            elif kind == "replies":
                self._handle_reply(envelope)
        self._notify()

    def _handle_state(self, kind: str, payload: bytes | str) -> None:
        if not payload:  # a retained message being cleared
            state = None
        else:
            try:
                state = json.loads(payload)
            except (ValueError, UnicodeDecodeError):
                self.malformed += 1
                return
            if not isinstance(state, dict):
                self.malformed += 1
                return
        if kind == "status":
            boot = self._boot_id(state)
            if boot is not None and self._last_boot is not None and boot != self._last_boot:
                self.stream.station_restarted()
            self._last_boot = boot or self._last_boot
            self.status = state
        else:
            self.live = state

    @staticmethod
    def _boot_id(state: dict[str, Any] | None) -> str | None:
        body = state.get("data", state) if state is not None else None
        boot = body.get("boot_id") if isinstance(body, dict) else None
        return boot if isinstance(boot, str) else None

    def _handle_reply(self, envelope: dict[str, Any]) -> None:
        self.replies.append(envelope)
        command_id = envelope["data"].get("re")
        waiters = self._reply_waiters.get(command_id) if isinstance(command_id, str) else None
        while waiters:
            waiter = waiters.pop(0)
            if not waiter.done():
                waiter.set_result(envelope)
                break

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # The waits below take their deadline as an argument (ASYNC109): a test names how long it
    # is prepared to wait, and the error says what did not arrive in that time.
    async def wait_until(self, predicate: Callable[[], object], timeout: float,  # noqa: ASYNC109
                         what: str = "condition") -> None:
        """Until `predicate()` holds, re-checked after every message; TimeoutError after."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    changed = self._changed
                    if predicate():
                        return
                    await changed.wait()
        except TimeoutError:
            raise TimeoutError(f"cloud peer for {self.station_id}: no {what} within {timeout} s "
                               f"(contiguous {self.contiguous()}, highest "
                               f"{self.stream.highest()}, gaps {self.gaps()[:20]})") from None

    async def wait_for_seq(self, seq: int, timeout: float) -> None:  # noqa: ASYNC109
        """Until every event from 1 to `seq` has been received."""
        await self.wait_until(lambda: self.contiguous() >= seq, timeout, f"events up to {seq}")

    # ---- what the cloud sends --------------------------------------------------------------------

    async def _publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Publishes once the broker accepted it, waiting through reconnects.

        aiomqtt leaves a QoS 1 publish waiting for its PUBACK until its own timeout even after
        the connection dropped; the connection loop ends such waits at once (see _connection),
        and the message goes again on the next connection.
        """
        while True:
            await self._connected.wait()
            client = self._client
            if client is None:
                await asyncio.sleep(RECONNECT_MIN)
                continue
            try:
                async with asyncio.timeout(None) as cut:
                    self._in_flight.add(cut)
                    try:
                        await client.publish(topic, payload, qos=qos)
                    finally:
                        self._in_flight.discard(cut)
                _check_cancelled()
                return
            except (aiomqtt.MqttError, TimeoutError) as exc:
                log.debug("publish on %s failed, waiting for the connection: %r", topic, exc)
                await asyncio.sleep(RECONNECT_MIN)

    async def _acker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._ack_wake.clear()
            messages = self.stream.take_acks(loop.time())
            if not messages:
                deadline = self.stream.next_timeout()
                delay = None if deadline is None else max(0.0, deadline - loop.time())
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._ack_wake.wait()
                continue
            if self._ack_delay > 0:
                await asyncio.sleep(self._ack_delay)  # the cloud's commit taking its time
            for done, message in enumerate(messages):
                try:
                    await self._publish(self._topic("acks"), json.dumps(message).encode(),
                                        qos=1)
                except BaseException:
                    self.stream.reack(messages[done:])
                    raise
                if "conflict" in message:
                    self.conflicts_sent += 1
                    continue
                self.acks_sent += 1
                self.last_ack = max(self.last_ack, message["upto_seq"])
                self.last_acks[message["epoch"]] = max(self.last_acks.get(message["epoch"], 0),
                                                       message["upto_seq"])
            self._notify()

    async def send_raw(self, payload: bytes, *, topic: str | None = None) -> None:
        """Publishes `payload` as it is on the station's commands topic (or `topic`), QoS 1."""
        await self._publish(topic or self._topic("commands"), payload, qos=1)

    async def request_raw(self, payload: bytes, *, timeout: float = 10) -> dict[str, Any]:  # noqa: ASYNC109
        """Sends `payload` as a command and returns the next reply that arrives after it, for
        payloads too broken for the station to tell which command it answers (`re` null)."""
        seen = len(self.replies)
        await self.send_raw(payload)
        await self.wait_until(lambda: len(self.replies) > seen, timeout, "reply")
        return self.replies[seen]

    def command_envelope(self, type_: str, data: dict[str, Any], *, expires_in: float = 60,
                         id_: str | None = None, station: str | None = None) -> dict[str, Any]:
        """A command envelope; `data` gets `expires_at` unless it has one."""
        return command_envelope(station or self.station_id, type_, data, now=datetime.now(UTC),
                                expires_in=timedelta(seconds=expires_in), id_=id_)

    async def command(self, type_: str, data: dict[str, Any], *, expires_in: float = 60,
                      id_: str | None = None, station: str | None = None,
                      timeout: float = 10) -> dict[str, Any]:  # noqa: ASYNC109
        """Signs and sends a command; the first reply envelope that refers to its id.

        `station` puts another station id in the envelope (it still goes to this station's
        topic), to test that the station refuses it.
        """
        if self._private_key is None:
            raise RuntimeError("this CloudPeer has no private_key to sign commands with")
        envelope = self.command_envelope(type_, data, expires_in=expires_in, id_=id_,
                                         station=station)
        payload = sign_command(self._private_key, envelope)
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._reply_waiters.setdefault(envelope["id"], []).append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await self.send_raw(payload)
                return await waiter
        except TimeoutError:
            raise TimeoutError(f"no reply to {type_} command {envelope['id']} "
                               f"within {timeout} s") from None
        finally:
            waiters = self._reply_waiters.get(envelope["id"], [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._reply_waiters.pop(envelope["id"], None)
