"""Which events are in flight to the cloud, and when to send them again (no I/O, time as an
argument): the bookkeeping of the outbox publisher (sync/outbox.py)."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from domain.model import Event

__all__ = ["Window"]


class Window:
    """Up to `size` events in flight (published, not yet covered by an ack), in seq order.

    - `take(events, now)` picks, from the outbox's pending events, the ones to publish now.
    - `ack(upto, epoch)` slides the window; only acks free room, PUBACKs never do.
    - `restart()` on every new connection: everything unacked goes again from the lowest seq;
      `rewind()` does the same within a connection (events moved to a new epoch).
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
        # (seq, epoch, sent at), in seq order
        self._in_flight: deque[tuple[int, int, float]] = deque()
        self._patience = ack_timeout
        self.cursor = 0  # highest seq taken since the last restart: the outbox is read after it
        self.acked: dict[int, int] = {}  # epoch -> highest upto_seq applied
        self.highest_sent = 0
        self.sent = 0
        self.resent = 0
        self.timeouts = 0
        self.stalled = 0  # timeouts in a row, without an ack making progress in between

    @property
    def acked_upto(self) -> int:
        """The highest upto_seq applied, whatever its epoch."""
        return max(self.acked.values(), default=0)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def oldest_in_flight(self) -> int | None:
        return self._in_flight[0][0] if self._in_flight else None

    def room(self) -> int:
        return self.size - len(self._in_flight)

    def restart(self) -> None:
        self.rewind()
        self._patience = self.ack_timeout
        self.stalled = 0

    def rewind(self) -> None:
        self.cursor = 0
        self._in_flight.clear()

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
            if event.seq > self.acked.get(event.epoch, 0):
                self._in_flight.append((event.seq, event.epoch, now))
        return chosen

    def ack(self, upto_seq: int, epoch: int = 1) -> bool:
        """The cloud committed everything of `epoch` up to `upto_seq`; True if that is news."""
        if upto_seq <= self.acked.get(epoch, 0):
            return False
        self.acked[epoch] = upto_seq
        flight = self._in_flight
        while flight and flight[0][1] == epoch and flight[0][0] <= upto_seq:
            flight.popleft()
        if flight and flight[0][1] != epoch:
            # Events of an older epoch still wait ahead of this one's (after a restore): look
            # behind them. Only then, so the usual single-epoch ack stays a few pops.
            self._in_flight = deque(item for item in flight
                                    if item[1] != epoch or item[0] > upto_seq)
        self._patience = self.ack_timeout
        self.stalled = 0
        return True

    def next_timeout(self) -> float | None:
        """When the oldest event in flight has waited too long; None when nothing is in flight."""
        if not self._in_flight:
            return None
        return self._in_flight[0][2] + self._patience

    def handle_timeout(self, now: float) -> bool:
        """True when the window must be sent again (the caller then reads the outbox anew)."""
        deadline = self.next_timeout()
        if deadline is None or now < deadline:
            return False
        self.timeouts += 1
        self.stalled += 1
        self.rewind()
        self._patience = min(self._patience * 2, self.ack_timeout_max)
        return True
