"""A document as the ESC/POS bytes a receipt printer prints: pure, no I/O."""

from __future__ import annotations

from . import commands
from .document import Align, Document, Feed, QrCode, Size, Text
from .layout import layout

__all__ = ["CUT_FEED_LINES", "dots", "qr_module", "render"]

CUT_FEED_LINES = 4
"""Lines fed before the cut: the cutter sits above the print head."""

DOTS_PER_COLUMN = 12  # font A is 12 x 24 dots


def dots(width: int) -> int:
    """Printable width in dots: 384 for 32 columns (58 mm paper), 576 for 48 (80 mm)."""
    return width * DOTS_PER_COLUMN


def qr_module(width: int) -> int:
    """Dots per QR cell: an e-invoice link (version 4-6) stays well inside the paper and big
    enough for a phone camera."""
    return 6 if width <= 32 else 8


def render(document: Document, width: int) -> bytes:
    """`document` laid out `width` columns wide, as the bytes to send to the printer."""
    out = bytearray(commands.INIT)
    current_align, current_bold, current_size = Align.LEFT, False, Size.NORMAL
    for row in layout(document, width):
        if isinstance(row, Text):
            if row.align != current_align:
                out += commands.align(row.align)
                current_align = row.align
            if row.bold != current_bold:
                out += commands.bold(row.bold)
                current_bold = row.bold
            if row.size != current_size:
                out += commands.size(row.size)
                current_size = row.size
            out += commands.text(row.text)
        elif isinstance(row, QrCode):
            if current_align != Align.CENTER:
                out += commands.align(Align.CENTER)
                current_align = Align.CENTER
            out += commands.qr_code(row.data, qr_module(width))
        elif isinstance(row, Feed):
            out += commands.feed(row.lines)
    if document.cut:
        out += commands.feed(CUT_FEED_LINES) + commands.cut()
    return bytes(out)
