"""Special-function answers (PROTOCOLS.md, "Gilbarco two-wire": "Special functions").

The pump answers a special-function request with short records "in Intel-HEX style": ASCII with
bit 7 set on every character, ``:``, a count, the pump id, the function, the blocks left, the
data, a checksum, CR LF. The notes give the fields, not their widths; this driver reads them as
Intel HEX does, in hex pairs::

    :  CC  PP  FFFF  BB  DD...  SS  CR LF
       |   |   |     |   |      +- (-(sum of the bytes CC..DD)) & 0xFF, as Intel HEX
       |   |   |     |   +- CC data bytes
       |   |   |     +- records still to come after this one (00: the last)
       |   |   +- the function's three decimal digits, as hex digits ("0010" for 010)
       |   +- the pump, 1..16
       +- data byte count

What a record's data means is the function's: 010 is one byte, the hose that is lifted (0: none);
the pump configuration is unit (0 litres, 1 gallons), volume, money and price decimals and the
money digits (5..8). The driver logs a record it cannot read and falls back to the config.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .errors import GilbarcoProtocolError

__all__ = [
    "NOZZLE_FUNCTION",
    "HexRecord",
    "HexRecordDecoder",
    "NozzleReport",
    "PumpConfiguration",
    "SpecialFunctionAnswer",
]

NOZZLE_FUNCTION = 10
"""Special function 010: which nozzle is lifted."""

HIGH = 0x80
COLON = ord(":") | HIGH
CR = ord("\r") | HIGH
LF = ord("\n") | HIGH
MAX_RECORD = 2 * (5 + 255 + 1) + 3  # ":" + hex pairs of header, data, checksum + CR LF
_HEX = frozenset(ord(c) | HIGH for c in "0123456789ABCDEFabcdef")


def _checksum(data: bytes) -> int:
    return -sum(data) & 0xFF


@dataclass(frozen=True)
class HexRecord:
    """One record of a special-function answer."""

    pump: int
    function: int
    blocks_left: int
    data: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.pump <= 0xFF or not 0 <= self.blocks_left <= 0xFF:
            raise ValueError("pump and blocks left are one byte each")
        if not 0 <= self.function <= 999:
            raise ValueError(f"a special function is 000..999, not {self.function}")
        if len(self.data) > 0xFF:
            raise ValueError("a record carries at most 255 data bytes")

    def to_bytes(self) -> bytes:
        function = int(f"{self.function:04d}", 16)
        raw = bytes((len(self.data), self.pump, function >> 8, function & 0xFF,
                     self.blocks_left)) + self.data
        text = ":" + (raw + bytes((_checksum(raw),))).hex().upper() + "\r\n"
        return bytes(ord(c) | HIGH for c in text)

    @classmethod
    def from_bytes(cls, frame: bytes) -> HexRecord:
        if len(frame) < 15 or frame[0] != COLON or frame[-2:] != bytes((CR, LF)):
            raise GilbarcoProtocolError("not a hex record", frame)
        hexes = frame[1:-2]
        if len(hexes) % 2 or any(c not in _HEX for c in hexes):
            raise GilbarcoProtocolError("not hex digits", frame)
        raw = bytes.fromhex(bytes(c & 0x7F for c in hexes).decode("ascii"))
        if _checksum(raw[:-1]) != raw[-1]:
            raise GilbarcoProtocolError("bad record checksum", frame)
        count, pump, fn_high, fn_low, left = raw[:5]
        data = raw[5:-1]
        if len(data) != count:
            raise GilbarcoProtocolError("record count does not match its data", frame)
        digits = f"{fn_high:02X}{fn_low:02X}"
        if not digits.isdigit():
            raise GilbarcoProtocolError("function is not decimal", frame)
        return cls(pump, int(digits), left, data)


class HexRecordDecoder:
    """Streaming decoder of hex records: from ``:`` to LF, each checked; bytes between records
    are reported as ``"garbage"`` (once per ``feed``)."""

    def __init__(self) -> None:
        self._record = bytearray()

    def reset(self) -> None:
        self._record.clear()

    def feed(self, data: bytes) -> list[HexRecord | GilbarcoProtocolError]:
        out: list[HexRecord | GilbarcoProtocolError] = []
        garbage = bytearray()
        record = self._record
        for byte in data:
            if byte == COLON:
                if record:
                    out.append(GilbarcoProtocolError("record cut short", bytes(record)))
                if garbage:
                    out.append(GilbarcoProtocolError("garbage", bytes(garbage[:64])))
                    garbage.clear()
                record[:] = bytes((byte,))
            elif not record:
                garbage.append(byte)
            else:
                record.append(byte)
                if byte == LF:
                    try:
                        out.append(HexRecord.from_bytes(bytes(record)))
                    except GilbarcoProtocolError as error:
                        out.append(error)
                    record.clear()
                elif len(record) >= MAX_RECORD:
                    out.append(GilbarcoProtocolError("record too long", bytes(record[:64])))
                    record.clear()
        if garbage:
            out.append(GilbarcoProtocolError("garbage", bytes(garbage[:64])))
        return out


@dataclass(frozen=True)
class SpecialFunctionAnswer:
    """Every record of one answer, the last with ``blocks_left`` 0."""

    records: tuple[HexRecord, ...]

    def __post_init__(self) -> None:
        if not self.records:
            raise ValueError("an answer has at least one record")

    @property
    def function(self) -> int:
        return self.records[0].function

    @property
    def data(self) -> bytes:
        return b"".join(r.data for r in self.records)

    def to_bytes(self) -> bytes:
        return b"".join(r.to_bytes() for r in self.records)

    @classmethod
    def of(
        cls, pump: int, function: int, data: bytes, per_record: int = 16
    ) -> SpecialFunctionAnswer:
        """``data`` cut into records of at most ``per_record`` bytes, counting down."""
        chunks: Sequence[bytes] = [data[i : i + per_record]
                                   for i in range(0, len(data), per_record)] or [b""]
        last = len(chunks) - 1
        return cls(tuple(HexRecord(pump, function, last - i, chunk)
                         for i, chunk in enumerate(chunks)))


@dataclass(frozen=True)
class NozzleReport:
    """Special function 010: the hose that is lifted, None when none is."""

    hose: int | None

    @classmethod
    def from_answer(cls, answer: SpecialFunctionAnswer) -> NozzleReport:
        data = answer.data
        if answer.function != NOZZLE_FUNCTION or len(data) != 1 or data[0] > 16:
            raise GilbarcoProtocolError("not a nozzle report", answer.to_bytes())
        return cls(data[0] or None)

    def data(self) -> bytes:
        return bytes((self.hose or 0,))


@dataclass(frozen=True)
class PumpConfiguration:
    """The pump's own configuration: unit, decimals and money digits."""

    volume_decimals: int
    money_decimals: int
    price_decimals: int
    money_digits: int = 6
    gallons: bool = False

    def __post_init__(self) -> None:
        for name in ("volume_decimals", "money_decimals", "price_decimals"):
            if not 0 <= getattr(self, name) <= 3:
                raise ValueError(f"{name} must be 0..3")
        if not 5 <= self.money_digits <= 8:
            raise ValueError(f"money digits are 5..8, not {self.money_digits}")

    def data(self) -> bytes:
        return bytes((int(self.gallons), self.volume_decimals, self.money_decimals,
                      self.price_decimals, self.money_digits))

    @classmethod
    def from_answer(cls, answer: SpecialFunctionAnswer) -> PumpConfiguration:
        data = answer.data
        if len(data) < 5 or data[0] > 1:
            raise GilbarcoProtocolError("not a pump configuration", answer.to_bytes())
        try:
            return cls(data[1], data[2], data[3], data[4], bool(data[0]))
        except ValueError as error:
            raise GilbarcoProtocolError(f"pump configuration: {error}",
                                        answer.to_bytes()) from None
