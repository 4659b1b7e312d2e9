"""A scripted DART pump built on the codec, for tests of the master side.

It answers POLL with EOT or its next reply block, ACKs command blocks (NAKing on request),
honours TX# rules (a block resent with the last TX# is ACKed but not applied), and can be
muted or restarted. No I/O: ``feed(bytes) -> bytes``.
"""

from __future__ import annotations

from collections import deque

from drivers.dart import (
    Control,
    ControlFrame,
    DartProtocolError,
    DataFrame,
    FrameDecoder,
    Reply,
    UnknownTransaction,
    decode_commands,
)
from drivers.dart.transactions import Command


class FakePump:
    def __init__(self, address: int) -> None:
        self.address = address
        self.decoder = FrameDecoder()
        self.outbox: deque[tuple[Reply, ...]] = deque()
        self.applied: list[tuple[Command | UnknownTransaction, ...]] = []
        self.mute = False
        self.nak_next = 0  # NAK this many command blocks
        self.tx: int | None = None  # TX# of the pump's last block; None: next one is 0
        self.sent_txn: int | None = None  # TX# of the block awaiting the master's ACK
        self.last_rx: int | None = None
        self.polls = 0

    def say(self, *replies: Reply) -> None:
        self.outbox.append(tuple(replies))

    def restart(self) -> None:
        self.tx = None
        self.sent_txn = None
        self.last_rx = None

    def feed(self, data: bytes) -> bytes:
        out = b""
        for item in self.decoder.feed(data):
            if isinstance(item, DartProtocolError) or item.address != self.address:
                continue  # a pump does not answer a bad frame or one for another pump
            answer = self._handle(item)
            if not self.mute:
                out += answer
        return out

    def _handle(self, frame: ControlFrame | DataFrame) -> bytes:
        if isinstance(frame, DataFrame):
            if self.nak_next:
                self.nak_next -= 1
                return ControlFrame(self.address, Control.NAK, frame.txn).to_bytes()
            if frame.txn != self.last_rx:
                self.applied.append(decode_commands(frame.transactions))
            self.last_rx = frame.txn
            return ControlFrame(self.address, Control.ACK, frame.txn).to_bytes()
        if frame.control in (Control.ACK, Control.ACKPOLL) and frame.txn == self.sent_txn:
            self.sent_txn = None
            self.outbox.popleft()
        if frame.control in (Control.POLL, Control.ACKPOLL):
            self.polls += 1
            return self._answer_poll()
        return b""

    def _answer_poll(self) -> bytes:
        if not self.outbox:
            return ControlFrame(self.address, Control.EOT, self.tx or 0).to_bytes()
        if self.sent_txn is None:  # a new block; else the unacknowledged one again
            self.tx = 0 if self.tx is None else self.tx % 15 + 1
            self.sent_txn = self.tx
        raws = tuple(r.to_raw() for r in self.outbox[0])
        return DataFrame(self.address, self.sent_txn, raws).to_bytes()
