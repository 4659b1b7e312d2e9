"""Every DART frame seen on real buses (../shared/captures/dart-frames.txt) as a codec vector.

The file is read here, not copied: each line is `source | hex | what`, and `what` says what the
frame holds in the words of whoever captured it ("DC1 5 + DC3", "CD101 counter 1", "POLL").
Each frame must decode (CRC-16/ARC, DLE escaping) to the transactions its line names, in order,
re-encode to the same bytes, and go through the streaming decoder in one piece or byte by byte;
the three lines marked hand-edited carry a CRC pasted from another line and must be refused.
The example frames in PROTOCOLS.md's DART section are checked the same way.

Where the direction of a frame is not known (a CD1 and a DC1 with the same byte look alike),
every reading its line names must decode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from drivers.dart.codec import Control, ControlFrame, DataFrame, FrameDecoder, decode_frame
from drivers.dart.errors import DartProtocolError
from drivers.dart.transactions import (
    CD1,
    CD2,
    CD3,
    CD5,
    CD101,
    DC1,
    DC2,
    DC3,
    DC101,
    PumpCommand,
    PumpStatus,
    UnknownTransaction,
    decode_commands,
    decode_replies,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CAPTURES = SHARED / "captures" / "dart-frames.txt"
PROTOCOLS = SHARED / "PROTOCOLS.md"


@dataclass(frozen=True)
class Capture:
    line: int
    source: str
    wire: bytes
    what: str

    @property
    def hand_edited(self) -> bool:
        return "hand-edited" in self.what

    def __str__(self) -> str:
        return f"line {self.line}: {self.wire.hex(' ').upper()} ({self.what})"


def load_captures() -> list[Capture]:
    captures = []
    for number, text in enumerate(CAPTURES.read_text(encoding="utf-8").splitlines(), 1):
        if not text.strip() or text.startswith("#"):
            continue
        source, wire, what = (part.strip() for part in text.split("|", 2))
        captures.append(Capture(number, source, bytes.fromhex(wire), what))
    return captures


CAPTURED = load_captures()
GOOD = [c for c in CAPTURED if not c.hand_edited]
EDITED = [c for c in CAPTURED if c.hand_edited]


def test_the_capture_file_is_whole() -> None:
    # The notes speak of about a hundred frames, three of them hand-edited.
    assert len(CAPTURED) >= 90
    assert len(EDITED) == 3
    controls = [c for c in GOOD if len(c.wire) == 3]
    assert {Control.POLL, Control.EOT, Control.NAK, Control.ACK} <= {
        Control(c.wire[1] & 0xF0) for c in controls
    }


# ----------------------------------------------------------------------------- what a line says

_TOKEN = re.compile(r"\b(CD|DC)(\d+)\b(?: (\d+)\b)?")
_CD1_WORDS = {
    "RESET": PumpCommand.RESET,
    "AUTHORIZE": PumpCommand.AUTHORIZE,
    "return status": PumpCommand.RETURN_STATUS,
}


@dataclass(frozen=True)
class Named:
    """One transaction a capture line names: its code and, where given, its value."""

    code: str  # "DC1", "CD101", ...
    value: int | None


def named(what: str) -> tuple[list[Named], list[Named]]:
    """The commands and the replies a line names, in order (remarks in brackets left out)."""
    commands: list[Named] = []
    replies: list[Named] = []
    for kind, number, value in _TOKEN.findall(re.sub(r"\([^)]*\)", "", what)):
        item = Named(f"{kind}{number}", int(value) if value else None)
        (commands if kind == "CD" else replies).append(item)
    if not commands and not replies and "0x65 reply" in what:
        replies.append(Named("DC101", None))
    return commands, replies


def expected_control(what: str) -> Control | None:
    first = what.split()[0]
    return Control[first] if first in Control.__members__ else None


def check_commands(capture: Capture, frame: DataFrame, names: list[Named]) -> None:
    decoded = decode_commands(frame.transactions)
    assert [type(t).__name__ for t in decoded] == [n.code for n in names], capture
    for item, raw in zip(decoded, frame.transactions, strict=True):
        assert not isinstance(item, UnknownTransaction), capture
        assert item.to_raw() == raw, capture  # the typed form encodes back the same bytes
        if isinstance(item, CD1):
            for word, command in _CD1_WORDS.items():
                if f"CD1 {word}" in capture.what:
                    assert item.command is command, capture
        if isinstance(item, CD101) and (m := re.search(r"counter (\d+)", capture.what)):
            assert item.counter == int(m[1]), capture
        if isinstance(item, CD2) and (m := re.search(r"CD2 nozzle (\d+)", capture.what)):
            assert item.nozzles == (int(m[1]),), capture
        if isinstance(item, CD5) and "one price" in capture.what:
            assert len(item.prices) == 1, capture


def check_replies(capture: Capture, frame: DataFrame, names: list[Named]) -> None:
    decoded = decode_replies(frame.transactions)
    assert [type(t).__name__ for t in decoded] == [n.code for n in names], capture
    for item, raw, name in zip(decoded, frame.transactions, names, strict=True):
        assert not isinstance(item, UnknownTransaction), capture
        assert item.to_raw() == raw, capture  # the typed form encodes back the same bytes
        if isinstance(item, DC1) and name.value is not None:
            assert item.status == PumpStatus(name.value), capture
        if isinstance(item, DC3):
            check_nozzle(capture, item)
        if isinstance(item, DC101):
            assert item.short == ("LNG 6" in capture.what), capture
            if m := re.search(r"COUN (\d+)", capture.what):
                assert item.counter == int(m[1]), capture


def check_nozzle(capture: Capture, dc3: DC3) -> None:
    if m := re.search(r"DC3 nozzle ?(\d+)( out)?", capture.what):
        assert dc3.nozzle == int(m[1]), capture
        if m[2]:
            assert dc3.nozzle_out, capture
    if m := re.search(r"NOZIO ([0-9A-F]{2})", capture.what):
        nozio = int(m[1], 16)
        assert (dc3.nozzle, dc3.nozzle_out) == (nozio & 0x0F, bool(nozio & 0x10)), capture


@pytest.mark.parametrize("capture", GOOD, ids=str)
def test_captured_frame_decodes_to_what_it_holds(capture: Capture) -> None:
    frame = decode_frame(capture.wire)
    if len(capture.wire) == 3:
        assert isinstance(frame, ControlFrame)
        assert frame.control is expected_control(capture.what), capture
        assert frame.txn == capture.wire[1] & 0x0F
        assert frame.to_bytes() == capture.wire
        return
    assert isinstance(frame, DataFrame), capture
    assert frame.to_bytes() == capture.wire  # CRC and escaping reproduced by the encoder
    commands, replies = named(capture.what)
    if commands:
        check_commands(capture, frame, commands)
    if replies:
        check_replies(capture, frame, replies)
    if not commands and not replies:
        # Unannotated ("6:29:03"): a pump's answer if the line says so, else either reading.
        readings = [decode_replies] if "reply" in capture.what else [decode_replies,
                                                                     decode_commands]
        for decode in readings:
            assert all(not isinstance(t, UnknownTransaction) for t in decode(frame.transactions))


@pytest.mark.parametrize("capture", EDITED, ids=str)
def test_hand_edited_frame_is_refused(capture: Capture) -> None:
    with pytest.raises(DartProtocolError) as refused:
        decode_frame(capture.wire)
    assert refused.value.reason == "bad CRC"
    results = FrameDecoder().feed(capture.wire)
    assert [type(r) for r in results] == [DartProtocolError]


def _reference(captures: list[Capture]) -> list[object]:
    out: list[object] = []
    for capture in captures:
        try:
            out.append(decode_frame(capture.wire))
        except DartProtocolError as error:
            out.append(error.reason)
    return out


def _streamed(results: list[object]) -> list[object]:
    return [r.reason if isinstance(r, DartProtocolError) else r for r in results]


@pytest.mark.parametrize("chunk", [1, 2, 7, 64, 100_000])
def test_the_whole_file_as_one_stream(chunk: int) -> None:
    """All the captures back to back through one decoder, cut anywhere: every good frame comes
    out, in order, and each hand-edited one is a bad CRC that hides nothing after it."""
    stream = b"".join(c.wire for c in CAPTURED)
    decoder = FrameDecoder()
    results: list[object] = []
    for start in range(0, len(stream), chunk):
        results.extend(decoder.feed(stream[start : start + chunk]))
    assert _streamed(results) == _reference(CAPTURED)
    assert decoder.buffered == 0


def test_garbage_around_every_captured_frame() -> None:
    decoder = FrameDecoder()
    for capture in GOOD:
        results = decoder.feed(b"\x00\x13\x37" + capture.wire)
        assert results[-1] == decode_frame(capture.wire), capture
        assert all(isinstance(r, DartProtocolError) for r in results[:-1]), capture


def test_dle_escaped_crc_is_captured_and_decoded() -> None:
    escaped = [c for c in GOOD if "DLE-escaped" in c.what]
    assert escaped
    for capture in escaped:
        assert b"\x10\xfa\x03\xfa" in capture.wire
        frame = decode_frame(capture.wire)
        assert isinstance(frame, DataFrame)
        assert frame.to_bytes() == capture.wire


def test_amount_is_volume_times_price_where_a_block_holds_both() -> None:
    """DC2 is volume then amount (not the other way round): in every captured block with a
    filling and its price, the amount is the volume times the price at some decimal setting."""
    checked = 0
    for capture in GOOD:
        frame = decode_frame(capture.wire)
        if not isinstance(frame, DataFrame) or not named(capture.what)[1]:
            continue
        replies = decode_replies(frame.transactions)
        dc2 = [r for r in replies if isinstance(r, DC2) and r.volume]
        dc3 = [r for r in replies if isinstance(r, DC3)]
        if not dc2 or not dc3:
            continue
        product = Decimal(dc2[0].volume) * dc3[0].price
        shifts = [
            shift
            for shift in range(1, 6)
            if int(product.scaleb(-shift).quantize(Decimal(1), ROUND_HALF_UP)) == dc2[0].amount
        ]
        assert shifts, capture
        checked += 1
    assert checked >= 4


def test_the_milli_pump_capture() -> None:
    """1.211 L at 1.539 = 1.86 (PROTOCOLS.md): three volume and price decimals, two for money."""
    (capture,) = [c for c in GOOD if c.wire.startswith(bytes.fromhex("53 30 02 08 00 00 12 11"))]
    frame = decode_frame(capture.wire)
    assert isinstance(frame, DataFrame)
    dc2, dc3, dc1 = decode_replies(frame.transactions)
    assert dc2 == DC2(1211, 186) and isinstance(dc3, DC3) and dc3.price == 1539
    assert dc1 == DC1(PumpStatus.FILLING_COMPLETED)
    amount = (Decimal(1211).scaleb(-3) * Decimal(1539).scaleb(-3)).quantize(Decimal("0.01"))
    assert amount == Decimal(186).scaleb(-2)


# ----------------------------------------------------------------------------- PROTOCOLS.md

def protocol_frames() -> list[bytes]:
    """The hex frames quoted in PROTOCOLS.md's DART section (backquoted, ending in FA)."""
    text = PROTOCOLS.read_text(encoding="utf-8")
    start = text.index("## Wayne DART")
    section = text[start : text.index("\n## ", start + 1)]
    return [
        bytes.fromhex(m) for m in re.findall(r"`((?:[0-9A-F]{2} )+FA)`", section.replace("\n", " "))
    ]


def test_protocols_md_frames() -> None:
    frames = protocol_frames()
    assert len(frames) >= 3
    decoded = [decode_frame(f) for f in frames]
    assert all(isinstance(f, DataFrame) and f.to_bytes() == w for f, w in zip(decoded, frames,
                                                                            strict=True))
    by_wire = dict(zip(frames, decoded, strict=True))
    status = by_wire[bytes.fromhex("51 35 01 01 00 A2 50 03 FA")]
    preset = by_wire[bytes.fromhex("51 35 03 04 99 99 99 99 04 89 03 FA")]
    totals = by_wire[bytes.fromhex("50 36 65 06 01 00 00 01 06 34 8E 91 03 FA")]
    assert isinstance(status, DataFrame) and isinstance(preset, DataFrame)
    assert isinstance(totals, DataFrame)
    assert (status.address, status.txn) == (0x51, 5)
    assert decode_commands(status.transactions) == (CD1(PumpCommand.RETURN_STATUS),)
    assert decode_commands(preset.transactions) == (CD3(99_999_999),)
    # The 6-byte totals answer real pumps give (rev 2.11 has 16): counter 1, total 10634.
    (dc101,) = decode_replies(totals.transactions)
    assert dc101 == DC101(0x01, 10634, None, None) and dc101.short
    assert dc101.to_raw() == totals.transactions[0]
