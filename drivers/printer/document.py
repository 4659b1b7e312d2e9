"""A printable document: lines of text, label/value pairs, rules and QR codes.

Receipts, shift reports and test pages are all `Document`s. A document knows nothing about the
paper width or the printer's bytes: `layout` fits it to a width, `render` turns the layout into
ESC/POS bytes and `preview` into an image, so what is printed and what is previewed cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "Align",
    "Document",
    "Feed",
    "Line",
    "Pair",
    "QrCode",
    "Rule",
    "Size",
    "Text",
]


class Align(IntEnum):
    """Justification; the values are ESC a n's n (ESC/POS "Select justification")."""

    LEFT = 0
    CENTER = 1
    RIGHT = 2


class Size(IntEnum):
    """Character size; the values are GS ! n's n (bits 0-3 height, 4-7 width, minus one)."""

    NORMAL = 0x00
    TALL = 0x01  # double height: the column count stays the same
    WIDE = 0x10  # double width: half the columns
    LARGE = 0x11  # both

    @property
    def width(self) -> int:
        return (self.value >> 4) + 1

    @property
    def height(self) -> int:
        return (self.value & 0x0F) + 1


@dataclass(frozen=True)
class Text:
    """A paragraph, wrapped to the paper width."""

    text: str
    align: Align = Align.LEFT
    bold: bool = False
    size: Size = Size.NORMAL


@dataclass(frozen=True)
class Pair:
    """A label on the left and its value on the right ("金额 ........ ￥300.00")."""

    label: str
    value: str
    bold: bool = False
    size: Size = Size.NORMAL


@dataclass(frozen=True)
class Rule:
    """A separator across the paper."""

    char: str = "-"


@dataclass(frozen=True)
class QrCode:
    """A QR code, centred, printed by the printer itself (GS ( k)."""

    data: str


@dataclass(frozen=True)
class Feed:
    """Blank lines."""

    lines: int = 1


Line = Text | Pair | Rule | QrCode | Feed


@dataclass(frozen=True)
class Document:
    """What to print, top to bottom; `cut` ends it with a paper cut (ignored without a cutter)."""

    lines: tuple[Line, ...]
    cut: bool = True
