"""Receipt previews: a real PNG of the paper, drawn on the printer's dot grid."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from PIL import Image

from drivers.printer import Document, Pair, QrCode, Text, find_cjk_font, preview_png, render_png
from drivers.printer import preview as preview_module

from .test_receipt import RECEIPT


@pytest.mark.parametrize(("paper", "dots"), [(32, 384), (48, 576)])
def test_preview_is_a_png_as_wide_as_the_paper(tmp_path: Path, paper: int, dots: int) -> None:
    path = preview_png(RECEIPT, tmp_path / "receipt.png", paper)
    with Image.open(path) as image:
        image.verify()  # a complete, valid PNG
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width == dots + 2 * preview_module.MARGIN
        assert image.height > 600  # the whole receipt, QR code included
        # Ink on paper: a white image would mean nothing was drawn.
        assert image.convert("L").getextrema() == (0, 255)


def test_the_qr_code_in_the_preview_is_drawn_at_printer_size() -> None:
    with_qr = Image.open(io.BytesIO(render_png(Document((QrCode("https://a.cn/1"),)), 32)))
    without = Image.open(io.BytesIO(render_png(Document(()), 32)))
    # Version 1 (21 cells) at 6 dots a cell, plus the gap under it.
    assert with_qr.height - without.height == 21 * 6 + 8


def test_chinese_is_drawn_with_a_cjk_font_when_one_is_installed() -> None:
    font = find_cjk_font()
    if font is None:
        pytest.skip("no CJK font installed (Debian: fonts-wqy-zenhei or fonts-noto-cjk)")
    def cell(char: str) -> Image.Image:
        image = Image.open(io.BytesIO(render_png(Document((Text(char),), cut=False), 32)))
        m = preview_module.MARGIN
        return image.crop((m, m, m + 24, m + 26))

    # Real glyphs: ink in the cell, and two characters look different (a font without them
    # draws the same empty box for both).
    you, qi = cell("油"), cell("汽")
    assert sum(you.histogram()[:128]) > 40
    assert you.tobytes() != qi.tobytes()


def test_without_a_cjk_font_the_preview_still_renders_and_says_why(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preview_module, "find_cjk_font", lambda: None)
    preview_module._font.cache_clear()  # the warning is given once per font choice
    try:
        with caplog.at_level(logging.WARNING, logger="drivers.printer.preview"):
            png = preview_module.render_png(Document((Pair("金额", "￥300.00"),)), 32)
    finally:
        preview_module._font.cache_clear()
    assert Image.open(io.BytesIO(png)).format == "PNG"
    assert "no CJK font installed" in caplog.text
