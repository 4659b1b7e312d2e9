"""ESC/POS bytes against the command reference and the GB2312/GB18030 code table."""

from __future__ import annotations

import pytest

from drivers.printer import Align, Document, Feed, Pair, QrCode, Rule, Size, Text, render
from drivers.printer.commands import (
    StatusRequest,
    align,
    bold,
    cut,
    feed,
    qr_code,
    size,
    status_request,
    text,
)

# Code points from the GB 2312 table (row-cell + 0xA0): 号 = 26-37, 汽 = 38-91, 油 = 51-45,
# ￥ = 03-04 (full-width yen), 加 = 28-51.
GB_HAO, GB_QI, GB_YOU, GB_YEN, GB_JIA = "BAC5", "C6FB", "D3CD", "A3A4", "BCD3"


def test_single_commands() -> None:
    assert align(Align.CENTER) == bytes.fromhex("1B 61 01")
    assert align(Align.RIGHT) == bytes.fromhex("1B 61 02")
    assert bold(True) == bytes.fromhex("1B 45 01")
    assert bold(False) == bytes.fromhex("1B 45 00")
    assert size(Size.TALL) == bytes.fromhex("1D 21 01")
    assert size(Size.LARGE) == bytes.fromhex("1D 21 11")
    assert feed(3) == bytes.fromhex("1B 64 03")
    assert cut() == bytes.fromhex("1D 56 01")
    assert status_request(StatusRequest.PRINTER) == bytes.fromhex("10 04 01")
    assert status_request(StatusRequest.PAPER) == bytes.fromhex("10 04 04")


def test_chinese_text_is_gb18030_between_fs_and_fs_dot() -> None:
    assert text("92号汽油 ￥300.00") == bytes.fromhex(
        "1C 26" "39 32" + GB_HAO + GB_QI + GB_YOU + "20" + GB_YEN + "33 30 30 2E 30 30" "1C 2E 0A"
    )


def test_ascii_text_needs_no_chinese_mode() -> None:
    assert text("7.50") == b"7.50\n"


def test_the_yen_sign_alone_is_still_chinese() -> None:
    # python-escpos would print this as "?" (PROTOCOLS.md): it has no CJK ideograph.
    assert text("￥300.00") == bytes.fromhex("1C 26" + GB_YEN + "3330302E3030" "1C 2E 0A")


def test_qr_code_is_gs_paren_k_model_2() -> None:
    assert qr_code("https://a.cn/1", 6) == bytes.fromhex(
        "1D 28 6B 04 00 31 41 32 00"  # <165> model 2
        "1D 28 6B 03 00 31 43 06"  # <167> module 6 dots
        "1D 28 6B 03 00 31 45 31"  # <169> level M
        "1D 28 6B 11 00 31 50 30" + b"https://a.cn/1".hex() +  # <180> store 14 bytes
        "1D 28 6B 03 00 31 51 30"  # <181> print
    )


def test_qr_code_refuses_what_a_printer_cannot_hold() -> None:
    with pytest.raises(ValueError):
        qr_code("", 6)
    with pytest.raises(ValueError):
        qr_code("x" * 8000, 6)
    with pytest.raises(ValueError):
        qr_code("x", 17)


def test_a_document_in_bytes() -> None:
    doc = Document((Text("加油", Align.CENTER, bold=True, size=Size.TALL), Rule("="),
                    Pair("a", "b"), Feed(2)), cut=True)
    assert render(doc, 16) == bytes.fromhex(
        "1B 40"  # ESC @
        "1B 61 01 1B 45 01 1D 21 01"  # centre, bold, double height
        "1C 26" + GB_JIA + GB_YOU + "1C 2E 0A"
        "1B 61 00 1B 45 00 1D 21 00"  # back to normal
        + "3D" * 16 + "0A"
        "61" + "20" * 14 + "62 0A"
        "1B 64 02"
        "1B 64 04 1D 56 01"  # feed to the cutter, cut
    )


def test_no_cut_when_the_document_says_so() -> None:
    assert render(Document((Text("x"),), cut=False), 32) == bytes.fromhex("1B 40 78 0A")


def test_qr_line_is_centred() -> None:
    data = render(Document((QrCode("abc"),), cut=False), 32)
    assert data.startswith(bytes.fromhex("1B 40 1B 61 01 1D 28 6B"))
