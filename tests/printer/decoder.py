"""A small ESC/POS reader for the tests, written from the command reference rather than from
the station's encoder: it knows each command's length, keeps the print modes, and decodes text
as ASCII outside Chinese character mode and as GB18030 between FS & and FS .
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PrintedLine:
    text: str
    align: int  # ESC a n
    bold: bool  # ESC E n
    size: int  # GS ! n


@dataclass
class Printed:
    lines: list[PrintedLine] = field(default_factory=list)
    qr_codes: list[str] = field(default_factory=list)
    qr_settings: list[tuple[int, int]] = field(default_factory=list)  # (function, value)
    status_requests: list[int] = field(default_factory=list)
    feeds: list[int] = field(default_factory=list)
    cuts: int = 0
    inits: int = 0

    @property
    def texts(self) -> list[str]:
        return [line.text for line in self.lines]


class DecodeError(AssertionError):
    pass


def decode(data: bytes) -> Printed:
    out = Printed()
    align, bold, size, chinese = 0, False, 0, False
    text = ""
    stored_qr: str | None = None
    i = 0
    while i < len(data):
        b = data[i]
        if b == 0x1B:  # ESC
            cmd = data[i + 1]
            if cmd == 0x40:  # ESC @
                align, bold, size, chinese = 0, False, 0, False
                out.inits += 1
                i += 2
            elif cmd == 0x61:  # ESC a n
                align = data[i + 2]
                i += 3
            elif cmd == 0x45:  # ESC E n
                bold = bool(data[i + 2] & 1)
                i += 3
            elif cmd == 0x64:  # ESC d n
                out.feeds.append(data[i + 2])
                i += 3
            else:
                raise DecodeError(f"unknown ESC 0x{cmd:02X} at {i}")
        elif b == 0x1D:  # GS
            cmd = data[i + 1]
            if cmd == 0x21:  # GS ! n
                size = data[i + 2]
                i += 3
            elif cmd == 0x56:  # GS V m [n]
                m = data[i + 2]
                i += 4 if m in (65, 66) else 3
                out.cuts += 1
            elif cmd == 0x28 and data[i + 2] == 0x6B:  # GS ( k pL pH cn fn ...
                length = data[i + 3] | data[i + 4] << 8
                body = data[i + 5 : i + 5 + length]
                if len(body) != length or body[0] != 49:
                    raise DecodeError(f"bad GS ( k at {i}")
                fn = body[1]
                if fn == 80:  # store: m = '0', then the data
                    if body[2] != 0x30:
                        raise DecodeError("GS ( k <180> m must be 48")
                    stored_qr = body[3:].decode("utf-8")
                elif fn == 81:  # print the stored symbol
                    if stored_qr is None:
                        raise DecodeError("QR printed before data was stored")
                    out.qr_codes.append(stored_qr)
                else:
                    out.qr_settings.append((fn, body[2]))
                i += 5 + length
            else:
                raise DecodeError(f"unknown GS 0x{cmd:02X} at {i}")
        elif b == 0x1C:  # FS
            cmd = data[i + 1]
            if cmd == 0x26:
                chinese = True
            elif cmd == 0x2E:
                chinese = False
            else:
                raise DecodeError(f"unknown FS 0x{cmd:02X} at {i}")
            i += 2
        elif b == 0x10 and data[i + 1] == 0x04:  # DLE EOT n
            out.status_requests.append(data[i + 2])
            i += 3
        elif b == 0x0A:  # LF: print the line
            out.lines.append(PrintedLine(text, align, bold, size))
            text = ""
            i += 1
        elif chinese:
            end = i
            while end < len(data) and data[end] >= 0x20:
                end += 1
            text += data[i:end].decode("gb18030")  # strict: a broken sequence fails the test
            i = end
        elif 0x20 <= b < 0x7F:
            text += chr(b)
            i += 1
        else:
            raise DecodeError(f"byte 0x{b:02X} at {i} is neither a command nor ASCII text")
    if text:
        raise DecodeError(f"text without a line feed at the end: {text!r}")
    return out


def width(text: str) -> int:
    """Printed columns by Unicode's East Asian Width, independent of the layout code."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)
