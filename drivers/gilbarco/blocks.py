"""Blocks the master sends after ``DATA_FOLLOWS`` and the pump's ``READY_FOR_DATA``
(PROTOCOLS.md, "Gilbarco two-wire": "Master blocks", "Special functions").

* preset: ``FF <len> F1|F2 F4 [F6 E<hose>] F8 d..d FB lrc F0`` (F1 volume, F2 money)
* price change, only when idle: ``FF <len> F4 F6 E<hose> F7 p p p p FB lrc F0``
* special function request: ``FF <len> FE d d d FB lrc F0`` (function ``ddd``)

Every number least significant digit first; hoses from 1 here, from 0 on the wire. A price
change carries the level-1 price (``F4``); the level-2 price (``F5``) is the credit price, which
this driver does not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .commands import LAYOUTS, DigitsMode
from .errors import GilbarcoProtocolError
from .words import DATA, Block, Word, decode_digits, encode_digits, nibble

__all__ = ["MasterBlock", "PresetBlock", "PriceChangeBlock", "SpecialFunctionRequest",
           "decode_master_block"]

PresetUnit = Literal["volume", "money"]
_UNIT_WORDS: dict[PresetUnit, int] = {"volume": Word.VOLUME_PRESET, "money": Word.MONEY_PRESET}
_LEVEL_WORDS = {1: Word.PRICE_LEVEL_1, 2: Word.PRICE_LEVEL_2}
_LEVELS: dict[int, int] = {Word.PRICE_LEVEL_1: 1, Word.PRICE_LEVEL_2: 2}


def _check_hose(hose: int) -> None:
    if not 1 <= hose <= 16:
        raise ValueError(f"a hose is 1..16, not {hose}")


def _check_length(block: Block) -> bytes:
    frame = block.to_bytes()
    if not block.length_ok:
        raise GilbarcoProtocolError("bad data-length word", frame)
    return frame


@dataclass(frozen=True)
class PresetBlock:
    """A preset of ``value`` (raw pump units) in volume or money, optionally for one hose."""

    unit: PresetUnit
    value: int
    digits: int = LAYOUTS[DigitsMode.STANDARD].preset_digits
    hose: int | None = None
    price_level: int = 1

    def __post_init__(self) -> None:
        if self.unit not in _UNIT_WORDS:
            raise ValueError(f"a preset is in volume or money, not {self.unit!r}")
        if self.hose is not None:
            _check_hose(self.hose)
        if self.price_level not in _LEVEL_WORDS:
            raise ValueError(f"a price level is 1 or 2, not {self.price_level}")
        if not 1 <= self.digits <= 12:
            raise ValueError(f"a preset has 1..12 digits, not {self.digits}")
        if not 0 < self.value < 10**self.digits:
            raise ValueError(f"a preset of {self.value} does not fit in {self.digits} digits")

    def to_block(self) -> Block:
        hose = () if self.hose is None else (Word.HOSE_NEXT, DATA | (self.hose - 1))
        return Block.master(
            (
                _UNIT_WORDS[self.unit],
                _LEVEL_WORDS[self.price_level],
                *hose,
                Word.PRESET_NEXT,
                *encode_digits(self.value, self.digits),
            )
        )


@dataclass(frozen=True)
class PriceChangeBlock:
    """The level-1 (or level-2) unit price of one hose, raw pump units."""

    hose: int
    price: int
    digits: int = LAYOUTS[DigitsMode.STANDARD].price_digits
    price_level: int = 1

    def __post_init__(self) -> None:
        _check_hose(self.hose)
        if self.price_level not in _LEVEL_WORDS:
            raise ValueError(f"a price level is 1 or 2, not {self.price_level}")
        if not 0 < self.price < 10**self.digits:
            raise ValueError(f"a price of {self.price} does not fit in {self.digits} digits")

    def to_block(self) -> Block:
        return Block.master(
            (
                _LEVEL_WORDS[self.price_level],
                Word.HOSE_NEXT,
                DATA | (self.hose - 1),
                Word.PRICE_NEXT,
                *encode_digits(self.price, self.digits),
            )
        )


@dataclass(frozen=True)
class SpecialFunctionRequest:
    """Asks for special function ``function`` (0..999); the pump answers with hex records."""

    function: int

    def __post_init__(self) -> None:
        if not 0 <= self.function <= 999:
            raise ValueError(f"a special function is 000..999, not {self.function}")

    def to_block(self) -> Block:
        return Block.master((Word.SPECIAL_FUNCTION_NEXT, *encode_digits(self.function, 3)))


MasterBlock = PresetBlock | PriceChangeBlock | SpecialFunctionRequest


def decode_master_block(block: Block) -> MasterBlock:
    """What a master block asks, for tests and captures; the length word must be right."""
    frame = _check_length(block)
    try:
        return _decode_payload(block.body[1:], frame)
    except ValueError as error:  # a value the constructors refuse (too many digits...)
        raise GilbarcoProtocolError(f"bad block ({error})", frame) from None


def _decode_payload(payload: bytes, frame: bytes) -> MasterBlock:
    if not payload:
        raise GilbarcoProtocolError("empty block", frame)
    first = payload[0]
    if first == Word.SPECIAL_FUNCTION_NEXT:
        if len(payload) != 4:
            raise GilbarcoProtocolError("a special function has three digits", frame)
        return SpecialFunctionRequest(decode_digits(payload[1:]))
    if first in (Word.VOLUME_PRESET, Word.MONEY_PRESET):
        unit: PresetUnit = "volume" if first == Word.VOLUME_PRESET else "money"
        level = _LEVELS.get(payload[1]) if len(payload) > 1 else None
        if level is None:
            raise GilbarcoProtocolError("preset: expected a price level", frame)
        at, hose = 2, None
        if len(payload) > 3 and payload[at] == Word.HOSE_NEXT:
            hose, at = nibble(payload[at + 1], frame) + 1, at + 2
        if at >= len(payload) or payload[at] != Word.PRESET_NEXT or at + 1 == len(payload):
            raise GilbarcoProtocolError("preset: expected F8 and digits", frame)
        digits = payload[at + 1 :]
        value = decode_digits(digits)
        if value == 0:
            raise GilbarcoProtocolError("a preset of 0", frame)
        return PresetBlock(unit, value, len(digits), hose, level)
    if first in (Word.PRICE_LEVEL_1, Word.PRICE_LEVEL_2):
        if len(payload) < 5 or payload[1] != Word.HOSE_NEXT or payload[3] != Word.PRICE_NEXT:
            raise GilbarcoProtocolError("price change: expected F6 hose F7 digits", frame)
        price = decode_digits(payload[4:])
        if price == 0:
            raise GilbarcoProtocolError("a price of 0", frame)
        hose = nibble(payload[2], frame) + 1
        return PriceChangeBlock(hose, price, len(payload) - 4, _LEVELS[first])
    raise GilbarcoProtocolError("unknown block", frame)
