"""What the cloud keeps of one station's event stream, and when it acks (no I/O, time as an
argument): the stream logic of the test cloud (simulator/cloud.py) and the fleet bench, written
from the contract in docs/cloud.md ("Acks", "Epochs")."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = ["ACK_INTERVAL", "EpochStream", "Received", "StationStream", "parse_envelope"]

ACK_INTERVAL = 0.1  # seconds a received event waits at most for its ack when ack_every > 1


class Received(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"  # an event id already committed: a resend, expected
    CONFLICT = "conflict"  # (epoch, seq) taken by another id, or past a conflict in that epoch


def parse_envelope(payload: bytes | str, station: str, *, event: bool) -> dict[str, Any] | None:
    """The envelope in `payload` if it is a well-formed v1 envelope of `station`, else None.

    An event must carry an integer `seq` >= 1 and, when present, an integer `epoch` >= 1 (a
    station that predates epochs sends none: epoch 1); other messages need neither.
    """
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict) or body.get("v") != 1 or body.get("station") != station:
        return None
    if not all(isinstance(body.get(key), str) for key in ("id", "type", "ts")):
        return None
    if not isinstance(body.get("data"), dict):
        return None
    if event:
        for key, default in (("seq", None), ("epoch", 1)):
            value = body.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                return None
    return body


def _epoch(envelope: dict[str, Any]) -> int:
    epoch: int = envelope.get("epoch", 1)
    return epoch


@dataclass
class EpochStream:
    """What the cloud holds of one epoch of a station's ledger.

    `first_seq` is where the epoch starts in the station's seq numbering: 1 for epoch 1, else
    what its `epoch.started` event says (None until it arrived: nothing of the epoch is acked
    before). `conflict_at` is the lowest seq the station used for another event than the cloud
    holds: from there on nothing of this epoch is committed or acked, the station sends those
    events again in a new epoch.
    """

    epoch: int
    first_seq: int | None
    events: dict[int, dict[str, Any]] = field(default_factory=dict)
    contiguous: int = 0  # every seq from first_seq to here is held (first_seq - 1: none yet)
    heard: int = 0  # highest seq received since the station last started: no ack names more
    acked: int = 0
    conflict_at: int | None = None
    new_since_ack: int = 0
    deadline: float | None = None
    reack: bool = False

    def start(self, first_seq: int) -> None:
        self.first_seq = first_seq
        self.contiguous = max(self.contiguous, first_seq - 1)
        self.advance()

    def advance(self) -> None:
        if self.first_seq is None:
            return
        while self.contiguous + 1 in self.events:
            self.contiguous += 1

    def ackable(self) -> int:
        """The highest seq an ack of this epoch may name now (0: none)."""
        if self.first_seq is None:
            return 0
        upto = min(self.contiguous, self.heard)
        if self.conflict_at is not None:
            upto = min(upto, self.conflict_at - 1)
        return upto if upto >= self.first_seq else 0


class StationStream:
    """One station's events as the cloud has committed them, and when to ack them.

    The cloud keys an event by (epoch, seq) and remembers each event's id (docs/cloud.md,
    "Epochs"): the same id again is a resend (a duplicate, acked again), another id under a
    key it holds is a conflict, reported to the station so that it moves the event to a new
    epoch. Each epoch is acked on its own, only up to its contiguous prefix, never past a
    conflict, and never above a seq the station sent in that epoch since it last started
    (`station_restarted()`, on a new `boot_id` in its status): a station restored from an old
    backup must never be told of seqs its ledger has not reached (it refuses such an ack as
    forged).

    `committed` is the highest seq of epoch 1 the cloud had already committed before (from its
    own database): those count as received. Acks go out after `ack_every` new events, or
    `ack_interval` seconds after the first unacked one, whichever comes first; a resend of an
    already acked seq means the station missed that ack, so it is acked again at once.

    `received` is the station's current ledger as the cloud sees it: seq -> envelope, each seq
    from the newest epoch that holds it; `events()` is everything committed, every epoch.
    """

    def __init__(self, *, committed: int = 0, ack_every: int = 1,
                 ack_interval: float = ACK_INTERVAL) -> None:
        if committed < 0 or ack_every < 1 or ack_interval < 0:
            raise ValueError("committed >= 0, ack_every >= 1 and ack_interval >= 0")
        self.committed = committed
        self.ack_every = ack_every
        self.ack_interval = ack_interval
        self.epochs: dict[int, EpochStream] = {1: EpochStream(1, 1, contiguous=committed)}
        self.received: dict[int, dict[str, Any]] = {}
        self._received_epoch: dict[int, int] = {}
        self._ids: dict[str, tuple[int, int]] = {}  # event id -> the key it was committed under
        self.duplicates = 0
        self.conflicts: list[tuple[int, int]] = []  # (epoch, seq) of every conflicting event
        self._to_report: dict[int, int] = {}  # epoch -> lowest conflicting seq to report
        self._contiguous = committed

    def _epoch(self, epoch: int) -> EpochStream:
        stream = self.epochs.get(epoch)
        if stream is None:
            stream = self.epochs[epoch] = EpochStream(epoch, None)
        return stream

    def add(self, envelope: dict[str, Any], now: float) -> Received:
        """Records an event envelope (from parse_envelope(..., event=True))."""
        seq: int = envelope["seq"]
        stream = self._epoch(_epoch(envelope))
        stream.heard = max(stream.heard, seq)
        known = self._ids.get(envelope["id"])
        held = stream.events.get(seq)
        if known is not None or (stream.epoch == 1 and seq <= self.committed):
            # A resend, under its own key or under a new epoch after a conflict was reported
            # (then it counts for the new epoch too: the station waits for that epoch's ack).
            self.duplicates += 1
            if held is None and known is not None:
                stream.events[seq] = self.events_by_key(known)
                stream.advance()
            if seq <= stream.acked or seq <= self.committed or seq <= stream.contiguous:
                stream.reack = True
            return Received.DUPLICATE
        if held is not None or (stream.conflict_at is not None and seq >= stream.conflict_at):
            self.conflicts.append((stream.epoch, seq))
            if stream.conflict_at is None or seq < stream.conflict_at:
                stream.conflict_at = seq
            self._to_report[stream.epoch] = stream.conflict_at
            return Received.CONFLICT
        stream.events[seq] = envelope
        self._ids[envelope["id"]] = (stream.epoch, seq)
        if envelope["type"] == "epoch.started":
            self._started(stream, envelope)
        stream.advance()
        if self._received_epoch.get(seq, 0) <= stream.epoch:
            self.received[seq] = envelope
            self._received_epoch[seq] = stream.epoch
            while self._contiguous + 1 in self.received:
                self._contiguous += 1
        stream.new_since_ack += 1
        if stream.deadline is None:
            stream.deadline = now + self.ack_interval
        return Received.NEW

    def _started(self, stream: EpochStream, envelope: dict[str, Any]) -> None:
        data = envelope["data"]
        first = data.get("first_seq")
        # Only the epoch's own announcement: one moved on by a later conflict names another.
        if (data.get("epoch") == stream.epoch and isinstance(first, int)
                and not isinstance(first, bool) and 1 <= first <= envelope["seq"]
                and stream.first_seq is None):
            stream.start(first)

    def events_by_key(self, key: tuple[int, int]) -> dict[str, Any]:
        return self.epochs[key[0]].events[key[1]]

    def events(self) -> list[dict[str, Any]]:
        """Every event committed, each once, in (epoch, seq) order."""
        return [self.events_by_key(key) for key in sorted(set(self._ids.values()))]

    def contiguous(self) -> int:
        """The highest N such that every seq from 1 to N has been received (or committed), in
        the station's current ledger (`received`)."""
        return self._contiguous

    def highest(self) -> int:
        return max(self.received, default=self.committed)

    def highest_epoch(self) -> int:
        return max(self.epochs)

    def gaps(self) -> list[int]:
        """Seqs missing between the committed ones and the highest received."""
        return [seq for seq in range(self._contiguous + 1, self.highest())
                if seq not in self.received]

    def station_restarted(self) -> None:
        """The station came online with a new boot: what it sent before may be from a ledger
        it no longer has (a restore), so acks wait for what it sends from now on."""
        for stream in self.epochs.values():
            stream.heard = 0

    def take_acks(self, now: float) -> list[dict[str, Any]]:
        """The `acks` messages to publish now (acks and conflicts); the caller publishes them,
        or hands them back to `reack(messages)` when it could not."""
        messages: list[dict[str, Any]] = []
        for epoch, seq in sorted(self._to_report.items()):
            messages.append({"conflict": {"epoch": epoch, "seq": seq,
                                          "cloud_epoch": self.highest_epoch()}})
        self._to_report.clear()
        for stream in self.epochs.values():
            upto = stream.ackable()
            expired = stream.deadline is not None and now >= stream.deadline
            due = stream.reack or (upto > stream.acked and (
                stream.new_since_ack >= self.ack_every or expired))
            if expired:
                stream.deadline = None
            if not due or upto < 1:
                continue
            stream.acked = max(stream.acked, upto)
            stream.new_since_ack = 0
            stream.deadline = None
            stream.reack = False
            messages.append({"epoch": stream.epoch, "upto_seq": upto})
        return messages

    def take_ack(self, now: float) -> int | None:
        """The `upto_seq` of epoch 1 to ack now, or None: for a cloud of single-epoch stations
        (benches); everything else waits for take_acks()."""
        for message in self.take_acks(now):
            if message.get("epoch") == 1:
                return int(message["upto_seq"])
        return None

    def next_timeout(self) -> float | None:
        """When take_acks() should be called again if nothing arrives before."""
        deadlines = [s.deadline for s in self.epochs.values() if s.deadline is not None]
        return min(deadlines, default=None)

    def reack(self, messages: list[dict[str, Any]] | None = None) -> None:
        """The last acks may not have reached the station (a failed publish, a reconnect):
        `messages` (from take_acks) go again; without them, every epoch acks again once the
        station sends something."""
        if messages is None:
            for stream in self.epochs.values():
                stream.reack = True
            return
        for message in messages:
            if "conflict" in message:
                conflict = message["conflict"]
                self._to_report.setdefault(conflict["epoch"], conflict["seq"])
                continue
            stream = self.epochs[message["epoch"]]
            stream.heard = max(stream.heard, message["upto_seq"])
            stream.reack = True
