"""The pump side of a DART line (PROTOCOLS.md, DART section), sans I/O.

One `DartSlave` answers for every simulated pump on one RS-485 line. Bytes from the master go
in with `receive_data(data, now)`; the answers come out of `data_to_send(now)` once they are due
(a turnaround, or a late-reply fault, delays them); `next_timeout()` says when the next one is.

The link rules it follows, per pump:

- POLL: EOT when the pump has nothing to say, else one DATA block with everything it has queued
  (DC1 status + DC3 nozzle + DC2 volume/amount... in one block). The block keeps its TX# until
  the master ACKs it: a POLL or NAK before that gets the very same block again.
- ACK n: the block with TX# n arrived; the next block takes the next TX#. ACKPOLL = ACK + POLL.
- DATA n: the commands are applied and the block is ACKed with n. A block with the TX# last
  received is a retransmission (our ACK was lost): ACKed again, not applied again. TX# 0 is
  the exception: it says the master restarted, so it is always a new block.
- Pump-to-master TX# is 0 after a (re)start and then runs 1..15, wrapping F -> 1.
- A frame with a bad CRC (or any undecodable bytes) is not answered; nor is a frame for another
  address, nor any frame for a pump whose fault plan says it is silent.

Each pump's firmware (`simulator.firmware`) may bend these rules as real firmware does: take an
ACKPOLL for a POLL only and send its block again (`no-ackpoll`), wrap its TX# F to 0
(`tx-wraps-to-zero`), carry out only the first transaction of a block (`first-command-only`) or
none of a block of several (`ignores-multi-command`), while ACKing the block all the same.

EOT carries the TX# of the last block this pump sent (0 before its first): masters do not use it,
and this keeps EOT and DATA from the same pump consistent. The master's own TX# sequence is
taken as it comes (any number other than the last one is a new block): a pump that insisted on
strict succession would lock a master out after one block lost to a silent spell.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from drivers.dart.codec import Control, ControlFrame, DataFrame, FrameDecoder, RawTransaction
from drivers.dart.errors import DartProtocolError
from drivers.dart.transactions import Command, UnknownTransaction, decode_command
from simulator.faults import FaultPlan
from simulator.firmware import Quirk
from simulator.pump import SimulatedPump

__all__ = ["DartSlave", "SlaveStats"]

_LAST_TXN = 0x0F


def _next_txn(txn: int, *, wraps_to_zero: bool = False) -> int:
    if txn >= _LAST_TXN:
        return 0 if wraps_to_zero else 1
    return txn + 1


@dataclass
class SlaveStats:
    frames: int = 0  # frames addressed to one of our pumps
    line_errors: int = 0  # bad CRC, garbage: not answered
    retransmissions: int = 0  # DATA blocks from the master ACKed but not applied again
    resent: int = 0  # our DATA blocks sent again (no ACK, or NAK)
    ignored: int = 0  # frames for our pumps left unanswered because of a fault
    ackpolls_ignored: int = 0  # ACKPOLLs a pump without ACKPOLL took for a POLL only


@dataclass
class _Link:
    """Link-layer state of one pump; all of it is lost in a power cycle."""

    txn: int = 0  # TX# of the next block this pump sends
    last_sent: int = 0  # TX# of the last block sent (what EOT carries)
    unacked: DataFrame | None = None
    last_received: int | None = None  # master's TX# of the last DATA block applied


@dataclass(order=True)
class _Answer:
    due: float
    seq: int
    address: int = field(compare=False)
    data: bytes = field(compare=False)


class DartSlave:
    """All the simulated pumps of one line, answering the master as DART pumps do."""

    def __init__(
        self,
        pumps: Iterable[SimulatedPump],
        *,
        faults: FaultPlan | None = None,
        turnaround: float = 0.0,
    ) -> None:
        self.pumps: dict[int, SimulatedPump] = {}
        for pump in pumps:
            if pump.address in self.pumps:
                raise ValueError(f"two pumps at address {pump.address:#x}")
            self.pumps[pump.address] = pump
        self.faults = faults if faults is not None else FaultPlan()
        self.turnaround = turnaround
        self.stats = SlaveStats()
        self._links = {address: _Link() for address in self.pumps}
        self._decoder = FrameDecoder()
        self._answers: list[_Answer] = []
        self._seq = 0

    # ---- the line ----------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> None:
        for item in self._decoder.feed(data):
            if isinstance(item, DartProtocolError):
                # A pump does not answer a frame with a parity or CRC error (PROTOCOLS.md).
                self.stats.line_errors += 1
                continue
            pump = self.pumps.get(item.address)
            if pump is None:
                continue
            self.stats.frames += 1
            faults = self.faults.for_pump(item.address)
            if faults.silent:
                self.stats.ignored += 1
                continue
            answer = self._handle(pump, self._links[item.address], item, now)
            if answer:
                damaged = self.faults.cut(self.faults.damage(answer, faults.corrupt), faults.drop)
                self._schedule(item.address, damaged, now + self.turnaround + faults.delay)

    def data_to_send(self, now: float) -> bytes:
        """Answers due at `now`, in order; empty when none is."""
        due = [a for a in self._answers if a.due <= now]
        if not due:
            return b""
        self._answers = [a for a in self._answers if a.due > now]
        return b"".join(a.data for a in due)

    def next_timeout(self) -> float | None:
        """When the next delayed answer is due, or None when nothing is waiting."""
        return self._answers[0].due if self._answers else None

    def reset_line(self) -> None:
        """The master went away (connection closed): drop half-received frames and answers."""
        self._decoder.reset()
        self._answers.clear()

    # ---- the pumps ---------------------------------------------------------------------------

    def power_cycle(self, address: int, now: float) -> None:
        """Power lost and back on one pump: link state from scratch (TX# 0), model reset too."""
        self.pumps[address].power_cycle(now)
        self._links[address] = _Link()
        self._answers = [a for a in self._answers if a.address != address]

    # ---- internals ---------------------------------------------------------------------------

    def _handle(
        self, pump: SimulatedPump, link: _Link, frame: ControlFrame | DataFrame, now: float
    ) -> bytes:
        if isinstance(frame, DataFrame):
            return self._data(pump, link, frame, now)
        control = frame.control
        if control == Control.ACKPOLL and pump.firmware.has(Quirk.NO_ACKPOLL):
            # This firmware knows no ACKPOLL: it hears a POLL, so its block was not acknowledged.
            self.stats.ackpolls_ignored += 1
            return self._poll(pump, link, now)
        if control in (Control.ACK, Control.ACKPOLL):
            self._acked(link, frame.txn, wraps_to_zero=pump.firmware.has(Quirk.TX_WRAPS_TO_ZERO))
        if control in (Control.POLL, Control.ACKPOLL):
            return self._poll(pump, link, now)
        if control == Control.NAK:
            # The master got our block damaged: the same block again (or EOT if there is none).
            return self._resend(link) if link.unacked is not None else self._eot(pump, link)
        return b""  # an ACK needs no answer; EOT from a master means nothing to a pump

    def _data(self, pump: SimulatedPump, link: _Link, frame: DataFrame, now: float) -> bytes:
        ack = ControlFrame(pump.address, Control.ACK, frame.txn).to_bytes()
        if frame.txn == link.last_received and frame.txn != 0:
            self.stats.retransmissions += 1
            return ack
        link.last_received = frame.txn
        commands: list[Command | UnknownTransaction] = []
        for raw in self._carried_out(pump, frame.transactions):
            try:
                commands.append(decode_command(raw))
            except DartProtocolError as error:
                # The block itself was fine (CRC): the pump skips what it cannot read.
                pump.refused.append(f"undecodable transaction: {error}")
        pump.apply(commands, now)
        return ack

    def _poll(self, pump: SimulatedPump, link: _Link, now: float) -> bytes:
        if link.unacked is not None:
            return self._resend(link)
        replies = pump.take_replies(now)
        if not replies:
            return self._eot(pump, link)
        block = DataFrame(pump.address, link.txn, tuple(r.to_raw() for r in replies))
        link.unacked = block
        link.last_sent = link.txn
        return block.to_bytes()

    @staticmethod
    def _carried_out(
        pump: SimulatedPump, transactions: Sequence[RawTransaction]
    ) -> Sequence[RawTransaction]:
        """The transactions of a block this pump's firmware acts on (all, the first, or none)."""
        if len(transactions) < 2:
            return transactions
        if pump.firmware.has(Quirk.IGNORES_MULTI_COMMAND):
            pump.refused.append(f"a block of {len(transactions)} transactions")
            return ()
        if pump.firmware.has(Quirk.FIRST_COMMAND_ONLY):
            pump.refused.append(f"all but the first of a block of {len(transactions)}")
            return transactions[:1]
        return transactions

    def _resend(self, link: _Link) -> bytes:
        assert link.unacked is not None
        self.stats.resent += 1
        return link.unacked.to_bytes()

    @staticmethod
    def _acked(link: _Link, txn: int, *, wraps_to_zero: bool) -> None:
        if link.unacked is not None and link.unacked.txn == txn:
            link.unacked = None
            link.txn = _next_txn(link.txn, wraps_to_zero=wraps_to_zero)

    @staticmethod
    def _eot(pump: SimulatedPump, link: _Link) -> bytes:
        return ControlFrame(pump.address, Control.EOT, link.last_sent).to_bytes()

    def _schedule(self, address: int, data: bytes, due: float) -> None:
        self._seq += 1
        self._answers.append(_Answer(due, self._seq, address, data))
        self._answers.sort()
