"""A picture of what the printer would print, from the same layout as the ESC/POS bytes.

The image is drawn on the printer's own grid (12 x 24 dots per ASCII column, 24 x 24 per Chinese
character, 384 dots across 58 mm paper and 576 across 80 mm), so a line that fits the preview
fits the paper. Chinese needs a CJK font on the machine (Debian `fonts-noto-cjk` or
`fonts-wqy-zenhei`); without one the preview still renders, with the default font's boxes
where the characters should be, and says so in the log once.
"""

from __future__ import annotations

import glob
import io
import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import qrcode  # type: ignore[import-untyped]
from PIL import Image, ImageDraw, ImageFont

from .document import Align, Document, Feed, QrCode, Text
from .layout import char_columns, columns, layout
from .receipt import ReceiptData, receipt_document
from .render import DOTS_PER_COLUMN, dots, qr_module

__all__ = ["FontChoice", "find_cjk_font", "preview_png", "render_png"]

log = logging.getLogger(__name__)

GLYPH = 24  # dots: the height of font A and the size of a Chinese character
LINE = 30  # dots from one text line to the next (the ESC/POS default line spacing)
MARGIN = 16  # paper showing around the printable area

# Debian's CJK fonts, best first; a collection holds several faces, picked by name below.
_FONT_FILES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)
_FONT_GLOBS = ("/usr/share/fonts/**/*CJK*", "/usr/share/fonts/**/wqy*")


@dataclass(frozen=True)
class FontChoice:
    path: str
    index: int  # the face within a .ttc collection
    name: str


def _faces(path: str) -> list[FontChoice]:
    faces = []
    for index in range(32):
        try:
            font = ImageFont.truetype(path, GLYPH, index=index)
        except OSError:
            break
        family, style = font.getname()
        faces.append(FontChoice(path, index, f"{family} {style}"))
    return faces


def _score(face: FontChoice) -> int:
    # Simplified Chinese glyph shapes first (Noto's collections start with the Japanese ones),
    # then a monospaced face, whose ASCII fills exactly half a Chinese character like the
    # printer's.
    name = face.name
    return (2 if " SC" in name or "WenQuanYi" in name else 0) + (1 if "Mono" in name else 0)


@cache
def find_cjk_font() -> FontChoice | None:
    """The best CJK font installed, or None."""
    paths = [p for p in _FONT_FILES if Path(p).is_file()]
    for pattern in _FONT_GLOBS:
        paths += sorted(p for p in glob.glob(pattern, recursive=True) if p not in paths)
    for path in paths:
        faces = _faces(path)
        if faces:
            return max(faces, key=_score)
    return None


@cache
def _font(choice: FontChoice | None) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if choice is not None:
        return ImageFont.truetype(choice.path, GLYPH, index=choice.index)
    log.warning("no CJK font installed: receipt previews show boxes for Chinese text "
                "(install fonts-noto-cjk or fonts-wqy-zenhei)")
    return ImageFont.load_default(GLYPH)


def _text_strip(row: Text, font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> Image.Image:
    """One line at normal size, drawn character by character on the printer's grid."""
    strip = Image.new("L", (max(1, columns(row.text)) * DOTS_PER_COLUMN, LINE), 255)
    draw = ImageDraw.Draw(strip)
    x = 0
    for char in row.text:
        if not char.isspace():
            draw.text((x, 2), char, fill=0, font=font, stroke_width=1 if row.bold else 0,
                      stroke_fill=0)
        x += char_columns(char) * DOTS_PER_COLUMN
    w, h = row.size.width, row.size.height
    return strip if (w, h) == (1, 1) else strip.resize((strip.width * w, LINE * h),
                                                       Image.Resampling.NEAREST)


def _qr_image(data: str, module: int) -> Image.Image:
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=module,
                         border=0)
    code.add_data(data)
    code.make(fit=True)
    image: Image.Image = code.make_image().get_image()
    return image.convert("L")


def _x(align: Align, item: int, space: int) -> int:
    if align is Align.CENTER:
        return max(0, (space - item) // 2)
    if align is Align.RIGHT:
        return max(0, space - item)
    return 0


def render_png(document: Document, width: int, *, font: FontChoice | None = None) -> bytes:
    """The document as a PNG of the paper, `width` columns wide; `font` defaults to the best
    CJK font installed."""
    face = _font(font if font is not None else find_cjk_font())
    space = dots(width)
    pieces: list[tuple[Image.Image | None, int, int]] = []  # (image, x, height)
    for row in layout(document, width):
        if isinstance(row, Text):
            strip = _text_strip(row, face)
            pieces.append((strip, _x(row.align, strip.width, space), strip.height))
        elif isinstance(row, QrCode):
            code = _qr_image(row.data, qr_module(width))
            pieces.append((code, _x(Align.CENTER, code.width, space), code.height + 8))
        elif isinstance(row, Feed):
            pieces.append((None, 0, LINE * row.lines))
    tail = LINE * 2 if document.cut else 0
    height = MARGIN * 2 + sum(h for _, _, h in pieces) + tail
    paper = Image.new("L", (space + MARGIN * 2, height), 255)
    y = MARGIN
    for image, x, h in pieces:
        if image is not None:
            paper.paste(image, (MARGIN + x, y))
        y += h
    if document.cut:
        draw = ImageDraw.Draw(paper)
        for x in range(0, paper.width, 12):
            draw.line([(x, height - MARGIN), (x + 6, height - MARGIN)], fill=128)
    out = io.BytesIO()
    paper.save(out, format="PNG", optimize=True)
    return out.getvalue()


def preview_png(receipt: ReceiptData | Document, path: Path | str, width: int = 32) -> Path:
    """Write the receipt's (or any document's) preview to `path`; returns the path."""
    document = receipt if isinstance(receipt, Document) else receipt_document(receipt)
    target = Path(path)
    target.write_bytes(render_png(document, width))
    return target
