"""ESC/POS bytes for the commands the station uses (Epson "ESC/POS Command Reference", with the
Chinese-model FS commands every GB18030 receipt printer sold in China implements).

Text goes out as GB18030 between FS & (Chinese character mode on) and FS . (off). python-escpos
picks an encoding per string and only chooses GB18030 when it sees a CJK ideograph, so "￥300.00"
alone would print "?" (PROTOCOLS.md, "Library facts"); these bytes are built here and sent raw.
"""

from __future__ import annotations

from enum import IntEnum

from .document import Align, Size

__all__ = [
    "CHINESE_OFF",
    "CHINESE_ON",
    "DLE",
    "ESC",
    "FS",
    "GS",
    "INIT",
    "LF",
    "QrErrorCorrection",
    "StatusRequest",
    "align",
    "bold",
    "cut",
    "feed",
    "qr_code",
    "size",
    "status_request",
    "text",
]

ESC = 0x1B
GS = 0x1D
FS = 0x1C
DLE = 0x10
EOT = 0x04
LF = b"\n"

INIT = bytes([ESC, 0x40])  # ESC @: initialize printer (clears modes, keeps the buffer)
CHINESE_ON = bytes([FS, 0x26])  # FS &: select Chinese character mode
CHINESE_OFF = bytes([FS, 0x2E])  # FS .: cancel Chinese character mode


class QrErrorCorrection(IntEnum):
    """GS ( k <Function 169> n: error correction level L, M, Q, H."""

    L = 48
    M = 49
    Q = 50
    H = 51


class StatusRequest(IntEnum):
    """DLE EOT n: real-time status transmission; the printer answers one byte."""

    PRINTER = 1
    OFFLINE_CAUSE = 2
    ERROR_CAUSE = 3
    PAPER = 4


def status_request(request: StatusRequest) -> bytes:
    return bytes([DLE, EOT, request])


def align(value: Align) -> bytes:
    return bytes([ESC, 0x61, value])  # ESC a n


def bold(on: bool) -> bytes:
    return bytes([ESC, 0x45, int(on)])  # ESC E n


def size(value: Size) -> bytes:
    # GS ! sizes both the ASCII and the Chinese font; ESC ! and FS ! each size only one.
    return bytes([GS, 0x21, value])  # GS ! n


def feed(lines: int) -> bytes:
    return bytes([ESC, 0x64, min(max(lines, 0), 255)])  # ESC d n: print and feed n lines


def cut() -> bytes:
    return bytes([GS, 0x56, 0x01])  # GS V 1: partial cut


def text(line: str) -> bytes:
    """One line of text and its line feed; Chinese mode only around lines that need it."""
    if line.isascii():
        return line.encode("ascii") + LF
    return CHINESE_ON + line.encode("gb18030") + CHINESE_OFF + LF


def _qr_function(fn: int, data: bytes) -> bytes:
    # GS ( k pL pH cn fn [parameters]: pL pH count the bytes after themselves; cn 49 = QR Code.
    length = len(data) + 2
    return bytes([GS, 0x28, 0x6B, length & 0xFF, length >> 8, 49, fn]) + data


MAX_QR_DATA = 7089 - 3
"""GS ( k <Function 180> carries at most 7089 bytes with its own 3."""


def qr_code(data: str, module: int, level: QrErrorCorrection = QrErrorCorrection.M) -> bytes:
    """Store and print a model 2 QR code of `module` dots per cell (GS ( k functions 165, 167,
    169, 180, 181)."""
    payload = data.encode("utf-8")
    if not 1 <= module <= 16:
        raise ValueError(f"QR module size {module} is not 1..16")
    if not payload or len(payload) > MAX_QR_DATA:
        raise ValueError(f"QR data of {len(payload)} bytes is not 1..{MAX_QR_DATA}")
    return (
        _qr_function(65, bytes([50, 0]))  # <165> model 2
        + _qr_function(67, bytes([module]))  # <167> module size
        + _qr_function(69, bytes([level]))  # <169> error correction
        + _qr_function(80, b"0" + payload)  # <180> store the data
        + _qr_function(81, b"0")  # <181> print it
    )
