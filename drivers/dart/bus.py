"""Sans-I/O master core of one DART line (PROTOCOLS.md, DART: "TX#", "Timing", "A sale").

One ``DartBus`` per RS-485 line, any number of pumps on it, one request in flight. It does no
I/O and reads no clock: the shell writes what ``data_to_send(now)`` returns, feeds what it reads
to ``receive_data(data, now)``, calls ``handle_timeout(now)`` at ``next_timeout()`` and drains
``next_event()``.

Choices the spec leaves open, made here:

* Command blocks go before polls (round-robin among pumps with queued blocks), so a STOP is not
  held up by a round of polls; polls go round-robin, with ``poll_interval`` of idle time between
  rounds. An offline pump is probed once per ``offline_poll_interval`` only, so dead addresses do
  not slow the line down.
* The first block to each pump after start carries TX# 0, the "sender restarted" value a pump
  always accepts; any 1..F could equal the last TX# the pump kept from a previous controller run
  and be ACKed as a retransmission without being applied, which loses a command silently.
  The price: a pump that ranks "0 = restart" above "same TX# = resend" would apply a resend of
  that one first block twice. Then 1..F, wrapping F to 1.
* A pump block with an unexpected TX# is NAKed; after ``max_retries`` NAKs in a row the next
  block is accepted and its TX# taken as the new reference, so that a pump that gave up on a
  block cannot lock itself out forever.
* An ACK owed to a pump goes out as its own frame, followed by the next POLL or block (as the
  working controllers in real traffic do); ACKPOLL only to the pumps named in ``ack_poll``.
* A command block is never dropped silently: it ends in ``CommandDone`` or ``CommandFailed``
  (NAKed ``max_retries`` times, pump offline, line down). A block that timed out is resent with
  the same TX#, so a pump that did apply it but whose ACK was lost ACKs it without applying it
  twice.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from enum import Enum

from .codec import (
    MAX_ADDRESS,
    MIN_ADDRESS,
    Control,
    ControlFrame,
    DataFrame,
    Frame,
    FrameDecoder,
    RawTransaction,
)
from .errors import DartProtocolError
from .events import (
    BusEvent,
    CommandDone,
    CommandFailed,
    LineNoise,
    PumpOffline,
    PumpOnline,
    PumpReplied,
    PumpRestarted,
)
from .transactions import Command, Reply, UnknownTransaction, decode_reply

__all__ = ["BITS_PER_CHARACTER", "BusStats", "DartBus"]

BITS_PER_CHARACTER = 11
"""Start bit, 8 data bits, odd parity, stop bit (8O1)."""

INTER_BYTE_CHARACTERS = 5
"""Silence, in character times, after which a reply that started arriving is deemed over."""


@dataclass
class BusStats:
    """Counters for metrics; they only grow."""

    exchanges: int = 0  # requests written: POLL, ACKPOLL or DATA
    timeouts: int = 0  # requests that got no valid answer in time
    naks: int = 0  # NAKs received for our blocks
    naks_sent: int = 0  # pump blocks NAKed for an unexpected TX#
    crc_errors: int = 0
    noise: int = 0  # LineNoise events, CRC errors included
    retransmissions: int = 0  # pump blocks received again and not re-delivered


# ---------------------------------------------------------------- internal state


class _Link(Enum):
    UNKNOWN = "unknown"  # not heard from yet
    ONLINE = "online"
    OFFLINE = "offline"


@dataclass
class _Block:
    request_id: int
    transactions: tuple[RawTransaction, ...]
    txn: int | None = None  # assigned when first sent, kept for resends
    naks: int = 0


@dataclass
class _Pump:
    address: int
    link: _Link = _Link.UNKNOWN
    queue: deque[_Block] = field(default_factory=deque)
    tx_out: int | None = None  # last TX# of our blocks to this pump
    tx_in: int | None = None  # last TX# accepted from this pump
    bad_txn: int = 0  # consecutive pump blocks NAKed for their TX#
    missed: int = 0  # consecutive exchanges without a valid answer
    probe_at: float = 0.0  # when offline: next time to try it

    def next_tx_out(self) -> int:
        self.tx_out = 0 if self.tx_out is None else self.tx_out % 15 + 1
        return self.tx_out


@dataclass
class _Exchange:
    pump: _Pump
    block: _Block | None  # None: a POLL (or ACKPOLL)
    deadline: float


# ---------------------------------------------------------------- the core


class DartBus:
    """Master side of one DART line; see the module docstring for the policies."""

    def __init__(
        self,
        addresses: Sequence[int],
        *,
        baudrate: int = 9600,
        reply_timeout: float = 0.025,
        max_retries: int = 3,
        offline_after: int = 3,
        poll_interval: float = 0.0,
        offline_poll_interval: float = 1.0,
        inter_byte_timeout: float | None = None,
        ack_poll: Collection[int] = (),
    ) -> None:
        if not addresses:
            raise ValueError("a line needs at least one pump address")
        if len(set(addresses)) != len(addresses):
            raise ValueError("duplicate pump address on one line")
        for address in addresses:
            if not MIN_ADDRESS <= address <= MAX_ADDRESS:
                raise ValueError(f"DART address must be 0x50..0x6F, got 0x{address:X}")
        if baudrate <= 0 or reply_timeout <= 0 or max_retries < 1 or offline_after < 1:
            raise ValueError("baudrate, reply_timeout, max_retries, offline_after must be > 0")
        self._pumps = [_Pump(a) for a in addresses]
        # Pumps that take ACK + POLL as one ACKPOLL frame; every other pump gets the ACK, then
        # a POLL (PROTOCOLS.md, "Timing": no ACKPOLL in real traffic, and some pumps ignore it).
        self._ack_poll = frozenset(ack_poll)
        self._by_address = {p.address: p for p in self._pumps}
        self._character_time = BITS_PER_CHARACTER / baudrate
        self._reply_timeout = reply_timeout
        self._inter_byte = (
            INTER_BYTE_CHARACTERS * self._character_time
            if inter_byte_timeout is None
            else inter_byte_timeout
        )
        self._max_retries = max_retries
        self._offline_after = offline_after
        self._poll_interval = poll_interval
        self._offline_poll_interval = offline_poll_interval
        self._decoder = FrameDecoder()
        self._events: deque[BusEvent] = deque()
        self._exchange: _Exchange | None = None
        self._pending: ControlFrame | None = None  # ACK or NAK owed to a pump
        self._poll_cursor = 0
        self._block_cursor = 0
        self._round_at = 0.0
        self._now = 0.0
        self._last_request_id = 0
        self.stats = BusStats()

    # ------------------------------------------------------------ queries

    @property
    def addresses(self) -> tuple[int, ...]:
        return tuple(p.address for p in self._pumps)

    def is_online(self, address: int) -> bool:
        return self._pump(address).link is _Link.ONLINE

    def online(self) -> dict[int, bool]:
        return {p.address: p.link is _Link.ONLINE for p in self._pumps}

    def next_event(self) -> BusEvent | None:
        return self._events.popleft() if self._events else None

    def next_timeout(self) -> float | None:
        """When the core next wants ``handle_timeout`` and ``data_to_send`` called."""
        if self._exchange is not None:
            return self._exchange.deadline
        if self._pending is not None or any(p.queue for p in self._pumps):
            return self._now
        return min(
            max(self._round_at, p.probe_at) if p.link is _Link.OFFLINE else self._round_at
            for p in self._pumps
        )

    # ------------------------------------------------------------ inputs

    def submit(self, address: int, commands: Sequence[Command | UnknownTransaction]) -> int:
        """Queue one DATA block for the pump; the outcome is ``CommandDone``/``CommandFailed``."""
        pump = self._pump(address)
        if not commands:
            raise ValueError("a command block needs at least one transaction")
        transactions = tuple(c.to_raw() for c in commands)
        DataFrame(address, 0, transactions)  # refuse now what could not be framed later
        self._last_request_id += 1
        request_id = self._last_request_id
        if pump.link is _Link.OFFLINE:
            self._events.append(CommandFailed(address, request_id, "offline"))
        else:
            pump.queue.append(_Block(request_id, transactions))
        return request_id

    def cancel(self, request_id: int) -> bool:
        """Withdraw a block that was never sent; False if unknown, done, or already sent.

        A block that went on the wire once keeps its place: the pump may have applied it, and
        only its own TX# lets the pump tell a resend from a new command.
        """
        for pump in self._pumps:
            for block in pump.queue:
                if block.request_id == request_id:
                    if block.txn is not None:
                        return False
                    pump.queue.remove(block)
                    return True
        return False

    def data_to_send(self, now: float) -> bytes:
        """The next bytes to write: b"" while a reply is awaited or nothing is due."""
        self._now = now
        if self._exchange is not None:
            return b""
        owed, self._pending = self._pending, None
        prefix = b"" if owed is None else owed.to_bytes()
        choice = self._choose(now)
        if choice is None:
            return prefix
        pump, block = choice
        if block is not None:
            if block.txn is None:
                block.txn = pump.next_tx_out()
            frame = prefix + DataFrame(pump.address, block.txn, block.transactions).to_bytes()
        elif (owed is not None and owed.address == pump.address
              and owed.control is Control.ACK and pump.address in self._ack_poll):
            frame = ControlFrame(pump.address, Control.ACKPOLL, owed.txn).to_bytes()
        else:
            frame = prefix + ControlFrame(pump.address, Control.POLL).to_bytes()
        # The reply window opens once the last byte is on the wire.
        deadline = now + len(frame) * self._character_time + self._reply_timeout
        self._exchange = _Exchange(pump, block, deadline)
        self.stats.exchanges += 1
        return frame

    def receive_data(self, data: bytes, now: float) -> None:
        self._now = now
        exchange = self._exchange
        if exchange is not None and data:
            # A reply that is still arriving is not cut short by the first-byte timeout.
            exchange.deadline = max(exchange.deadline, now + self._inter_byte)
        for item in self._decoder.feed(data):
            if isinstance(item, DartProtocolError):
                self._noise(item)
            else:
                self._on_frame(item)

    def handle_timeout(self, now: float) -> None:
        self._now = now
        exchange = self._exchange
        if exchange is None or now < exchange.deadline:
            return
        self._exchange = None
        self.stats.timeouts += 1
        pump = exchange.pump
        pump.missed += 1
        if pump.link is _Link.OFFLINE:
            pump.probe_at = now + self._offline_poll_interval
        elif pump.missed >= self._offline_after:
            self._go_offline(pump, now, "offline")
        # Otherwise a timed-out block stays at the head of the queue with its TX#: resent next.

    def connection_lost(self, now: float) -> None:
        """The port is gone: every pump is offline and every queued block fails."""
        self._now = now
        self._exchange = None
        self._pending = None
        self._decoder.reset()
        for pump in self._pumps:
            if pump.link is not _Link.OFFLINE:
                self._go_offline(pump, now, "line down")
            # Probe everything as soon as the port is back.
            pump.probe_at = now

    # ------------------------------------------------------------ internals

    def _pump(self, address: int) -> _Pump:
        try:
            return self._by_address[address]
        except KeyError:
            raise ValueError(f"no pump 0x{address:02X} on this line") from None

    def _choose(self, now: float) -> tuple[_Pump, _Block | None] | None:
        count = len(self._pumps)
        for i in range(count):
            index = (self._block_cursor + i) % count
            pump = self._pumps[index]
            if pump.queue:
                self._block_cursor = (index + 1) % count
                return pump, pump.queue[0]
        if now < self._round_at:
            return None
        for _ in range(2):  # the rest of this round, then (unpaced) a fresh one
            while self._poll_cursor < count:
                pump = self._pumps[self._poll_cursor]
                self._poll_cursor += 1
                if pump.link is not _Link.OFFLINE or now >= pump.probe_at:
                    return pump, None
            self._poll_cursor = 0
            self._round_at = now + self._poll_interval
            if self._poll_interval > 0:
                return None
        return None

    def _on_frame(self, frame: Frame) -> None:
        exchange = self._exchange
        if exchange is None or frame.address != exchange.pump.address:
            self._noise(DartProtocolError("frame nobody asked for", frame.to_bytes()))
            return
        pump, block = exchange.pump, exchange.block
        if block is None:
            if isinstance(frame, DataFrame):
                self._exchange = None
                self._answered(pump)
                self._on_pump_block(pump, frame)
                return
            if frame.control is Control.EOT:
                self._exchange = None
                self._answered(pump)
                return
        elif (
            isinstance(frame, ControlFrame)
            and frame.control in (Control.ACK, Control.NAK)
            and frame.txn == block.txn
        ):
            self._exchange = None
            self._answered(pump)
            if frame.control is Control.ACK:
                pump.queue.popleft()
                self._events.append(CommandDone(pump.address, block.request_id))
                return
            self.stats.naks += 1
            block.naks += 1
            if block.naks >= self._max_retries:
                pump.queue.popleft()
                reason = f"NAKed {block.naks} times"
                self._events.append(CommandFailed(pump.address, block.request_id, reason))
            return
        self._noise(DartProtocolError("unexpected answer", frame.to_bytes()))

    def _on_pump_block(self, pump: _Pump, frame: DataFrame) -> None:
        txn, last = frame.txn, pump.tx_in
        if txn == last:
            self.stats.retransmissions += 1
            self._pending = ControlFrame(pump.address, Control.ACK, txn)
            return
        # 0 is a restart; F wraps to 1 in the spec and to 0 in some captures: both pass.
        expected = last is None or txn == 0 or txn == last % 15 + 1
        if not expected and pump.bad_txn < self._max_retries:
            pump.bad_txn += 1
            self.stats.naks_sent += 1
            self._pending = ControlFrame(pump.address, Control.NAK, txn)
            self._noise(DartProtocolError("unexpected TX#", frame.to_bytes()))
            return
        pump.bad_txn = 0
        pump.tx_in = txn
        self._pending = ControlFrame(pump.address, Control.ACK, txn)
        # After F, 0 is the F->0 wrap some pumps use, not a restart (a pump that really
        # restarted then also says "not programmed", which the controller acts on).
        if txn == 0 and last and last != 15:
            self._events.append(PumpRestarted(pump.address))
        self._events.append(PumpReplied(pump.address, self._decode(frame)))

    def _decode(self, frame: DataFrame) -> tuple[Reply | UnknownTransaction, ...]:
        replies: list[Reply | UnknownTransaction] = []
        for raw in frame.transactions:
            try:
                replies.append(decode_reply(raw))
            except DartProtocolError as error:
                # The block was well framed, so it is ACKed; the one bad transaction is kept
                # uninterpreted and reported, the others still count.
                self._noise(error)
                replies.append(UnknownTransaction.from_raw(raw))
        return tuple(replies)

    def _answered(self, pump: _Pump) -> None:
        pump.missed = 0
        if pump.link is not _Link.ONLINE:
            pump.link = _Link.ONLINE
            self._events.append(PumpOnline(pump.address))

    def _go_offline(self, pump: _Pump, now: float, reason: str) -> None:
        pump.link = _Link.OFFLINE
        pump.probe_at = now + self._offline_poll_interval
        self._events.append(PumpOffline(pump.address))
        while pump.queue:
            block = pump.queue.popleft()
            self._events.append(CommandFailed(pump.address, block.request_id, reason))

    def _noise(self, error: DartProtocolError) -> None:
        self.stats.noise += 1
        if error.reason == "bad CRC":
            self.stats.crc_errors += 1
        self._events.append(LineNoise(error))
