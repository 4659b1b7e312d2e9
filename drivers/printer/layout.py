"""Fitting a document to the paper: columns, wrapping and label/value pairs.

Receipt printers print from a fixed grid: 32 columns on 58 mm paper, 48 on 80 mm (font A,
12 x 24 dots). A character that takes one byte in GB18030 (ASCII) fills one column; every other
character, Chinese or full-width punctuation such as "￥" and "，", is printed from the 24 x 24
Chinese font and fills two. Double-width text fills twice as many.
"""

from __future__ import annotations

import unicodedata

from .document import Align, Document, Feed, Line, Pair, QrCode, Rule, Text

__all__ = ["MIN_WIDTH", "Row", "char_columns", "clean", "columns", "layout", "wrap"]

MIN_WIDTH = 16
"""Columns at least: narrower paper cannot show a receipt's label/value pairs."""


Row = Text | QrCode | Feed
"""A laid-out line: a `Text` that fits the paper, a QR code, or a feed."""


def char_columns(char: str) -> int:
    return 1 if ord(char) < 0x80 else 2


def columns(text: str) -> int:
    """Printed width of `text` in columns at normal size."""
    return sum(char_columns(c) for c in text)


def clean(text: str) -> str:
    """`text` without control characters: a sale's fields come from pumps, apps and people, and
    an ESC or GS inside one would be obeyed by the printer as a command."""
    out = []
    for char in text:
        category = unicodedata.category(char)
        if char in "\t\n\r" or (char.isspace() and category != "Cc"):
            out.append(" ")  # tabs, line breaks, no-break and ideographic spaces
        elif category in ("Cc", "Cf", "Cs", "Co", "Cn"):
            continue  # FS, GS, RS and US count as spaces to Python, not to a printer
        else:
            out.append(char)
    return "".join(out)


def wrap(text: str, width: int) -> list[str]:
    """`text` cut into lines of at most `width` columns; an ASCII word is kept whole when the
    line has a space to break at, Chinese text breaks anywhere."""
    if width < 2:
        raise ValueError(f"cannot wrap text to {width} column(s)")
    lines: list[str] = []
    line = ""
    used = 0
    for char in text:
        wide = char_columns(char)
        if used + wide > width:
            cut = line.rfind(" ") if char != " " and char.isascii() and char.isalnum() else -1
            if cut > 0 and line[cut + 1 :].isascii():
                lines.append(line[:cut].rstrip(" "))
                line = line[cut + 1 :]
            else:
                lines.append(line.rstrip(" "))
                line = ""
            used = columns(line)
            if char == " " and not line:
                continue  # a break swallows the space it replaces
        line += char
        used += wide
    if line.strip(" ") or not lines:
        lines.append(line.rstrip(" "))
    return lines


def _pair(item: Pair, width: int) -> list[Row]:
    span = width // item.size.width
    label, value = clean(item.label), clean(item.value)
    gap = span - columns(label) - columns(value)
    if gap >= 1:
        return [Text(label + " " * gap + value, Align.LEFT, item.bold, item.size)]
    # Too long for one line: the label, then the value against the right edge.
    rows: list[Row] = [Text(part, Align.LEFT, item.bold, item.size)
                       for part in wrap(label, span)]
    for part in wrap(value, span):
        rows.append(Text(" " * (span - columns(part)) + part, Align.LEFT, item.bold,
                         item.size))
    return rows


def _line(item: Line, width: int) -> list[Row]:
    if isinstance(item, Text):
        span = width // item.size.width
        return [Text(part, item.align, item.bold, item.size)
                for part in wrap(clean(item.text), span)]
    if isinstance(item, Pair):
        return _pair(item, width)
    if isinstance(item, Rule):
        char = clean(item.char)[:1] or "-"
        return [Text(char * (width // char_columns(char)))]
    if isinstance(item, QrCode):
        return [item]
    if isinstance(item, Feed):
        return [item] if item.lines > 0 else []
    raise TypeError(f"not a document line: {item!r}")


def layout(document: Document, width: int) -> tuple[Row, ...]:
    """The rows the printer prints, `width` columns wide at normal size."""
    if width < MIN_WIDTH:
        raise ValueError(f"paper of {width} columns is too narrow; at least {MIN_WIDTH}")
    rows: list[Row] = []
    for item in document.lines:
        rows.extend(_line(item, width))
    return tuple(rows)
