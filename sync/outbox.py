"""The outbox publisher: the station's events on their way to the cloud.

CONTRACT.md section 4: an event stays in the station's outbox until an `acks` message covers its
(epoch, seq) (a broker PUBACK is not a cloud commit), events leave in `seq` order, and
unacknowledged events are sent again, with the same `id`, `seq` and `epoch`, after a reconnect or a
timeout.

`Window` (sync/window.py) is the bookkeeping: it does no I/O and takes the time as an argument,
so every rule is tested without a broker or a clock. `Publisher` is its asyncio shell: it reads
the outbox, asks the window what to publish, publishes it on the connection it is given, and
feeds acks and timer expiries back in.

What arrives on `acks` is checked before it touches the outbox (docs/security.md, "The cloud
link"): an ack above the highest seq the ledger has assigned, or for an epoch the ledger has not
reached, cannot come from a cloud that received the events, so it is refused whole (never
clamped), counted and raised as a `cloud.alarm`; later genuine acks work as before. A `conflict`
(the cloud holds other events under keys the station used) moves the unacknowledged events to a
new epoch (docs/cloud.md, "Epochs").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress
from typing import Any, Protocol

import aiomqtt

from domain.model import Event
from sync.acks import Ack, Conflict, Position, parse_ack
from sync.topics import QoS, encode
from sync.window import Window

__all__ = ["ALARM_EVENT", "ALARM_INTERVAL", "POLL_INTERVAL", "Ack", "Conflict",
           "Outbox", "Position", "Publisher", "Window", "parse_ack"]

log = logging.getLogger(__name__)

POLL_INTERVAL = 1.0  # the outbox is read at least this often, should a wake-up be missed
ALARM_EVENT = "cloud.alarm"
# Refused acks raise one alarm event at most this often (seconds); the ones in between are
# counted into the next. A flood of forged acks must not become a flood of writes.
ALARM_INTERVAL = 60.0
# Acks above what the station is known to have assigned wait for one read of the ledger's
# counters; beyond this many waiting, more are dropped (a genuine ack comes again anyway).
MAX_UNCHECKED = 64
MAX_CONFLICTS = 16
class Outbox(Protocol):
    """What the link needs from the station's durable outbox."""

    async def pending(self, after_seq: int, limit: int) -> list[Event]:
        """Unacknowledged events with a seq greater than `after_seq`, in seq order."""
        ...

    async def ack(self, upto_seq: int, epoch: int) -> int:
        """The cloud committed every event of `epoch` up to `upto_seq`: drop them; returns how
        many."""
        ...

    async def backlog(self) -> int:
        """How many events wait for an acknowledgement."""
        ...

    async def position(self) -> tuple[int, int]:
        """(current epoch, highest seq assigned), from the durable counters."""
        ...

    async def alarm(self, data: dict[str, Any]) -> None:
        """Record a `cloud.alarm` event with `data`."""
        ...

    async def conflict(self, epoch: int, seq: int, cloud_epoch: int) -> int | None:
        """Move the unacknowledged events from (epoch, seq) on to a new epoch above
        `cloud_epoch`; the new epoch, or None when the outbox no longer holds (epoch, seq)."""
        ...


class Publisher:
    """Publishes the outbox through one connection at a time; acks survive reconnects.

    `wakeup` is set when events were committed or acked (set it from the event loop's thread).
    """

    def __init__(self, outbox: Outbox, envelope: Callable[[Event], dict[str, Any]], topic: str,
                 window: Window, *, alarm_interval: float = ALARM_INTERVAL) -> None:
        self.outbox = outbox
        self.window = window
        self._envelope = envelope
        self._topic = topic
        self.wakeup = asyncio.Event()
        self.bad_acks = 0  # acks messages that were neither an ack nor a conflict
        self.forged_acks = 0  # acks (and conflicts) beyond what the ledger has assigned
        self.last_forged: Ack | Conflict | None = None
        self.epochs_started = 0  # conflicts that moved events to a new epoch
        # The highest upto_seq noted per epoch, within the ledger's known position, maybe not
        # committed yet.
        self._pending: dict[int, int] = {}
        self._unchecked: list[Ack] = []  # above the known position: checked against the ledger
        self._conflicts: list[Conflict] = []
        # A lower bound of the ledger's position: the durable counters when last read, raised
        # by every event read since. None until the first read.
        self._known: Position | None = None
        self._rewind = False
        self._alarm_interval = alarm_interval
        self._next_alarm = float("-inf")
        self._unreported = 0  # refused since the last alarm event
        self._publishing: set[asyncio.Task[None]] = set()  # publishes awaiting their PUBACK
        self._failed: BaseException | None = None  # a publish of this connection failed
        self._ack_wake = asyncio.Event()

    @property
    def position(self) -> Position | None:
        """The ledger's position as the link last knew it."""
        return self._known

    def note_ack(self, payload: bytes) -> None:
        """Take an ack off the wire without waiting for the store: acks are cumulative, so
        while one is being committed the newer ones coalesce into the highest of each epoch.
        Only acks within what the ledger is known to have assigned coalesce: one forged ack must
        not swallow the genuine ones after it."""
        message = parse_ack(payload)
        if message is None:
            self.bad_acks += 1
            log.log(logging.WARNING if self.bad_acks == 1 else logging.DEBUG,
                    "cloud link: ignoring an acks message that is neither {\"upto_seq\": N} "
                    "nor {\"conflict\": ...}: %r", payload[:200])
            return
        if isinstance(message, Conflict):
            if len(self._conflicts) < MAX_CONFLICTS:
                self._conflicts.append(message)
        elif self._within(message):
            if message.upto_seq > self._pending.get(message.epoch, 0):
                self._pending[message.epoch] = message.upto_seq
        elif len(self._unchecked) < MAX_UNCHECKED:
            self._unchecked.append(message)
        else:
            log.debug("cloud link: %d acks wait for a check, dropping %s", MAX_UNCHECKED,
                      message)
            return
        self._ack_wake.set()

    def _within(self, ack: Ack) -> bool:
        known = self._known
        return known is not None and ack.epoch <= known.epoch and ack.upto_seq <= known.seq

    def _raise_known(self, epoch: int, seq: int) -> None:
        known = self._known
        self._known = Position(epoch, seq) if known is None else Position(
            max(known.epoch, epoch), max(known.seq, seq))

    async def handle_ack(self, payload: bytes) -> None:
        """Note an ack and apply it now (tests and callers without the ack task)."""
        self.note_ack(payload)
        await self._apply_pending_ack()

    async def apply_acks(self) -> None:
        """Runs with a connection: commits the highest acks noted, one commit at a time."""
        while True:
            await self._ack_wake.wait()
            self._ack_wake.clear()
            await self._apply_pending_ack()

    async def _apply_pending_ack(self) -> None:
        if self._unchecked or self._conflicts:
            await self._check()
        pending, self._pending = self._pending, {}
        for epoch, upto in sorted(pending.items()):
            if upto <= self.window.acked.get(epoch, 0):
                continue  # already applied; acks repeat after reconnects and resends
            try:
                await self.outbox.ack(upto, epoch)
            except Exception as exc:  # it comes again after the resend
                log.warning("cloud link: could not record the ack up to seq %d of epoch %d: %s",
                            upto, epoch, exc)
                continue
            self.window.ack(upto, epoch)
            self.wakeup.set()

    async def _check(self) -> None:
        """Acks and conflicts beyond the known position, against the durable counters: a
        restart or a burst of new events is no reason to refuse a genuine ack."""
        try:
            epoch, seq = await self.outbox.position()
        except Exception as exc:  # they wait for the next ack message
            log.warning("cloud link: cannot read the ledger's position to check an ack: %s", exc)
            return
        self._raise_known(epoch, seq)
        position = Position(epoch, seq)
        unchecked, self._unchecked = self._unchecked, []
        for ack in unchecked:
            if self._within(ack):
                if ack.upto_seq > self._pending.get(ack.epoch, 0):
                    self._pending[ack.epoch] = ack.upto_seq
            else:
                await self._refuse(ack, position)
        conflicts, self._conflicts = self._conflicts, []
        for conflict in conflicts:
            await self._resolve(conflict, position)

    async def _refuse(self, message: Ack | Conflict, position: Position) -> None:
        """An ack (or conflict) no cloud that received the station's events can send."""
        self.forged_acks += 1
        self.last_forged = message
        self._unreported += 1
        now = asyncio.get_running_loop().time()
        due = now >= self._next_alarm
        what = (f"an ack up to seq {message.upto_seq} of epoch {message.epoch}"
                if isinstance(message, Ack) else
                f"a conflict at seq {message.seq} of epoch {message.epoch}")
        log.log(logging.ERROR if due else logging.DEBUG,
                "cloud link: refused %s: the ledger has assigned seqs up to %d in epoch %d; "
                "only the cloud may publish acks, so someone else may be publishing on %s "
                "(%d refused since start)", what, position.seq, position.epoch,
                self._topic.rsplit("/", 1)[0] + "/acks", self.forged_acks)
        if not due:
            return
        self._next_alarm = now + self._alarm_interval
        data: dict[str, Any] = {
            "kind": "forged_ack",
            "message": (f"已拒绝一条异常的云端确认（{what}，本站只分配到序号 "
                        f"{position.seq}）：可能有人冒充云端发送确认，请检查 MQTT 账号与权限"),
            "refused": self._unreported,
            "total_refused": self.forged_acks,
            "highest_seq": position.seq,
            "current_epoch": position.epoch,
            "ack": message._asdict(),
        }
        self._unreported = 0
        try:
            await self.outbox.alarm(data)
        except Exception as exc:  # the log line above stays; the count goes in the next alarm
            log.error("cloud link: cannot record the forged ack alarm: %s", exc)

    async def _resolve(self, conflict: Conflict, position: Position) -> None:
        if conflict.epoch > position.epoch or conflict.seq > position.seq:
            await self._refuse(conflict, position)
            return
        try:
            epoch = await self.outbox.conflict(conflict.epoch, conflict.seq, conflict.cloud_epoch)
        except Exception as exc:  # the cloud reports it again when the event comes again
            log.warning("cloud link: cannot start a new epoch for the conflict at seq %d of "
                        "epoch %d: %s", conflict.seq, conflict.epoch, exc)
            return
        if epoch is None:
            log.debug("cloud link: conflict %s is stale (no such unacknowledged event)", conflict)
            return
        self.epochs_started += 1
        self._raise_known(epoch, position.seq)
        log.warning("cloud link: the cloud holds other events under epoch %d from seq %d (a "
                    "restored or replaced ledger); the unacknowledged events from seq %d on go "
                    "again in the new epoch %d", conflict.epoch, conflict.seq, conflict.seq,
                    epoch)
        self._rewind = True
        self.wakeup.set()

    async def run(self, client: aiomqtt.Client) -> None:
        """Serves one connection, from the lowest unacknowledged seq, until cancelled or the
        client fails."""
        window = self.window
        window.restart()
        self._rewind = False
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
            if self._rewind:  # events moved to a new epoch: all of them again, from the lowest
                self._rewind = False
                window.rewind()
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
                if events:
                    self._raise_known(max(event.epoch for event in events), events[-1].seq)
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
