"""The pump's data answers: transaction, totals and running money (PROTOCOLS.md, "Gilbarco
two-wire": "Transaction answer", "Totals answer", "Running money").

Numbers are raw integers in the pump's units; the decimal point is not on the wire (it is the
pump's configuration). Hoses are numbered from 1 here; on the wire they are counted from 0
(``F6 E2`` is the third hose).

Transaction, standard mode, 33 words (positions from the leading ``FF`` = 0)::

    0 FF | 1-3 F1 F8 EB (same in every capture, meaning unknown) | 4 pump, from 0 |
    5-7 unknown | 8 F6 9 hose, from 0 | 10 F4 (price level) | 11 F7 12-15 price |
    16 F9 17-22 volume | 23 FA 24-29 money | 30 FB 31 lrc 32 F0

The 8-digit mode has 6 price digits and 8 volume and money digits: 39 words.
"""

from __future__ import annotations

from dataclasses import dataclass

from .commands import LAYOUTS, DigitsMode, Layout, check_pump
from .errors import GilbarcoProtocolError
from .words import DATA, Block, Word, decode_digits, encode_digits, nibble

__all__ = [
    "CAPTURED_HEADER",
    "HoseTotals",
    "PumpTotals",
    "RunningMoney",
    "Transaction",
]

CAPTURED_HEADER = bytes((0xF1, 0xF8, 0xEB))
"""Words 1-3 of every captured transaction answer; what they mean is unknown."""

_LEVELS: dict[int, int] = {Word.PRICE_LEVEL_1: 1, Word.PRICE_LEVEL_2: 2}
_LEVEL_WORDS = {1: Word.PRICE_LEVEL_1, 2: Word.PRICE_LEVEL_2}


def _hose_word(hose: int) -> int:
    if not 1 <= hose <= 16:
        raise ValueError(f"a hose is 1..16, not {hose}")
    return DATA | (hose - 1)


def _expect(block: Block, frame: bytes, index: int, word: int, what: str) -> None:
    if block.body[index] != word:
        raise GilbarcoProtocolError(f"{what}: expected 0x{word:02X}", frame)


def _digits(layout_count: int, value: int, name: str) -> bytes:
    try:
        return encode_digits(value, layout_count)
    except ValueError:
        raise ValueError(f"{name} {value} does not fit in {layout_count} digits") from None


@dataclass(frozen=True)
class Transaction:
    """The answer to TRANSACTION: the sale the pump shows, in progress or finished.

    ``header`` and ``unknown`` are the words at positions 1-3 and 5-7, kept as they came so that
    the log and the sale's details can show them.
    """

    pump: int
    hose: int
    price: int
    volume: int
    money: int
    price_level: int = 1
    mode: DigitsMode = DigitsMode.STANDARD
    header: bytes = CAPTURED_HEADER
    unknown: bytes = b"\xe0\xe0\xe0"

    def __post_init__(self) -> None:
        check_pump(self.pump)
        _hose_word(self.hose)
        if self.price_level not in _LEVEL_WORDS:
            raise ValueError(f"a price level is 1 or 2, not {self.price_level}")
        if len(self.header) != 3 or len(self.unknown) != 3:
            raise ValueError("header and unknown are three words each")

    @property
    def layout(self) -> Layout:
        return LAYOUTS[self.mode]

    def to_block(self) -> Block:
        layout = self.layout
        return Block(
            bytes(
                (
                    *self.header,
                    DATA | (self.pump - 1),
                    *self.unknown,
                    Word.HOSE_NEXT,
                    _hose_word(self.hose),
                    _LEVEL_WORDS[self.price_level],
                    Word.PRICE_NEXT,
                    *_digits(layout.price_digits, self.price, "price"),
                    Word.VOLUME_NEXT,
                    *_digits(layout.sale_digits, self.volume, "volume"),
                    Word.MONEY_NEXT,
                    *_digits(layout.sale_digits, self.money, "money"),
                )
            )
        )

    @classmethod
    def from_block(cls, block: Block, mode: DigitsMode = DigitsMode.STANDARD) -> Transaction:
        layout = LAYOUTS[mode]
        frame = block.to_bytes()
        body = block.body
        if len(body) + 4 != layout.transaction_words:
            raise GilbarcoProtocolError(
                f"a transaction is {layout.transaction_words} words in {mode} mode", frame
            )
        pump = nibble(body[3], frame) + 1
        _expect(block, frame, 7, Word.HOSE_NEXT, "hose")
        hose = nibble(body[8], frame) + 1
        level = _LEVELS.get(body[9])
        if level is None:
            raise GilbarcoProtocolError("price level: expected 0xF4 or 0xF5", frame)
        _expect(block, frame, 10, Word.PRICE_NEXT, "price")
        at = 11
        price = decode_digits(body[at : at + layout.price_digits])
        at += layout.price_digits
        _expect(block, frame, at, Word.VOLUME_NEXT, "volume")
        volume = decode_digits(body[at + 1 : at + 1 + layout.sale_digits])
        at += 1 + layout.sale_digits
        _expect(block, frame, at, Word.MONEY_NEXT, "money")
        money = decode_digits(body[at + 1 : at + 1 + layout.sale_digits])
        return cls(
            pump=pump,
            hose=hose,
            price=price,
            volume=volume,
            money=money,
            price_level=level,
            mode=mode,
            header=bytes(body[0:3]),
            unknown=bytes(body[4:7]),
        )


@dataclass(frozen=True)
class HoseTotals:
    """One hose's record in the totals answer: electronic totals and both price levels."""

    hose: int
    volume: int
    money: int
    price_1: int
    price_2: int

    def __post_init__(self) -> None:
        _hose_word(self.hose)

    def words(self, layout: Layout) -> bytes:
        return bytes(
            (
                Word.HOSE_NEXT,
                _hose_word(self.hose),
                Word.VOLUME_NEXT,
                *_digits(layout.totals_digits, self.volume, "volume total"),
                Word.MONEY_NEXT,
                *_digits(layout.totals_digits, self.money, "money total"),
                Word.PRICE_LEVEL_1,
                *_digits(layout.price_digits, self.price_1, "price level 1"),
                Word.PRICE_LEVEL_2,
                *_digits(layout.price_digits, self.price_2, "price level 2"),
            )
        )

    @classmethod
    def from_words(cls, words: bytes, layout: Layout, frame: bytes) -> HoseTotals:
        t, p = layout.totals_digits, layout.price_digits
        markers = {
            0: Word.HOSE_NEXT,
            2: Word.VOLUME_NEXT,
            3 + t: Word.MONEY_NEXT,
            4 + 2 * t: Word.PRICE_LEVEL_1,
            5 + 2 * t + p: Word.PRICE_LEVEL_2,
        }
        for index, word in markers.items():
            if words[index] != word:
                raise GilbarcoProtocolError(f"totals record: expected 0x{word:02X}", frame)
        return cls(
            hose=nibble(words[1], frame) + 1,
            volume=decode_digits(words[3 : 3 + t]),
            money=decode_digits(words[4 + t : 4 + 2 * t]),
            price_1=decode_digits(words[5 + 2 * t : 5 + 2 * t + p]),
            price_2=decode_digits(words[6 + 2 * t + p : 6 + 2 * t + 2 * p]),
        )


@dataclass(frozen=True)
class PumpTotals:
    """The answer to TOTALS: one record per hose, in the pump's order (there is no count)."""

    hoses: tuple[HoseTotals, ...]
    mode: DigitsMode = DigitsMode.STANDARD

    def hose(self, hose: int) -> HoseTotals | None:
        return next((h for h in self.hoses if h.hose == hose), None)

    def to_block(self) -> Block:
        layout = LAYOUTS[self.mode]
        return Block(b"".join(h.words(layout) for h in self.hoses))

    @classmethod
    def from_block(cls, block: Block, mode: DigitsMode = DigitsMode.STANDARD) -> PumpTotals:
        layout = LAYOUTS[mode]
        frame = block.to_bytes()
        size = layout.totals_record_words
        if not block.body or len(block.body) % size:
            raise GilbarcoProtocolError(
                f"totals are {size}-word records per hose in {mode} mode", frame
            )
        hoses = tuple(
            HoseTotals.from_words(block.body[i : i + size], layout, frame)
            for i in range(0, len(block.body), size)
        )
        if len({h.hose for h in hoses}) != len(hoses):
            raise GilbarcoProtocolError("a hose twice in the totals", frame)
        return cls(hoses, mode)


@dataclass(frozen=True)
class RunningMoney:
    """The answer to RUNNING_MONEY: the money of the filling so far, and nothing else."""

    money: int
    mode: DigitsMode = DigitsMode.STANDARD

    def to_bytes(self) -> bytes:
        return encode_digits(self.money, LAYOUTS[self.mode].running_digits)

    @classmethod
    def from_bytes(cls, words: bytes, mode: DigitsMode = DigitsMode.STANDARD) -> RunningMoney:
        count = LAYOUTS[mode].running_digits
        if len(words) != count:
            raise GilbarcoProtocolError(f"running money is {count} digit words", words)
        return cls(decode_digits(words), mode)
