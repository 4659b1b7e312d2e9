"""DART frame codec: vectors from captures, escaping, and the streaming decoder."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.dart import (
    Control,
    ControlFrame,
    DartProtocolError,
    DataFrame,
    FrameDecoder,
    RawTransaction,
    crc16_arc,
    decode_frame,
    from_bcd,
    to_bcd,
)
from drivers.dart.codec import MAX_FRAME_SIZE

# Captured frames (PROTOCOLS.md): CD1 "return status" and CD3 preset 99999999 to pump 0x51, TX# 5.
CD1_STATUS = bytes.fromhex("51 35 01 01 00 A2 50 03 FA")
CD3_PRESET = bytes.fromhex("51 35 03 04 99 99 99 99 04 89 03 FA")
POLL_51 = bytes.fromhex("51 20 FA")
EOT_52 = bytes.fromhex("52 73 FA")


def frames_of(items: Sequence[object]) -> list[object]:
    return [i for i in items if not isinstance(i, DartProtocolError)]


def errors_of(items: Sequence[object]) -> list[DartProtocolError]:
    return [i for i in items if isinstance(i, DartProtocolError)]


# ------------------------------------------------------------------ CRC and BCD


def test_crc16_arc_check_value() -> None:
    assert crc16_arc(b"123456789") == 0xBB3D
    assert crc16_arc(b"") == 0


def test_crc16_arc_of_captured_frames() -> None:
    assert crc16_arc(bytes.fromhex("51 35 01 01 00")) == 0x50A2
    assert crc16_arc(bytes.fromhex("51 35 03 04 99 99 99 99")) == 0x8904


def test_bcd() -> None:
    assert to_bcd(750, 3) == b"\x00\x07\x50"
    assert to_bcd(99999999, 4) == b"\x99\x99\x99\x99"
    assert to_bcd(0, 2) == b"\x00\x00"
    assert from_bcd(b"\x12\x34\x56") == 123456
    assert from_bcd(b"") == 0
    for bad in (-1, 1000000):
        with pytest.raises(ValueError):
            to_bcd(bad, 3)
    with pytest.raises(DartProtocolError) as info:
        from_bcd(b"\x12\x3a")
    assert info.value.reason == "bad BCD digit"
    with pytest.raises(DartProtocolError):
        from_bcd(b"\xa0")


# ------------------------------------------------------------------ frames


def test_decode_captured_frames() -> None:
    frame = decode_frame(CD1_STATUS)
    assert frame == DataFrame(0x51, 5, (RawTransaction(0x01, b"\x00"),))
    frame = decode_frame(CD3_PRESET)
    assert frame == DataFrame(0x51, 5, (RawTransaction(0x03, b"\x99\x99\x99\x99"),))


def test_encoder_reproduces_captured_frames() -> None:
    assert DataFrame(0x51, 5, (RawTransaction(0x01, b"\x00"),)).to_bytes() == CD1_STATUS
    assert DataFrame(0x51, 5, (RawTransaction(0x03, bytes(4 * [0x99])),)).to_bytes() == CD3_PRESET


def test_control_frames() -> None:
    assert ControlFrame.from_bytes(POLL_51) == ControlFrame(0x51, Control.POLL)
    assert ControlFrame.from_bytes(bytes.fromhex("6F C5 FA")) == ControlFrame(0x6F, Control.ACK, 5)
    assert ControlFrame.from_bytes(bytes.fromhex("50 EF FA")) == ControlFrame(
        0x50, Control.ACKPOLL, 15
    )
    assert ControlFrame(0x52, Control.EOT, 3).to_bytes() == EOT_52
    assert ControlFrame(0x50, Control.NAK, 1).to_bytes() == bytes.fromhex("50 51 FA")


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("4F 20 FA", "address out of range"),
        ("70 20 FA", "address out of range"),
        ("51 10 FA", "unknown control byte"),
        ("51 F0 FA", "unknown control byte"),
        ("51 21 FA", "POLL with a TX#"),
        ("51 35 01 01 00 A2 51 03 FA", "bad CRC"),
        ("51 75 01 01 00 A2 50 03 FA", "unknown control byte"),
        ("51 35 01 05 00 A0 90 03 FA", "transaction length overruns block"),
        ("51 35 01 01 00 A2 50 04 FA", "not a data frame"),
        ("4F 35 01 01 00 A2 50 03 FA", "address out of range"),
    ],
)
def test_bad_frames(frame: str, reason: str) -> None:
    with pytest.raises(DartProtocolError) as info:
        decode_frame(bytes.fromhex(frame))
    assert info.value.reason == reason
    assert info.value.data == bytes.fromhex(frame)


def test_constructors_validate() -> None:
    with pytest.raises(ValueError):
        ControlFrame(0x70, Control.POLL)
    with pytest.raises(ValueError):
        ControlFrame(0x51, Control.ACK, 16)
    with pytest.raises(ValueError):
        ControlFrame(0x51, Control.DATA, 1)
    with pytest.raises(ValueError):
        DataFrame(0x51, 1, ())
    with pytest.raises(ValueError):
        RawTransaction(1, bytes(256))


def _escape_case() -> tuple[bytes, bytes]:
    """A DC2 block whose CRC contains 0xFA: (unescaped body + CRC, transaction data)."""
    for address, txn, volume in itertools.product(range(0x50, 0x70), range(16), range(10000)):
        data = to_bcd(volume, 4) + to_bcd(volume * 7, 4)
        body = bytes((address, 0x30 | txn, 0x02, 8)) + data
        crc = crc16_arc(body)
        if 0xFA in (crc & 0xFF, crc >> 8):
            return body + bytes((crc & 0xFF, crc >> 8)), data
    raise AssertionError("no CRC with 0xFA found")


def test_dle_escapes_fa_in_crc() -> None:
    unescaped, data = _escape_case()
    # Escaping by hand, as the spec states it: DLE before every 0xFA, not counted in the CRC.
    wire = bytearray()
    for byte in unescaped:
        if byte == 0xFA:
            wire.append(0x10)
        wire.append(byte)
    wire += b"\x03\xfa"
    frame = DataFrame(unescaped[0], unescaped[1] & 0x0F, (RawTransaction(0x02, data),))
    assert frame.to_bytes() == bytes(wire)
    assert decode_frame(bytes(wire)) == frame
    for chunk in (1, 2, 3):
        decoder = FrameDecoder()
        out = []
        for i in range(0, len(wire), chunk):
            out += decoder.feed(bytes(wire[i : i + chunk]))
        assert out == [frame]


def test_dle_escapes_fa_in_data_and_keeps_plain_dle() -> None:
    frame = DataFrame(0x53, 2, (RawTransaction(0x80, b"\xfa\x10\x10\xfa\x10"),))
    wire = frame.to_bytes()
    assert b"\x10\xfa\x10\x10\x10\xfa\x10" in wire
    assert decode_frame(wire) == frame
    assert FrameDecoder().feed(wire) == [frame]


# ------------------------------------------------------------------ streaming decoder


def feed_in_chunks(data: bytes, size: int) -> list[object]:
    decoder = FrameDecoder()
    out: list[object] = []
    for i in range(0, len(data), size):
        out += decoder.feed(data[i : i + size])
    return out


@pytest.mark.parametrize("wire", [CD1_STATUS, CD3_PRESET, POLL_51, EOT_52])
def test_decoder_whole_halves_bytes(wire: bytes) -> None:
    expected = [decode_frame(wire)]
    assert FrameDecoder().feed(wire) == expected
    half = len(wire) // 2
    decoder = FrameDecoder()
    assert decoder.feed(wire[:half]) == []
    assert decoder.feed(wire[half:]) == expected
    assert feed_in_chunks(wire, 1) == expected


def test_decoder_two_frames_at_once() -> None:
    out = FrameDecoder().feed(CD1_STATUS + EOT_52 + CD3_PRESET)
    assert out == [decode_frame(CD1_STATUS), decode_frame(EOT_52), decode_frame(CD3_PRESET)]


@pytest.mark.parametrize("chunk", [1, 2, 5, 100])
def test_decoder_garbage_before_and_after(chunk: int) -> None:
    garbage = bytes.fromhex("00 FF 13 51 70")
    data = garbage + CD1_STATUS + bytes.fromhex("FA 33 FA") + POLL_51 + garbage
    out = feed_in_chunks(data, chunk)
    assert frames_of(out) == [decode_frame(CD1_STATUS), decode_frame(POLL_51)]
    assert errors_of(out)[0].reason == "garbage before frame"
    assert errors_of(out)[0].data == garbage


def test_decoder_bad_crc_then_good() -> None:
    bad = bytearray(CD1_STATUS)
    bad[4] = 0x04
    out = FrameDecoder().feed(bytes(bad) + CD3_PRESET)
    assert [e.reason for e in errors_of(out)] == ["bad CRC"]
    assert out[1:] == [decode_frame(CD3_PRESET)]


def test_decoder_resynchronises_on_lost_frame_end() -> None:
    # The end of the first frame was lost: the next frame must still come through.
    out = FrameDecoder().feed(CD1_STATUS[:5] + CD3_PRESET)
    assert frames_of(out) == [decode_frame(CD3_PRESET)]
    assert errors_of(out)[0].data == CD1_STATUS[:5]


def test_decoder_out_of_range_address_is_an_error() -> None:
    out = FrameDecoder().feed(bytes.fromhex("71 70 FA") + POLL_51)
    assert errors_of(out)[0].reason == "address out of range"
    assert frames_of(out) == [decode_frame(POLL_51)]


def test_decoder_buffer_is_bounded() -> None:
    decoder = FrameDecoder()
    out: list[object] = []
    for _ in range(100):
        out += decoder.feed(bytes(range(0x20, 0x70)))
        assert decoder.buffered <= MAX_FRAME_SIZE
    # One report per run of garbage, not one per chunk.
    assert len(out) == 1
    assert [e.reason for e in errors_of(out)] == ["no frame end"]
    assert frames_of(decoder.feed(bytes.fromhex("03 FA") + POLL_51)) == [decode_frame(POLL_51)]


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=2000)
    | st.lists(
        st.sampled_from([CD1_STATUS, CD3_PRESET, POLL_51, EOT_52, b"\x10", b"\xfa", b"\x03\xfa"])
        | st.binary(max_size=20),
        max_size=60,
    ).map(b"".join),
    cuts=st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=20),
)
def test_decoder_fuzz(data: bytes, cuts: list[int]) -> None:
    decoder = FrameDecoder()
    position = 0
    for size in itertools.cycle(cuts):
        if position >= len(data):
            break
        for item in decoder.feed(data[position : position + size]):
            assert isinstance(item, ControlFrame | DataFrame | DartProtocolError)
        position += size
        assert decoder.buffered <= MAX_FRAME_SIZE
