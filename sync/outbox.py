"""The outbox publisher: the station's events on their way to the cloud.

CONTRACT.md section 4: an event stays in the station's outbox until an `acks` message covers its
`seq` (a broker PUBACK is not a cloud commit), events leave in `seq` order, and unacknowledged
events are sent again, with the same `id` and `seq`, after a reconnect or a timeout.

`Window` is the bookkeeping: it does no I/O and takes the time as an argument, so every rule is
tested without a broker or a clock. `Publisher` is its asyncio shell: it reads the outbox, asks
the window what to publish, publishes it on the connection it is given, and feeds acks and timer
expiries back in.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any, Protocol

import aiomqtt

from domain.model import Event
from sync.topics import QoS, encode

__all__ = ["POLL_INTERVAL", "Outbox", "Publisher", "Window", "parse_ack"]

log = logging.getLogger(__name__)

POLL_INTERVAL = 1.0  # the outbox is read at least this often, should a wake-up be missed

# SQLite integers are 64-bit signed; a larger upto_seq could not even be compared in SQL.
_MAX_SEQ = 2**63 - 1


class Outbox(Protocol):
    """What the link needs from the station's durable outbox."""

    async def pending(self, after_seq: int, limit: int) -> list[Event]:
        """Unacknowledged events with a seq greater than `after_seq`, in seq order."""
        ...

    async def ack(self, upto_seq: int) -> int:
        """The cloud committed every event up to `upto_seq`: drop them; returns how many."""
        ...

    async def backlog(self) -> int:
        """How many events wait for an acknowledgement."""
        ...


def parse_ack(payload: bytes) -> int | None:
    """`upto_seq` from an `acks` message, or None when the payload is not a valid ack.

    Accepts the bare `{"upto_seq": N}` and the same object as the `data` of an envelope (the
    contract wraps every message body in one). N must be an integer >= 0; JSON `true` is not 1.
    """
    try:
        message = json.loads(payload)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if isinstance(message, dict) and "upto_seq" not in message:
        message = message.get("data")
    if not isinstance(message, dict):
        return None
    upto = message.get("upto_seq")
    if isinstance(upto, bool) or not isinstance(upto, int) or not 0 <= upto <= _MAX_SEQ:
        return None
    return upto


class Window:
    """Up to `size` events in flight (published, not yet covered by an ack), in seq order.

    - `take(events, now)` picks, from the outbox's pending events, the ones to publish now.
    - `ack(upto)` slides the window; only acks free room, PUBACKs never do.
    - `restart()` on every new connection: everything unacked goes again from the lowest seq.
    - `handle_timeout(now)`: when the oldest event in flight is not acked within the ack timeout,
      the whole window goes again. Each timeout in a row doubles the wait (up to
      `ack_timeout_max`) so a cloud that is down for days is not sent the same window every few
      seconds over a metered link; any ack that makes progress, or a new connection, resets it.
    """

    def __init__(self, size: int, ack_timeout: float, ack_timeout_max: float | None = None) -> None:
        if size < 1:
            raise ValueError(f"window size must be at least 1, got {size}")
        if ack_timeout <= 0:
            raise ValueError(f"ack timeout must be positive, got {ack_timeout}")
        self.size = size
        self.ack_timeout = ack_timeout
        self.ack_timeout_max = max(ack_timeout, ack_timeout_max or ack_timeout)
        self._in_flight: deque[tuple[int, float]] = deque()  # (seq, sent at), in seq order
        self._patience = ack_timeout
        self.cursor = 0  # highest seq taken since the last restart: the outbox is read after it
        self.acked_upto = 0
        self.highest_sent = 0
        self.sent = 0
        self.resent = 0
        self.timeouts = 0
        self.stalled = 0  # timeouts in a row, without an ack making progress in between

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def oldest_in_flight(self) -> int | None:
        return self._in_flight[0][0] if self._in_flight else None

    def room(self) -> int:
        return self.size - len(self._in_flight)

    def restart(self) -> None:
        self.cursor = 0
        self._in_flight.clear()
        self._patience = self.ack_timeout
        self.stalled = 0

    def take(self, events: Sequence[Event], now: float) -> list[Event]:
        """The events to publish now, in order; they count as in flight from `now`."""
        chosen: list[Event] = []
        for event in events:
            if event.seq <= self.cursor:
                continue  # already published on this connection and still in flight
            if self.room() <= 0:
                break
            self.cursor = event.seq
            chosen.append(event)
            self.sent += 1
            if event.seq <= self.highest_sent:
                self.resent += 1
            else:
                self.highest_sent = event.seq
            # An ack that raced with the outbox read already covers it: a harmless duplicate
            # for the cloud, and nothing to wait for.
            if event.seq > self.acked_upto:
                self._in_flight.append((event.seq, now))
        return chosen

    def ack(self, upto_seq: int) -> bool:
        """The cloud committed everything up to `upto_seq`; True if that is news."""
        if upto_seq <= self.acked_upto:
            return False
        self.acked_upto = upto_seq
        while self._in_flight and self._in_flight[0][0] <= upto_seq:
            self._in_flight.popleft()
        self._patience = self.ack_timeout
        self.stalled = 0
        return True

    def next_timeout(self) -> float | None:
        """When the oldest event in flight has waited too long; None when nothing is in flight."""
        if not self._in_flight:
            return None
        return self._in_flight[0][1] + self._patience

    def handle_timeout(self, now: float) -> bool:
        """True when the window must be sent again (the caller then reads the outbox anew)."""
        deadline = self.next_timeout()
        if deadline is None or now < deadline:
            return False
        self.timeouts += 1
        self.stalled += 1
        self.cursor = 0
        self._in_flight.clear()
        self._patience = min(self._patience * 2, self.ack_timeout_max)
        return True


class Publisher:
    """Publishes the outbox through one connection at a time; acks survive reconnects.

    `wakeup` is set when events were committed or acked (set it from the event loop's thread).
    """

    def __init__(self, outbox: Outbox, envelope: Callable[[Event], dict[str, Any]], topic: str,
                 window: Window) -> None:
        self.outbox = outbox
        self.window = window
        self._envelope = envelope
        self._topic = topic
        self.wakeup = asyncio.Event()
        self.bad_acks = 0  # acks messages that were not {"upto_seq": N}
        self._pending_ack = 0  # the highest upto_seq received, maybe not committed yet
        self._publishing: set[asyncio.Task[None]] = set()  # publishes awaiting their PUBACK
        self._failed: BaseException | None = None  # a publish of this connection failed
        self._ack_wake = asyncio.Event()

    def note_ack(self, payload: bytes) -> None:
        """Take an ack off the wire without waiting for the store: acks are cumulative, so
        while one is being committed the newer ones coalesce into the highest."""
        upto = parse_ack(payload)
        if upto is None:
            self.bad_acks += 1
            log.log(logging.WARNING if self.bad_acks == 1 else logging.DEBUG,
                    "cloud link: ignoring an ack that is not {\"upto_seq\": N >= 0}: %r",
                    payload[:200])
            return
        if upto > self._pending_ack:
            self._pending_ack = upto
            self._ack_wake.set()

    async def handle_ack(self, payload: bytes) -> None:
        """Note an ack and apply it now (tests and callers without the ack task)."""
        self.note_ack(payload)
        await self._apply_pending_ack()

    async def apply_acks(self) -> None:
        """Runs with a connection: commits the highest ack noted, one commit at a time."""
        while True:
            await self._ack_wake.wait()
            self._ack_wake.clear()
            await self._apply_pending_ack()

    async def _apply_pending_ack(self) -> None:
        upto = self._pending_ack
        if upto <= self.window.acked_upto:
            return  # already applied; acks repeat after reconnects and resends
        try:
            await self.outbox.ack(upto)
        except Exception as exc:  # it comes again after the resend
            log.warning("cloud link: could not record the ack up to seq %d: %s", upto, exc)
            return
        self.window.ack(upto)
        self.wakeup.set()

    async def run(self, client: aiomqtt.Client) -> None:
        """Serves one connection, from the lowest unacknowledged seq, until cancelled or the
        client fails."""
        window = self.window
        window.restart()
        self._failed = None
        try:
            await self._serve(client, window)
        finally:
            self._stop_publishing()

    async def _serve(self, client: aiomqtt.Client, window: Window) -> None:
        loop = asyncio.get_running_loop()
        read_failures = 0
        while True:
            if self._failed is not None:
                raise self._failed
            self.wakeup.clear()  # before reading, so a commit during the read is not missed
            if window.room() > 0:
                try:
                    events = await self.outbox.pending(window.cursor, window.room())
                except Exception as exc:  # the store may be busy or failing: try again later
                    read_failures += 1
                    log.log(logging.ERROR if read_failures == 1 else logging.DEBUG,
                            "cloud link: cannot read the outbox: %s", exc)
                    events = []
                else:
                    read_failures = 0
                batch = window.take(events, loop.time())
                if batch:
                    await self._publish(client, batch)
                    continue
            within = POLL_INTERVAL
            deadline = window.next_timeout()
            if deadline is not None:
                within = min(within, max(0.0, deadline - loop.time()))
            with suppress(TimeoutError):
                async with asyncio.timeout(within):
                    await self.wakeup.wait()
            oldest = window.oldest_in_flight
            if window.handle_timeout(loop.time()):
                log.log(logging.WARNING if window.stalled == 1 else logging.DEBUG,
                        "cloud link: no ack for seq %s in time (%d in a row); sending the "
                        "unacknowledged events again", oldest, window.stalled)

    async def _publish(self, client: aiomqtt.Client, batch: list[Event]) -> None:
        """Hand a batch to the client without waiting for its PUBACKs: the window (freed only
        by the cloud's acks) is what bounds the events in flight, so the next page can be
        read while the broker answers. A failed publish ends this connection's run."""
        if self._failed is not None:
            raise self._failed
        messages = [(event.seq, encode(self._envelope(event))) for event in batch]
        loop = asyncio.get_running_loop()
        # Tasks start in the order they are created and each hands its message to paho before
        # its first await, so the broker gets them in seq order while their PUBACKs overlap.
        for seq, payload in messages:
            task = loop.create_task(
                client.publish(self._topic, payload, qos=QoS.AT_LEAST_ONCE),
                name=f"cloud event {seq}")
            self._publishing.add(task)
            task.add_done_callback(self._published)
        await asyncio.sleep(0)  # let them run up to their first await, in order

    def _published(self, task: asyncio.Task[None]) -> None:
        self._publishing.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and self._failed is None:
            self._failed = exc
            self.wakeup.set()

    def _stop_publishing(self) -> None:
        for task in tuple(self._publishing):
            task.cancel()
        self._publishing.clear()
