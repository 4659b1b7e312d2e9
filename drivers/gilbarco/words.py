"""The word codec of Gilbarco two-wire (PROTOCOLS.md, "Gilbarco two-wire": "Words", "Checksum",
"Master blocks").

Data goes on the wire as one-byte *words*: ``0xE0 | n`` carries one nibble (a decimal digit where
a number is expected, numbers least significant digit first), ``0xF_`` is a control word saying
what comes next. A *block* starts with ``0xFF`` and ends with ``0xF0``; before the end come
``0xFB`` and the checksum word::

    FF body... FB E<lrc> F0        lrc = (-(sum of FF, body and FB)) & 0x0F

A block the master sends carries, right after ``FF``, a data-length word
``0xE0 | ((-N) & 0x0F)``, N counting the words from ``FF`` through ``FB``; it is the first word of
the ``Block`` body here, and ``Block.master`` computes it. No I/O and no clock in this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

from .errors import GilbarcoProtocolError

__all__ = [
    "MAX_BLOCK_WORDS",
    "Block",
    "BlockDecoder",
    "Word",
    "decode_digits",
    "encode_digits",
    "is_data_word",
    "length_word",
    "lrc",
    "nibble",
]

MAX_BLOCK_WORDS = 1024
"""Longest block the decoder buffers: 16 hoses of 8-digit totals are 677 words; the bound keeps a
line full of noise from growing memory."""

DATA = 0xE0  # high nibble of a data word


class Word(IntEnum):
    """The control words (PROTOCOLS.md, "Words"); F3, FC and FD are not known to appear."""

    END = 0xF0  # a block ends
    VOLUME_PRESET = 0xF1
    MONEY_PRESET = 0xF2
    PRICE_LEVEL_1 = 0xF4
    PRICE_LEVEL_2 = 0xF5
    HOSE_NEXT = 0xF6  # the grade (hose) follows, counted from 0
    PRICE_NEXT = 0xF7
    PRESET_NEXT = 0xF8
    VOLUME_NEXT = 0xF9
    MONEY_NEXT = 0xFA
    LRC_NEXT = 0xFB
    SPECIAL_FUNCTION_NEXT = 0xFE
    START = 0xFF  # a block starts


def is_data_word(word: int) -> bool:
    return word & 0xF0 == DATA


def nibble(word: int, data: bytes = b"") -> int:
    """The nibble a data word carries; any other word is a protocol error."""
    if not is_data_word(word):
        raise GilbarcoProtocolError("expected a data word", data or bytes((word & 0xFF,)))
    return word & 0x0F


def encode_digits(value: int, count: int) -> bytes:
    """``value`` as ``count`` digit words, least significant first (1070 -> E0 E7 E0 E1)."""
    if count < 1:
        raise ValueError(f"a number takes at least one digit word, not {count}")
    if not 0 <= value < 10**count:
        raise ValueError(f"{value} does not fit in {count} digits")
    return bytes(DATA | int(d) for d in reversed(f"{value:0{count}d}"))


def decode_digits(words: bytes) -> int:
    """The number that digit words carry, least significant first; a nibble above 9 is an error."""
    value = 0
    for word in reversed(words):
        digit = nibble(word, words)
        if digit > 9:
            raise GilbarcoProtocolError("bad digit", words)
        value = value * 10 + digit
    return value


def lrc(words: Iterable[int]) -> int:
    """The checksum nibble of the words from ``FF`` through ``FB`` inclusive.

    The negated sum, low nibble (PROTOCOLS.md, "Checksum"); every captured frame agrees, and an
    XOR of the words does not.
    """
    return -sum(words) & 0x0F


def length_word(words_through_fb: int) -> int:
    """The master's data-length word for a block of that many words from FF through FB."""
    return DATA | (-words_through_fb & 0x0F)


# Words a block body can hold: data words and the control words that are not framing.
_FRAMING = frozenset({Word.START, Word.END, Word.LRC_NEXT})


@dataclass(frozen=True)
class Block:
    """One ``FF ... FB lrc F0`` block; ``body`` is every word between ``FF`` and ``FB``."""

    body: bytes

    def __post_init__(self) -> None:
        for word in self.body:
            if word < DATA or word in _FRAMING:
                raise ValueError(f"0x{word:02X} cannot be inside a block")
        if len(self.body) + 4 > MAX_BLOCK_WORDS:
            raise ValueError(f"a block of {len(self.body) + 4} words is too long")

    @classmethod
    def master(cls, payload: Sequence[int]) -> Block:
        """A block as the master sends it: the data-length word, then ``payload``."""
        return cls(bytes((length_word(len(payload) + 3), *payload)))

    @property
    def checksum(self) -> int:
        return lrc((Word.START, *self.body, Word.LRC_NEXT))

    @property
    def length_ok(self) -> bool:
        """Whether the first body word is the data-length word a master block carries."""
        return bool(self.body) and self.body[0] == length_word(len(self.body) + 2)

    def to_bytes(self) -> bytes:
        return bytes((Word.START, *self.body, Word.LRC_NEXT, DATA | self.checksum, Word.END))

    @classmethod
    def from_bytes(cls, frame: bytes) -> Block:
        """One whole block; a wrong frame or checksum is a ``GilbarcoProtocolError``."""
        if len(frame) < 4 or frame[0] != Word.START or frame[-1] != Word.END:
            raise GilbarcoProtocolError("not a block", frame)
        if frame[-3] != Word.LRC_NEXT or not is_data_word(frame[-2]):
            raise GilbarcoProtocolError("no checksum", frame)
        if len(frame) > MAX_BLOCK_WORDS:
            raise GilbarcoProtocolError("block too long", frame[:64])
        body = frame[1:-3]
        for word in body:
            if word < DATA or word in _FRAMING:
                raise GilbarcoProtocolError("not a word", frame)
        if lrc(frame[:-2]) != frame[-2] & 0x0F:
            raise GilbarcoProtocolError("bad checksum", frame)
        return cls(bytes(body))


class BlockDecoder:
    """Streaming decoder of blocks: bytes in as they come, blocks and errors out, in order.

    A block starts at ``FF`` and ends at ``F0``. A run of bytes outside a block is reported as
    ``"garbage"`` when the next block starts or at the end of the ``feed`` call; a block cut
    short by a new ``FF``, or holding a byte that is not a word, is reported and dropped, and
    decoding goes on, so one bad block never hides the next.
    """

    def __init__(self, max_words: int = MAX_BLOCK_WORDS) -> None:
        if max_words < 4:
            raise ValueError("max_words must hold at least FF FB lrc F0")
        self._max = max_words
        self._block = bytearray()
        self._in_block = False

    @property
    def buffered(self) -> int:
        return len(self._block)

    def reset(self) -> None:
        self._block.clear()
        self._in_block = False

    def feed(self, data: bytes) -> list[Block | GilbarcoProtocolError]:
        out: list[Block | GilbarcoProtocolError] = []
        garbage = bytearray()
        block = self._block
        for byte in data:
            if not self._in_block:
                if byte == Word.START:
                    if garbage:
                        out.append(GilbarcoProtocolError("garbage", bytes(garbage[:64])))
                        garbage.clear()
                    self._in_block = True
                    block.append(byte)
                else:
                    garbage.append(byte)
                continue
            if byte == Word.START:
                out.append(GilbarcoProtocolError("block cut short", bytes(block)))
                block[:] = b"\xff"
                continue
            block.append(byte)
            if byte == Word.END:
                try:
                    out.append(Block.from_bytes(bytes(block)))
                except GilbarcoProtocolError as error:
                    out.append(error)
                self.reset()
            elif byte < DATA:
                out.append(GilbarcoProtocolError("not a word", bytes(block)))
                self.reset()
            elif len(block) >= self._max:
                out.append(GilbarcoProtocolError("block too long", bytes(block[:64])))
                self.reset()
        if garbage:
            out.append(GilbarcoProtocolError("garbage", bytes(garbage[:64])))
        return out
