"""Wire codec of the Wayne DART pump interface, rev 2.11 (PROTOCOLS.md, DART section).

No I/O and no clock: bytes in, frames out, and back.

Frame layouts (PROTOCOLS.md, "Control frames" and "Data frames"):

* control frame, 3 bytes, no CRC: ``ADR CTRL 0xFA``
* data frame: ``ADR CTRL {TRANS LNG DATA...}+ CRC_LO CRC_HI ETX SF``

The CRC is CRC-16/ARC over ``ADR`` up to the last data byte, low byte first. Every ``0xFA``
inside the data or the CRC is preceded by a DLE (``0x10``) that is not part of the CRC, so an
``0xFA`` not preceded by a DLE always ends a frame: that is what the streaming decoder cuts on.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from .errors import DartProtocolError

__all__ = [
    "DLE",
    "ETX",
    "MAX_ADDRESS",
    "MAX_FRAME_SIZE",
    "MIN_ADDRESS",
    "SF",
    "Control",
    "ControlFrame",
    "DataFrame",
    "Frame",
    "FrameDecoder",
    "RawTransaction",
    "crc16_arc",
    "decode_frame",
    "from_bcd",
    "to_bcd",
]

DLE = 0x10
ETX = 0x03
SF = 0xFA
MIN_ADDRESS = 0x50
MAX_ADDRESS = 0x6F
MAX_TXN = 0x0F

# Longest frame (escaped, on the wire) the decoder buffers before it gives up on a start. Real
# blocks stay well below 128 bytes (the longest reply, DC7, is 54 bytes of transaction); the
# bound exists so that a line full of noise without any 0xFA cannot grow memory.
MAX_FRAME_SIZE = 512


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16_arc(data: bytes) -> int:
    """CRC-16/ARC: reflected polynomial 0xA001, initial value 0, no final XOR.

    The spec text says "CCITT"; captures of real traffic match ARC (PROTOCOLS.md, "CRC").
    """
    crc = 0
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc


def to_bcd(value: int, length: int) -> bytes:
    """Packed BCD, most significant digit first, exactly ``length`` bytes."""
    if length < 1:
        raise ValueError(f"BCD length must be positive, got {length}")
    if value < 0 or value >= 10 ** (2 * length):
        raise ValueError(f"{value} does not fit in {length} BCD bytes")
    digits = f"{value:0{2 * length}d}"
    return bytes(int(digits[i : i + 2], 16) for i in range(0, len(digits), 2))


def from_bcd(data: bytes) -> int:
    """Value of packed BCD ``data``; a nibble above 9 is a protocol error."""
    value = 0
    for byte in data:
        high, low = byte >> 4, byte & 0x0F
        if high > 9 or low > 9:
            raise DartProtocolError("bad BCD digit", bytes(data))
        value = value * 100 + high * 10 + low
    return value


class Control(IntEnum):
    """High nibble of the CTRL byte; the low nibble is the block sequence number TX#."""

    POLL = 0x20
    DATA = 0x30
    NAK = 0x50
    EOT = 0x70
    ACK = 0xC0
    ACKPOLL = 0xE0


_CONTROLS = {c.value: c for c in Control}


def _check_address(address: int) -> None:
    if not MIN_ADDRESS <= address <= MAX_ADDRESS:
        raise ValueError(f"DART address must be 0x50..0x6F, got 0x{address:X}")


def _check_txn(txn: int) -> None:
    if not 0 <= txn <= MAX_TXN:
        raise ValueError(f"TX# must be 0..15, got {txn}")


@dataclass(frozen=True)
class RawTransaction:
    """One ``TRANS LNG DATA`` group of a data block, not yet interpreted."""

    trans: int
    data: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.trans <= 0xFF:
            raise ValueError(f"TRANS must be one byte, got {self.trans}")
        if len(self.data) > 0xFF:
            raise ValueError(f"transaction data is {len(self.data)} bytes, LNG allows 255")

    def to_bytes(self) -> bytes:
        return bytes((self.trans, len(self.data))) + self.data


@dataclass(frozen=True)
class ControlFrame:
    """``ADR CTRL 0xFA``: POLL, NAK, EOT, ACK or ACKPOLL (never DATA)."""

    address: int
    control: Control
    txn: int = 0

    def __post_init__(self) -> None:
        _check_address(self.address)
        _check_txn(self.txn)
        if self.control is Control.DATA:
            raise ValueError("a DATA block is a DataFrame")
        if self.control is Control.POLL and self.txn:
            raise ValueError("POLL carries no TX#")

    def to_bytes(self) -> bytes:
        return bytes((self.address, self.control | self.txn, SF))

    @classmethod
    def from_bytes(cls, frame: bytes) -> ControlFrame:
        if len(frame) != 3 or frame[2] != SF:
            raise DartProtocolError("not a control frame", frame)
        address, ctrl = frame[0], frame[1]
        if not MIN_ADDRESS <= address <= MAX_ADDRESS:
            raise DartProtocolError("address out of range", frame)
        control = _CONTROLS.get(ctrl & 0xF0)
        if control is None or control is Control.DATA:
            raise DartProtocolError("unknown control byte", frame)
        if control is Control.POLL and ctrl & 0x0F:
            raise DartProtocolError("POLL with a TX#", frame)
        return cls(address, control, ctrl & 0x0F)


@dataclass(frozen=True)
class DataFrame:
    """A DATA block: one or more transactions to or from the pump at ``address``."""

    address: int
    txn: int
    transactions: tuple[RawTransaction, ...]

    def __post_init__(self) -> None:
        _check_address(self.address)
        _check_txn(self.txn)
        if not self.transactions:
            raise ValueError("a DATA block carries at least one transaction")

    def to_bytes(self) -> bytes:
        body = bytes((self.address, Control.DATA | self.txn)) + b"".join(
            t.to_bytes() for t in self.transactions
        )
        crc = crc16_arc(body)
        payload = body + bytes((crc & 0xFF, crc >> 8))
        return payload.replace(bytes((SF,)), bytes((DLE, SF))) + bytes((ETX, SF))

    @classmethod
    def from_bytes(cls, frame: bytes) -> DataFrame:
        if len(frame) < 8 or frame[-2:] != bytes((ETX, SF)):
            raise DartProtocolError("not a data frame", frame)
        payload = _unescape(frame[:-2])
        address, ctrl = payload[0], payload[1]
        if not MIN_ADDRESS <= address <= MAX_ADDRESS:
            raise DartProtocolError("address out of range", frame)
        if ctrl & 0xF0 != Control.DATA:
            raise DartProtocolError("unknown control byte", frame)
        if len(payload) < 6:
            raise DartProtocolError("data block too short", frame)
        body, crc_bytes = payload[:-2], payload[-2:]
        if crc16_arc(body) != crc_bytes[0] | crc_bytes[1] << 8:
            raise DartProtocolError("bad CRC", frame)
        transactions = []
        i = 2
        while i < len(body):
            if i + 2 > len(body):
                raise DartProtocolError("truncated transaction header", frame)
            trans, length = body[i], body[i + 1]
            end = i + 2 + length
            if end > len(body):
                raise DartProtocolError("transaction length overruns block", frame)
            transactions.append(RawTransaction(trans, bytes(body[i + 2 : end])))
            i = end
        return cls(address, ctrl & 0x0F, tuple(transactions))


def _unescape(escaped: bytes) -> bytes:
    # A DLE is removed only where it precedes 0xFA; other DLE bytes are data.
    return escaped.replace(bytes((DLE, SF)), bytes((SF,)))


Frame = ControlFrame | DataFrame


def decode_frame(frame: bytes) -> Frame:
    """Decode one complete frame, terminating ``0xFA`` included."""
    if len(frame) == 3:
        return ControlFrame.from_bytes(frame)
    return DataFrame.from_bytes(frame)


class FrameDecoder:
    """Streaming decoder: cuts the byte stream on unescaped ``0xFA`` and decodes each piece.

    A piece that does not decode is searched for a valid frame starting at a later byte that is
    a plausible address (noise before a frame, or a frame whose start was lost); what is skipped
    is reported as a ``DartProtocolError`` and decoding goes on, so one bad frame never hides the
    next good one.
    """

    def __init__(self, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        if max_frame_size < 8:
            raise ValueError("max_frame_size must hold at least a minimal data frame")
        self._max = max_frame_size
        self._buffer = bytearray()
        self._scanned = 0
        self._overflowing = False

    @property
    def buffered(self) -> int:
        """Bytes held while waiting for the end of a frame (at most ``max_frame_size``)."""
        return len(self._buffer)

    def reset(self) -> None:
        """Forget any partial frame (after a reconnect, for instance)."""
        self._buffer.clear()
        self._scanned = 0
        self._overflowing = False

    def feed(self, data: bytes) -> list[Frame | DartProtocolError]:
        out: list[Frame | DartProtocolError] = []
        buffer = self._buffer
        buffer.extend(data)
        start = self._scanned
        while True:
            end = buffer.find(SF, start)
            if end < 0:
                break
            if end > 0 and buffer[end - 1] == DLE:
                start = end + 1
                continue
            piece = bytes(buffer[: end + 1])
            del buffer[: end + 1]
            start = 0
            self._overflowing = False
            out.extend(_decode_piece(piece))
        if len(buffer) > self._max:
            # Keep the newest bytes: a frame that started among them can still complete.
            dropped = len(buffer) - self._max
            if not self._overflowing:
                out.append(DartProtocolError("no frame end", bytes(buffer[: min(dropped, 64)])))
                self._overflowing = True
            del buffer[:dropped]
        self._scanned = len(buffer)
        return out


def _decode_piece(piece: bytes) -> list[Frame | DartProtocolError]:
    try:
        return [decode_frame(piece)]
    except DartProtocolError as error:
        first = error
    for start in range(1, len(piece) - 2):
        if MIN_ADDRESS <= piece[start] <= MAX_ADDRESS:
            try:
                frame = decode_frame(piece[start:])
            except DartProtocolError:
                continue
            return [DartProtocolError("garbage before frame", piece[:start]), frame]
    return [first]
