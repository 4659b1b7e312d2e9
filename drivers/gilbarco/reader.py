"""Reading one answer off the line (PROTOCOLS.md, "Gilbarco two-wire"), sans I/O.

The line core opens an ``Echo`` and an ``AnswerReader`` for every exchange: the echo takes the
converter's copy of what was written (matched by content, so the late answer of an exchange that
timed out, arriving first, is never taken for it), the reader assembles the answer the request
waits for from whatever comes after: one status byte, six or eight running-money digits, a block
(transaction or totals), hex records (a special function). Bytes in any pieces; each ``feed``
says what it made of them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from .answers import PumpTotals, RunningMoney, Transaction
from .commands import LAYOUTS, DigitsMode, decode_status
from .errors import GilbarcoProtocolError
from .requests import Answer, AnswerKind
from .special import HexRecord, HexRecordDecoder, SpecialFunctionAnswer
from .words import Block, BlockDecoder, decode_digits

__all__ = ["AnswerReader", "Echo", "Reading"]


class Echo:
    """The converter's echo of ``written``, expected before anything else."""

    def __init__(self, written: bytes) -> None:
        self.written = written
        self._matched = 0

    @property
    def done(self) -> bool:
        return self._matched == len(self.written)

    def take(self, data: bytes) -> tuple[bytes, bytes]:
        """(what follows the echo, the stray bytes that came before it)."""
        stray = bytearray()
        taken = 0
        for byte in data:
            if self.done:
                break
            taken += 1
            if byte != self.written[self._matched]:
                stray += self.written[: self._matched]  # what looked like the echo was not it
                self._matched = 0
                if byte != self.written[0]:
                    stray.append(byte)
                    continue
            self._matched += 1
        return data[taken:], bytes(stray)


@dataclass
class Reading:
    """What one ``feed`` made of the bytes: the answer once complete, or why it is wrong, and
    what was noise around it."""

    answer: Answer | None = None
    complete: bool = False
    bad: GilbarcoProtocolError | None = None
    noise: list[GilbarcoProtocolError] = field(default_factory=list)


class AnswerReader:
    """Assembles the answer of ``kind`` from ``pump`` (a status for ``AnswerKind.STATUS``).

    ``others`` are the low nibbles of the line's other pumps: a status byte of one of them is
    its late answer, noise rather than a wrong answer.
    """

    def __init__(self, kind: AnswerKind, pump: int, mode: DigitsMode,
                 others: Collection[int] = ()) -> None:
        self.kind = kind
        self.pump = pump
        self.mode = mode
        self._others = frozenset(n & 0x0F for n in others)
        self._words = bytearray()
        self._blocks = BlockDecoder()
        self._hex = HexRecordDecoder()
        self._records: list[HexRecord] = []
        self._done = False

    def feed(self, data: bytes) -> Reading:
        reading = Reading()
        if self._done:
            if data:
                reading.noise.append(GilbarcoProtocolError("bytes after the answer", data[:64]))
            return reading
        if self.kind is AnswerKind.STATUS:
            self._status(data, reading)
        elif self.kind is AnswerKind.RUNNING_MONEY:
            self._running(data, reading)
        elif self.kind is AnswerKind.SPECIAL_FUNCTION:
            self._special(data, reading)
        else:
            self._block(data, reading)
        self._done = reading.complete or reading.bad is not None
        return reading

    def _status(self, data: bytes, reading: Reading) -> None:
        for index, byte in enumerate(data):
            try:
                reading.answer = decode_status(byte, self.pump)
            except GilbarcoProtocolError as error:
                if error.reason == "status from another pump" and byte & 0x0F in self._others:
                    reading.noise.append(GilbarcoProtocolError("late answer", bytes((byte,))))
                    continue
                reading.bad = error
                return
            reading.complete = True
            if index + 1 < len(data):
                reading.noise.append(GilbarcoProtocolError("bytes after the status",
                                                           data[index + 1 : index + 65]))
            return

    def _running(self, data: bytes, reading: Reading) -> None:
        need = LAYOUTS[self.mode].running_digits
        take = min(len(data), need - len(self._words))
        self._words += data[:take]
        if any(w & 0xF0 != 0xE0 or w & 0x0F > 9 for w in data[:take]):
            reading.bad = GilbarcoProtocolError("bad digit", bytes(self._words))
            return
        if len(self._words) == need:
            reading.answer = RunningMoney(decode_digits(bytes(self._words)), self.mode)
            reading.complete = True
            if take < len(data):
                reading.noise.append(GilbarcoProtocolError("bytes after the answer",
                                                           data[take : take + 64]))

    def _block(self, data: bytes, reading: Reading) -> None:
        for item in self._blocks.feed(data):
            if reading.complete or reading.bad is not None:
                if isinstance(item, Block):
                    item = GilbarcoProtocolError("a second block", item.to_bytes()[:64])
                reading.noise.append(item)
            elif isinstance(item, GilbarcoProtocolError):
                if item.reason == "garbage":
                    reading.noise.append(item)  # noise before the answer: keep waiting
                else:
                    reading.bad = item
            else:
                try:
                    reading.answer = self._decode(item)
                    reading.complete = True
                except GilbarcoProtocolError as error:
                    reading.bad = error

    def _decode(self, block: Block) -> Answer:
        if self.kind is AnswerKind.TRANSACTION:
            tx = Transaction.from_block(block, self.mode)
            if tx.pump != self.pump:
                raise GilbarcoProtocolError("transaction of another pump", block.to_bytes())
            return tx
        return PumpTotals.from_block(block, self.mode)

    def _special(self, data: bytes, reading: Reading) -> None:
        for item in self._hex.feed(data):
            if reading.complete or reading.bad is not None:
                if isinstance(item, HexRecord):
                    item = GilbarcoProtocolError("a record too many", item.to_bytes()[:64])
                reading.noise.append(item)
            elif isinstance(item, GilbarcoProtocolError):
                if item.reason == "garbage":
                    reading.noise.append(item)
                else:
                    reading.bad = item
            else:
                self._records.append(item)
                if item.blocks_left == 0:
                    reading.answer = SpecialFunctionAnswer(tuple(self._records))
                    reading.complete = True
