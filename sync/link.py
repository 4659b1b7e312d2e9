"""The station's MQTT link to the cloud (CONTRACT.md section 4).

One connection loop owns the broker connection: it connects (with the offline status as the
MQTT will), announces the station online, subscribes to commands and acks, sends the live
snapshot, and then serves the connection with four tasks until it breaks:

- events: the outbox publisher; events leave in seq order, at most a window of them
  unacknowledged, and are removed from the outbox only by the cloud's acks (`sync.outbox`);
- receive: acks slide the window (only once checked against the ledger: an ack above what it
  assigned is refused and raised as an alarm, a conflict moves events to a new epoch), commands
  are queued for the command worker;
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
import logging
import socket
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import aiomqtt

from domain.model import Event, rfc3339
from sync.envelope import message_envelope
from sync.mqtt import (
    Backoff,
    LinkError,
    describe_error,
    is_network_error,
    parse_broker,
    payload_bytes,
    subscription_refused,
)
from sync.outbox import Outbox, Publisher, Window
from sync.topics import QoS, Topics, encode

__all__ = ["CloudLink"]

log = logging.getLogger(__name__)

COMMAND_QUEUE = 1000  # commands received but not yet handled
REPLY_QUEUE = 1000  # replies waiting for a connection; the oldest go first when it overflows


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
        window: int = 512,
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
        self._publisher = Publisher(outbox, envelope, self.topics.events,
                                    Window(window, ack_timeout, ack_timeout_max))
        self._backoff = Backoff(reconnect_min, reconnect_max)

        self._live_dirty = asyncio.Event()
        self._live_last = float("-inf")
        self._commands: asyncio.Queue[bytes] = asyncio.Queue(COMMAND_QUEUE)
        self._replies: deque[bytes] = deque(maxlen=REPLY_QUEUE)
        self._reply_ready = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: asyncio.Task[None] | None = None
        self._entered = False
        self._client: aiomqtt.Client | None = None
        self._failures = 0  # connection attempts failed in a row

        self.connected = False
        self.last_error: str | None = None
        self.connects = 0  # successful connections since start

    # --- what the station sees

    @property
    def sent(self) -> int:
        """Event messages published, resends included."""
        return self._publisher.window.sent

    @property
    def resent(self) -> int:
        return self._publisher.window.resent

    @property
    def acked_upto(self) -> int:
        """The highest seq the cloud acknowledged since the station started (any epoch)."""
        return self._publisher.window.acked_upto

    @property
    def acked(self) -> dict[int, int]:
        """epoch -> the highest seq of that epoch the cloud acknowledged since the start."""
        return dict(self._publisher.window.acked)

    @property
    def forged_acks(self) -> int:
        """Acks refused for naming more than the ledger assigned (docs/security.md)."""
        return self._publisher.forged_acks

    @property
    def epoch(self) -> int | None:
        """The ledger's epoch as the link last knew it (None before it first looked)."""
        position = self._publisher.position
        return None if position is None else position.epoch

    @property
    def epochs_started(self) -> int:
        """Conflicts reported by the cloud that moved events to a new epoch since the start."""
        return self._publisher.epochs_started

    def health(self) -> dict[str, Any]:
        """The link's part of `GET /api/v1/health`'s `sync` (besides the outbox backlog)."""
        return {"connected": self.connected, "forged_acks": self.forged_acks,
                "bad_acks": self.bad_acks, "epoch": self.epoch,
                "epochs_started": self.epochs_started}

    @property
    def in_flight(self) -> int:
        return self._publisher.window.in_flight

    @property
    def bad_acks(self) -> int:
        """Messages on the acks topic that were neither an ack nor a conflict."""
        return self._publisher.bad_acks

    @property
    def failures(self) -> int:
        """Connection attempts failed in a row; 0 while connected."""
        return self._failures

    def events_committed(self) -> None:
        """The ledger committed events: wake the publisher. Cheap; any thread."""
        self._notify(self._publisher.wakeup)

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
        """Starts the link: one task that owns its task group (the connection loop, reconnects
        included, and the command worker), as aiomqtt's client does; an error inside it never
        reaches the task that entered the link (``wait`` surfaces it)."""
        if self._entered:
            raise RuntimeError("the cloud link is already running")
        self._entered = True
        self._loop = asyncio.get_running_loop()
        self._start()
        return self

    def _start(self) -> None:
        assert self._loop is not None
        self._runner = self._loop.create_task(self._run(), name=f"cloud link {self.broker}")

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._connection_loop(), name=f"cloud link {self.broker}")
            group.create_task(self._command_worker(), name="cloud commands")

    async def wait(self) -> None:
        """Until the link stops; raises what killed it. Called again after it died, it starts
        the link again (the station's supervisor restarts a dead link so, with a backoff)."""
        if not self._entered:
            raise RuntimeError("enter the cloud link first")
        if self._runner is None or self._runner.done():
            self._start()
        assert self._runner is not None
        await asyncio.shield(self._runner)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        """Says offline (retained) while still connected, then disconnects cleanly, so the
        broker drops the will: the cloud sees one orderly offline, not a crash."""
        if not self._entered:
            return
        self._entered = False
        try:
            await self._say_offline()
        finally:
            runner, self._runner = self._runner, None
            if runner is not None:
                runner.cancel()
                await asyncio.wait([runner])

    async def _say_offline(self) -> None:
        client = self._client  # set from the CONNACK on, before the online status goes out
        if client is None:
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
        reason = describe_error(exc)
        was_up = self.connects > 0 and self._failures == 0  # a connection, not an attempt
        self._failures += 1
        self.last_error = reason
        trace = not is_network_error(exc)
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
            # Events are small messages: without TCP_NODELAY each window waits for the kernel's
            # delayed ACK of the previous segment (tens of milliseconds), see docs/benchmarks.md.
            socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        )
        # A full window of publishes awaiting their PUBACKs is normal, not worth a warning.
        client.pending_calls_threshold = self._publisher.window.size + 8
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
            if any(subscription_refused(code) for code in granted):
                raise LinkError(f"the broker refused the subscription to {self.topics.commands}"
                                f" or {self.topics.acks}")
            await self._publish_live(client)
            self._connected()
            async with asyncio.TaskGroup() as session:
                session.create_task(self._receive(client), name="cloud receive")
                session.create_task(self._publisher.apply_acks(), name="cloud acks")
                session.create_task(self._publisher.run(client), name="cloud events")
                session.create_task(self._publish_live_changes(client), name="cloud live")
                session.create_task(self._publish_replies(client), name="cloud replies")
        finally:
            self._client = None
            self.connected = False
            with suppress(Exception):
                await client.__aexit__(None, None, None)

    async def _open(self, client: aiomqtt.Client) -> None:
        # paho connects in a worker thread that a cancellation cannot stop, and then waits for
        # the CONNACK. On cancel (the station stops), give the attempt a short while to finish
        # and close what it opened, so no connection outlives the link; a broker that accepted
        # TCP but never answers is dropped instead of being waited for.
        opening = asyncio.ensure_future(client.__aenter__())
        try:
            await asyncio.shield(opening)
        except asyncio.CancelledError:
            done, _ = await asyncio.wait([opening], timeout=self._close_timeout)
            if done:
                if not opening.cancelled() and opening.exception() is None:
                    with suppress(Exception):
                        await client.__aexit__(None, None, None)
            else:
                opening.cancel()
                await asyncio.wait([opening])
                # aiomqtt 2 has no public way to drop a half-open connection: paho's
                # disconnect() closes the socket once the DISCONNECT is written. aiomqtt's
                # disconnect callback would trip over the connect it just saw cancelled.
                paho = client._client
                paho.on_disconnect = None
                paho.disconnect()
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
            payload = payload_bytes(message.payload)
            if message.topic.matches(self.topics.acks):
                self._publisher.note_ack(payload)
            elif message.topic.matches(self.topics.commands):
                try:
                    self._commands.put_nowait(payload)
                except asyncio.QueueFull:
                    log.error("cloud link: %d commands waiting, dropping a new one", COMMAND_QUEUE)
            else:
                log.debug("cloud link: message on unexpected topic %s", message.topic)
        raise LinkError("the message stream ended")

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
