"""The pump side of the Gilbarco two-wire wire format, written from PROTOCOLS.md ("Gilbarco
two-wire") on its own: the simulator does not share the driver's codec, so a misreading of the
notes in one shows up against the other.

What a pump hears: command bytes (command high nibble, pump low nibble, pump 16 as 0), the
all-stop byte 0xFC, and blocks ``FF <len> ... FB lrc F0``. What it says: one status byte, blocks
(transaction, totals), bare digit words (running money), hex records (special functions).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ALL_STOP",
    "DIGIT",
    "HeardBlock",
    "HeardByte",
    "HeardCommand",
    "MasterStream",
    "block",
    "digits",
    "hex_records",
    "number",
    "status",
]

DIGIT = 0xE0
START, END, CHECKSUM_NEXT = 0xFF, 0xF0, 0xFB
ALL_STOP = 0xFC
MAX_HEARD_BLOCK = 64  # master blocks are short; a longer run without F0 is noise


def digits(value: int, count: int) -> bytes:
    """``value`` in ``count`` digit words, least significant first."""
    text = str(value).rjust(count, "0")
    if len(text) > count or value < 0:
        raise ValueError(f"{value} needs more than {count} digits")
    return bytes(DIGIT + int(c) for c in text[::-1])


def number(words: bytes) -> int | None:
    """The value of digit words (least significant first), None if one is not a digit."""
    total, scale = 0, 1
    for word in words:
        if word >> 4 != 0xE or word & 0x0F > 9:
            return None
        total += (word & 0x0F) * scale
        scale *= 10
    return total


def _lrc(words: Iterable[int]) -> int:
    # Minus the sum of everything from FF through FB, low nibble (PROTOCOLS.md, "Checksum").
    return (0x10 - sum(words) % 0x10) % 0x10


def block(body: bytes) -> bytes:
    """``FF body FB lrc F0`` as a pump sends it (no data-length word)."""
    framed = bytes((START,)) + body + bytes((CHECKSUM_NEXT,))
    return framed + bytes((DIGIT | _lrc(framed), END))


def status(state: int, pump: int) -> bytes:
    return bytes(((state << 4) | (pump % 16),))


def hex_records(pump: int, function: int, data: bytes, per_record: int = 16) -> bytes:
    """A special-function answer: records ``:CC PP FFFF BB DD.. SS`` CR LF, bit 7 set, the
    function's decimal digits as hex digits, counting the blocks left down to 0."""
    chunks = [data[i : i + per_record] for i in range(0, len(data), per_record)] or [b""]
    text = ""
    for index, chunk in enumerate(chunks):
        fields = bytes((len(chunk), pump, *bytes.fromhex(f"{function:04d}"),
                        len(chunks) - 1 - index)) + chunk
        check = (0x100 - sum(fields) % 0x100) % 0x100
        text += ":" + fields.hex().upper() + f"{check:02X}" + "\r\n"
    return bytes(ord(c) | 0x80 for c in text)


@dataclass(frozen=True)
class HeardCommand:
    command: int  # high nibble
    nibble: int  # low nibble: pump 1..15, or 0 for pump 16


@dataclass(frozen=True)
class HeardBlock:
    """A master block: ``body`` is what lies between ``FF`` and ``FB``."""

    body: bytes
    checksum_ok: bool
    length_ok: bool  # the first word is the data-length word for this block's size


@dataclass(frozen=True)
class HeardByte:
    """A byte that is neither a command nor part of a block (noise)."""

    byte: int


class MasterStream:
    """Splits what the master sends into commands, the all-stop and blocks."""

    def __init__(self) -> None:
        self._block: bytearray | None = None

    def reset(self) -> None:
        self._block = None

    def feed(self, data: bytes) -> list[HeardCommand | HeardBlock | HeardByte]:
        out: list[HeardCommand | HeardBlock | HeardByte] = []
        for byte in data:
            if self._block is not None:
                if byte == START or byte < DIGIT:
                    out.extend(HeardByte(b) for b in self._block)
                    self._block = None
                elif byte == END:
                    out.append(self._close(bytes(self._block)))
                    self._block = None
                    continue
                else:
                    self._block.append(byte)
                    if len(self._block) > MAX_HEARD_BLOCK:
                        out.extend(HeardByte(b) for b in self._block)
                        self._block = None
                    continue
            if byte == START:
                self._block = bytearray((byte,))
            elif byte == ALL_STOP:
                out.append(HeardCommand(0xF, 0xC))
            elif byte >> 4 <= 0x6:
                out.append(HeardCommand(byte >> 4, byte & 0x0F))
            else:
                out.append(HeardByte(byte))
        return out

    @staticmethod
    def _close(framed: bytes) -> HeardBlock | HeardByte:
        # framed: FF body FB lrc (F0 not included)
        if len(framed) < 3 or framed[-2] != CHECKSUM_NEXT or framed[-1] >> 4 != 0xE:
            return HeardBlock(b"", False, False)
        body = framed[1:-2]
        checksum_ok = _lrc(framed[:-1]) == framed[-1] & 0x0F
        size = len(body) + 2  # FF through FB
        length_ok = bool(body) and body[0] == DIGIT | ((0x10 - size % 0x10) % 0x10)
        return HeardBlock(body, checksum_ok, length_ok)
