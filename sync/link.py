"""The station's MQTT link to the cloud (CONTRACT.md section 4).

One connection loop owns the broker connection: it connects (with the offline status as the
MQTT will), announces the station online, subscribes to commands and acks, sends the live
snapshot, and then serves the connection with four tasks until it breaks:

- events: the outbox publisher; events leave in seq order, at most a window of them
  unacknowledged, and are removed from the outbox only by the cloud's acks (`sync.outbox`);
- receive: acks slide the window, commands are queued for the command worker;
- live: the forecourt's snapshot, retained, at most once per live interval while it changes;
- replies: the replies of handled commands, kept across reconnects until published.

When the connection breaks, the loop waits (capped exponential backoff with jitter, reset by a
successful connection) and connects again; everything unacknowledged is then sent again from the
lowest seq. Nothing raises out of the link while the station runs: the station works the same
with the cloud unreachable for days, its events waiting in SQLite.

Commands are handled by one worker that outlives connections, in arrival order (an
`order.cancel` must not overtake its `order.create`), so a broken connection never interrupts a
command half way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Self

import aiomqtt
from paho.mqtt.reasoncodes import ReasonCode

from edge.model import Event, rfc3339
from sync.envelope import message_envelope
from sync.mqtt import parse_broker
from sync.outbox import Outbox, Window, parse_ack
from sync.topics import QoS, Topics

__all__ = ["Backoff", "CloudLink", "LinkError", "encode"]

log = logging.getLogger(__name__)

POLL_INTERVAL = 1.0  # the outbox is read at least this often, should a wake-up be missed
COMMAND_QUEUE = 1000  # commands received but not yet handled
REPLY_QUEUE = 1000  # replies waiting for a connection; the oldest go first when it overflows


class LinkError(Exception):
    """The broker accepted the connection but refused what the link needs from it."""


def encode(message: dict[str, Any]) -> bytes:
    """One JSON message body: UTF-8, Chinese kept as is, Decimals as exact strings."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"),
                      default=_json_value).encode("utf-8")


def _json_value(value: object) -> object:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return rfc3339(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _payload_bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode("utf-8")


def _refused(code: int | ReasonCode) -> bool:
    # SUBACK 0x80 (MQTT 3.1.1) or any reason code from 0x80 up (MQTT 5): not subscribed.
    return (code.value if isinstance(code, ReasonCode) else code) >= 0x80


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    if exc.__cause__ is not None:  # aiomqtt: "Disconnected during message iteration" from why
        text = f"{text}: {str(exc.__cause__) or type(exc.__cause__).__name__}"
    return text


def _expected(exc: BaseException) -> bool:
    """Network trouble, as opposed to a defect that deserves a traceback."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_expected(inner) for inner in exc.exceptions)
    return isinstance(exc, aiomqtt.MqttError | OSError | LinkError)


class Backoff:
    """Capped exponential backoff with "equal jitter": the n-th wait in a row is drawn from
    [c/2, c] with c = min(high, low * 2**n), so stations that lost the same broker do not all
    come back in the same second, and none waits longer than `high`."""

    def __init__(self, low: float, high: float, rng: random.Random | None = None) -> None:
        if not 0 < low <= high:
            raise ValueError(f"need 0 < low <= high, got {low} and {high}")
        self.low = low
        self.high = high
        self.attempts = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.high, self.low * 2.0 ** min(self.attempts, 60))
        self.attempts += 1
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.attempts = 0


async def _wait(event: asyncio.Event, within: float) -> None:
    with suppress(TimeoutError):
        async with asyncio.timeout(within):
            await event.wait()


class CloudLink:
    """The MQTT link; use as `async with CloudLink(...) as link:` for the daemon's life.

    `envelope(event)` builds an event's message (its own id, seq, ts and data).
    `on_command(payload)` handles a message from the commands topic and returns the reply
    envelope to publish on replies, or None. `live()` returns the forecourt's live state.
    `clock()` gives the aware time stamped on status and live messages.
    """

    def __init__(
        self,
        *,
        station_id: str,
        broker: str,
        outbox: Outbox,
        envelope: Callable[[Event], dict[str, Any]],
        on_command: Callable[[bytes], Awaitable[dict[str, Any] | None]],
        live: Callable[[], dict[str, Any]],
        boot_id: str,
        version: str,
        clock: Callable[[], datetime],
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
        window: int = 32,
        ack_timeout: float = 30.0,
        ack_timeout_max: float = 600.0,
        live_interval: float = 1.0,
        reconnect_min: float = 0.5,
        reconnect_max: float = 30.0,
        client_id: str | None = None,
        keepalive: int = 30,
        close_timeout: float = 5.0,
    ) -> None:
        self.topics = Topics(station_id)
        address = parse_broker(broker)
        if tls is not None and not address.tls:
            raise ValueError(f"a TLS context needs an mqtts:// broker, not {broker!r}")
        if address.tls and tls is None:
            tls = ssl.create_default_context()
        self.broker = broker
        self._host, self._port, self._tls = address.host, address.port, tls
        self._username, self._password = username, password
        self._client_id = client_id or f"forecourt-{station_id}"
        self._keepalive = keepalive
        self._outbox = outbox
        self._envelope = envelope
        self._on_command = on_command
        self._live = live
        self._boot_id = boot_id
        self._version = version
        self._clock = clock
        self._live_interval = live_interval
        self._close_timeout = close_timeout
        # A PUBACK slower than this means the connection is gone; the ack timeout (a cloud
        # that received but did not commit) is a separate, longer matter.
        self._publish_timeout = max(10.0, float(keepalive))
        self._window = Window(window, ack_timeout, ack_timeout_max)
        self._backoff = Backoff(reconnect_min, reconnect_max)

        self._wake = asyncio.Event()  # events committed or acked: the publisher looks again
        self._live_dirty = asyncio.Event()
        self._live_last = float("-inf")
        self._commands: asyncio.Queue[bytes] = asyncio.Queue(COMMAND_QUEUE)
        self._replies: deque[bytes] = deque(maxlen=REPLY_QUEUE)
        self._reply_ready = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._group: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._client: aiomqtt.Client | None = None
        self._failures = 0  # connection attempts failed in a row

        self.connected = False
        self.last_error: str | None = None
        self.connects = 0  # successful connections since start
        self.bad_acks = 0  # acks messages that were not {"upto_seq": N}

    # --- what the station sees

    @property
    def sent(self) -> int:
        """Event messages published, resends included."""
        return self._window.sent

    @property
    def resent(self) -> int:
        return self._window.resent

    @property
    def acked_upto(self) -> int:
        return self._window.acked_upto

    @property
    def in_flight(self) -> int:
        return self._window.in_flight

    @property
    def failures(self) -> int:
        """Connection attempts failed in a row; 0 while connected."""
        return self._failures

    def events_committed(self) -> None:
        """The ledger committed events: wake the publisher. Cheap; any thread."""
        self._notify(self._wake)

    def live_changed(self) -> None:
        """The forecourt changed: publish the live state within the live interval."""
        self._notify(self._live_dirty)

    def _notify(self, event: asyncio.Event) -> None:
        loop = self._loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            event.set()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    # --- lifetime

    async def __aenter__(self) -> Self:
        if self._group is not None:
            raise RuntimeError("the cloud link is already running")
        self._loop = asyncio.get_running_loop()
        group = asyncio.TaskGroup()
        await group.__aenter__()
        self._group = group
        self._tasks = [
            group.create_task(self._connection_loop(), name=f"cloud link {self.broker}"),
            group.create_task(self._command_worker(), name="cloud commands"),
        ]
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        """Says offline (retained) while still connected, then disconnects cleanly, so the
        broker drops the will: the cloud sees one orderly offline, not a crash."""
        group, self._group = self._group, None
        if group is None:
            return
        try:
            await self._say_offline()
        finally:
            for task in self._tasks:
                task.cancel()
            await group.__aexit__(None, None, None)
            self._tasks = []

    async def _say_offline(self) -> None:
        client = self._client
        if client is None or not self.connected:
            return
        try:
            await client.publish(self.topics.status, self._status(online=False),
                                 qos=QoS.AT_LEAST_ONCE, retain=True, timeout=self._close_timeout)
        except aiomqtt.MqttError as exc:
            log.warning("could not tell the cloud the station goes offline: %s", exc)

    # --- the connection loop

    async def _connection_loop(self) -> None:
        while True:
            try:
                await self._connect_and_serve()
            except Exception as exc:  # the link must outlive any failure
                self._connection_failed(exc)
            await asyncio.sleep(self._backoff.next_delay())

    def _connection_failed(self, exc: BaseException) -> None:
        reason = _describe(exc)
        was_up = self.connects > 0 and self._failures == 0  # a connection, not an attempt
        self._failures += 1
        self.last_error = reason
        trace = not _expected(exc)
        if self._failures == 1:
            what = "lost" if was_up else "cannot connect to"
            log.error("cloud link: %s %s: %s; retrying, events wait in the outbox",
                      what, self.broker, reason, exc_info=exc if trace else None)
        else:
            log.debug("cloud link: attempt %d failed: %s", self._failures, reason,
                      exc_info=exc if trace else None)

    def _new_client(self) -> aiomqtt.Client:
        client = aiomqtt.Client(
            self._host, self._port,
            username=self._username, password=self._password,
            identifier=self._client_id,
            # A persistent session: commands and acks sent during a short outage wait at the
            # broker instead of being lost (commands carry expires_at for the long ones).
            clean_session=False,
            keepalive=self._keepalive,
            tls_context=self._tls,
            will=aiomqtt.Will(self.topics.status, self._status(online=False),
                              qos=QoS.AT_LEAST_ONCE, retain=True),
            timeout=self._publish_timeout,
            logger=log.getChild("mqtt"),
        )
        # A full window of publishes awaiting their PUBACKs is normal, not worth a warning.
        client.pending_calls_threshold = self._window.size + 8
        return client

    async def _connect_and_serve(self) -> None:
        # A new client per connection: paho would otherwise resend, on its own, publishes that
        # raised before the break; the outbox already resends what matters, in order.
        client = self._new_client()
        await self._open(client)
        try:
            self._client = client
            await client.publish(self.topics.status, self._status(online=True),
                                 qos=QoS.AT_LEAST_ONCE, retain=True)
            wanted: list[tuple[str, int]] = [(self.topics.commands, QoS.AT_LEAST_ONCE),
                                             (self.topics.acks, QoS.AT_LEAST_ONCE)]
            granted = await client.subscribe(wanted)
            if any(_refused(code) for code in granted):
                raise LinkError(f"the broker refused the subscription to {self.topics.commands}"
                                f" or {self.topics.acks}")
            await self._publish_live(client)
            self._connected()
            async with asyncio.TaskGroup() as session:
                session.create_task(self._receive(client), name="cloud receive")
                session.create_task(self._publish_events(client), name="cloud events")
                session.create_task(self._publish_live_changes(client), name="cloud live")
                session.create_task(self._publish_replies(client), name="cloud replies")
        finally:
            self._client = None
            self.connected = False
            with suppress(Exception):
                await client.__aexit__(None, None, None)

    async def _open(self, client: aiomqtt.Client) -> None:
        # paho connects in a worker thread that a cancellation cannot stop: on cancel, let it
        # finish and close what it opened, so no connection (and its will) outlives the link.
        opening = asyncio.ensure_future(client.__aenter__())
        try:
            await asyncio.shield(opening)
        except asyncio.CancelledError:
            with suppress(Exception):
                await opening
                await client.__aexit__(None, None, None)
            raise

    def _connected(self) -> None:
        if self._failures:
            log.info("cloud link: connected to %s again after %d failed attempts",
                     self.broker, self._failures)
        else:
            log.info("cloud link: connected to %s", self.broker)
        self.connected = True
        self.connects += 1
        self.last_error = None
        self._failures = 0
        self._backoff.reset()

    # --- messages the link makes itself

    def _message(self, type_: str, data: dict[str, Any]) -> bytes:
        return encode(message_envelope(self.topics.station_id, type_, data, ts=self._clock()))

    def _status(self, *, online: bool) -> bytes:
        return self._message("status", {"online": online, "boot_id": self._boot_id,
                                        "version": self._version, "ts": rfc3339(self._clock())})

    # --- receiving

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = _payload_bytes(message.payload)
            if message.topic.matches(self.topics.acks):
                await self._handle_ack(payload)
            elif message.topic.matches(self.topics.commands):
                try:
                    self._commands.put_nowait(payload)
                except asyncio.QueueFull:
                    log.error("cloud link: %d commands waiting, dropping a new one", COMMAND_QUEUE)
            else:
                log.debug("cloud link: message on unexpected topic %s", message.topic)
        raise LinkError("the message stream ended")

    async def _handle_ack(self, payload: bytes) -> None:
        upto = parse_ack(payload)
        if upto is None:
            self.bad_acks += 1
            log.log(logging.WARNING if self.bad_acks == 1 else logging.DEBUG,
                    "cloud link: ignoring an ack that is not {\"upto_seq\": N >= 0}: %r",
                    payload[:200])
            return
        if upto <= self._window.acked_upto:
            return  # already applied; acks repeat after reconnects and resends
        try:
            await self._outbox.ack(upto)
        except Exception as exc:  # it comes again after a resend
            log.warning("cloud link: could not record the ack up to seq %d: %s", upto, exc)
            return
        self._window.ack(upto)
        self._wake.set()

    # --- the outbox publisher

    async def _publish_events(self, client: aiomqtt.Client) -> None:
        window = self._window
        window.restart()
        loop = asyncio.get_running_loop()
        read_failures = 0
        while True:
            self._wake.clear()  # before reading, so a commit during the read is not missed
            if window.room() > 0:
                try:
                    events = await self._outbox.pending(window.cursor, window.room())
                except Exception as exc:  # the store may be busy or failing
                    read_failures += 1
                    log.log(logging.ERROR if read_failures == 1 else logging.DEBUG,
                            "cloud link: cannot read the outbox: %s", exc)
                    events = []
                else:
                    read_failures = 0
                batch = window.take(events, loop.time())
                if batch:
                    await self._publish_batch(client, batch)
                    continue
            timeout = POLL_INTERVAL
            deadline = window.next_timeout()
            if deadline is not None:
                timeout = min(timeout, max(0.0, deadline - loop.time()))
            await _wait(self._wake, timeout)
            oldest = window.oldest_in_flight
            if window.handle_timeout(loop.time()):
                log.log(logging.WARNING if window.stalled == 1 else logging.DEBUG,
                        "cloud link: no ack for seq %s in time (%d in a row); sending the "
                        "unacknowledged events again", oldest, window.stalled)

    async def _publish_batch(self, client: aiomqtt.Client, batch: list[Event]) -> None:
        messages = [(event.seq, encode(self._envelope(event))) for event in batch]
        # Tasks start in the order they are created and each hands its message to paho before
        # its first await, so the broker gets them in seq order while their PUBACKs overlap.
        async with asyncio.TaskGroup() as publishing:
            for seq, payload in messages:
                publishing.create_task(
                    client.publish(self.topics.events, payload, qos=QoS.AT_LEAST_ONCE),
                    name=f"cloud event {seq}")

    # --- live state

    async def _publish_live_changes(self, client: aiomqtt.Client) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._live_dirty.wait()
            delay = self._live_last + self._live_interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)  # coalesces every change of the interval into one
            await self._publish_live(client)

    async def _publish_live(self, client: aiomqtt.Client) -> None:
        self._live_dirty.clear()  # before the snapshot: a change after it publishes again
        self._live_last = asyncio.get_running_loop().time()
        try:
            payload = self._message("live", self._live())
        except Exception:
            log.exception("cloud link: cannot take the live snapshot")
            return
        await client.publish(self.topics.live, payload, qos=QoS.AT_MOST_ONCE, retain=True)

    # --- commands and replies

    async def _command_worker(self) -> None:
        while True:
            payload = await self._commands.get()
            try:
                reply = await self._on_command(payload)
                if reply is None:
                    continue
                body = encode(reply)
            except Exception:
                log.exception("cloud link: the command handler failed on %r", payload[:200])
                continue
            if len(self._replies) == self._replies.maxlen:
                log.error("cloud link: %d replies wait for a connection, dropping the oldest",
                          REPLY_QUEUE)
            self._replies.append(body)
            self._reply_ready.set()

    async def _publish_replies(self, client: aiomqtt.Client) -> None:
        while True:
            while self._replies:
                body = self._replies[0]
                await client.publish(self.topics.replies, body, qos=QoS.AT_LEAST_ONCE)
                # Only now is it gone; a break before the PUBACK sends it again later.
                if self._replies and self._replies[0] is body:
                    self._replies.popleft()
            self._reply_ready.clear()
            await self._reply_ready.wait()
