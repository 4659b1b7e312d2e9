"""Gilbarco word codec: the captured frames of PROTOCOLS.md, checksum, digits, streaming decoders.

The vectors are the notes' bytes typed out, never produced by our encoder; round trips on top.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.gilbarco import (
    Block,
    BlockDecoder,
    GilbarcoProtocolError,
    PresetBlock,
    PriceChangeBlock,
    SpecialFunctionRequest,
    Transaction,
    decode_digits,
    decode_master_block,
    encode_digits,
    length_word,
    lrc,
)

# PROTOCOLS.md, "Transaction answer": pump 2, third hose, price 1070, volume 023360, money 025000.
TRANSACTION = bytes.fromhex(
    "FF F1 F8 EB E1 E0 E0 E2 F6 E2 F4 F7 E0 E7 E0 E1 F9 E0 E6 E3 E3 E2 E0"
    " FA E0 E0 E0 E5 E2 E0 FB EC F0"
)
# PROTOCOLS.md, "Special functions": the request for function 010 (which nozzle is lifted).
SPECIAL_010 = bytes.fromhex("FF E9 FE E0 E1 E0 FB EE F0")

CAPTURES = [TRANSACTION, SPECIAL_010]


def checksum_by_hand(frame: bytes) -> int:
    """The notes' rule spelled out: minus the sum of FF..FB, low nibble."""
    total = 0
    for word in frame[: frame.index(0xFB) + 1]:
        total += word
    return (0x100 - total % 0x100) % 16


# ------------------------------------------------------------------ captured frames


def test_captured_frames_have_the_checksum_the_notes_define() -> None:
    for frame in CAPTURES:
        assert frame[-2] == 0xE0 | checksum_by_hand(frame)
        assert lrc(frame[:-2]) == frame[-2] & 0x0F
        Block.from_bytes(frame)  # no error


def test_an_xor_checksum_disagrees_with_the_captures() -> None:
    for frame in CAPTURES:
        xor = 0
        for word in frame[:-2]:
            xor ^= word
        assert xor & 0x0F != frame[-2] & 0x0F


def test_captured_transaction_is_33_words() -> None:
    assert len(TRANSACTION) == 33
    block = Block.from_bytes(TRANSACTION)
    assert block.body == TRANSACTION[1:-3]
    assert block.checksum == 0xC


def test_captured_special_function_request() -> None:
    block = Block.from_bytes(SPECIAL_010)
    assert block.body == bytes.fromhex("E9 FE E0 E1 E0")
    # The data-length word: N = 7 words from FF through FB, (-7) & 0x0F = 9.
    assert block.length_ok
    assert length_word(7) == 0xE9
    assert decode_master_block(block) == SpecialFunctionRequest(10)
    assert SpecialFunctionRequest(10).to_block().to_bytes() == SPECIAL_010


def test_encoder_reproduces_the_captured_transaction() -> None:
    tx = Transaction.from_block(Block.from_bytes(TRANSACTION))
    assert tx.to_block().to_bytes() == TRANSACTION


# ------------------------------------------------------------------ digits


def test_digits_least_significant_first() -> None:
    assert encode_digits(1070, 4) == bytes.fromhex("E0 E7 E0 E1")
    assert encode_digits(23360, 6) == bytes.fromhex("E0 E6 E3 E3 E2 E0")
    assert decode_digits(bytes.fromhex("E0 E0 E0 E5 E2 E0")) == 25000
    assert decode_digits(b"") == 0
    for value, count in ((-1, 2), (100, 2)):
        with pytest.raises(ValueError):
            encode_digits(value, count)
    with pytest.raises(ValueError):
        encode_digits(0, 0)


@pytest.mark.parametrize(
    ("words", "reason"),
    [("E0 EA", "bad digit"), ("E1 F7", "expected a data word"), ("31", "expected a data word")],
)
def test_bad_digits(words: str, reason: str) -> None:
    with pytest.raises(GilbarcoProtocolError) as info:
        decode_digits(bytes.fromhex(words))
    assert info.value.reason == reason


@given(st.integers(0, 10**12 - 1))
def test_digits_round_trip(value: int) -> None:
    assert decode_digits(encode_digits(value, 12)) == value


# ------------------------------------------------------------------ blocks


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("FF F1 FB ED", "not a block"),
        ("FE F1 FB ED F0", "not a block"),
        ("FF F1 F0", "not a block"),
        ("FF F1 F7 E2 F0", "no checksum"),
        ("FF F1 FB F1 F0", "no checksum"),
        ("FF E9 FE E0 E1 E0 FB EF F0", "bad checksum"),
        ("FF E9 FE 31 E1 E0 FB EE F0", "not a word"),
        ("FF E9 FB E1 E0 FB EE F0", "not a word"),
    ],
)
def test_bad_blocks(frame: str, reason: str) -> None:
    with pytest.raises(GilbarcoProtocolError) as info:
        Block.from_bytes(bytes.fromhex(frame))
    assert info.value.reason == reason


def test_block_constructor_refuses_framing_words() -> None:
    for word in (0xFF, 0xF0, 0xFB, 0x12):
        with pytest.raises(ValueError):
            Block(bytes((0xE1, word)))


def test_master_blocks_carry_the_length_word() -> None:
    # FF len F2 F4 F8 + 6 digits + FB: 12 words, (-12) & 0x0F = 4.
    preset = PresetBlock("money", 10000).to_block()
    assert preset.to_bytes() == bytes.fromhex("FF E4 F2 F4 F8 E0 E0 E0 E0 E1 E0 FB E3 F0")
    assert preset.length_ok
    assert decode_master_block(preset) == PresetBlock("money", 10000)
    # With the hose: FF len F1 F4 F6 E1 F8 + 6 digits + FB = 14 words -> E2.
    volume = PresetBlock("volume", 2000, hose=2).to_block()
    assert volume.body[:6] == bytes.fromhex("E2 F1 F4 F6 E1 F8")
    assert decode_master_block(volume) == PresetBlock("volume", 2000, hose=2)
    # Price change: FF len F4 F6 E0 F7 + 4 digits + FB = 11 words -> E5.
    price = PriceChangeBlock(1, 750).to_block()
    assert price.to_bytes()[:6] == bytes.fromhex("FF E5 F4 F6 E0 F7")
    assert price.to_bytes()[6:10] == bytes.fromhex("E0 E5 E7 E0")
    assert decode_master_block(price) == PriceChangeBlock(1, 750)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("E1 FE E0 E1 E0", "bad data-length word"),
        ("EA FE E0 E1", "a special function has three digits"),
        ("EC F3", "unknown block"),
        ("EA F2 F8 E1", "preset: expected a price level"),
        ("EA F2 F4 F8", "preset: expected F8 and digits"),
        ("E9 F2 F4 F8 E0", "a preset of 0"),
        ("E8 F4 F7 E1 F7 E5", "price change: expected F6 hose F7 digits"),
    ],
)
def test_bad_master_blocks(body: str, reason: str) -> None:
    with pytest.raises(GilbarcoProtocolError) as info:
        decode_master_block(Block(bytes.fromhex(body)))
    assert info.value.reason == reason


def test_master_block_values_are_checked() -> None:
    with pytest.raises(ValueError):
        PresetBlock("money", 0)
    with pytest.raises(ValueError):
        PresetBlock("money", 10**6)
    with pytest.raises(ValueError):
        PresetBlock("volume", 100, hose=17)
    with pytest.raises(ValueError):
        PriceChangeBlock(1, 10000)
    with pytest.raises(ValueError):
        SpecialFunctionRequest(1000)


# ------------------------------------------------------------------ streaming decoder


def feed(decoder_factory: Callable[[], BlockDecoder], data: bytes, size: int) -> list[object]:
    decoder = decoder_factory()
    out: list[object] = []
    for i in range(0, len(data), size):
        out += decoder.feed(data[i : i + size])
    return out


def blocks_of(items: Sequence[object]) -> list[Block]:
    return [i for i in items if isinstance(i, Block)]


def errors_of(items: Sequence[object]) -> list[GilbarcoProtocolError]:
    return [i for i in items if isinstance(i, GilbarcoProtocolError)]


@pytest.mark.parametrize("frame", CAPTURES)
def test_decoder_whole_halves_bytes(frame: bytes) -> None:
    expected = [Block.from_bytes(frame)]
    assert BlockDecoder().feed(frame) == expected
    decoder = BlockDecoder()
    half = len(frame) // 2
    assert decoder.feed(frame[:half]) == []
    assert decoder.buffered == half
    assert decoder.feed(frame[half:]) == expected
    assert feed(BlockDecoder, frame, 1) == expected


def test_decoder_two_blocks_at_once() -> None:
    assert BlockDecoder().feed(TRANSACTION + SPECIAL_010) == [
        Block.from_bytes(TRANSACTION),
        Block.from_bytes(SPECIAL_010),
    ]


@pytest.mark.parametrize("chunk", [1, 2, 7, 100])
def test_decoder_garbage_before_between_and_after(chunk: int) -> None:
    garbage = bytes.fromhex("00 13 F0 E5 62")
    data = garbage + TRANSACTION + garbage + SPECIAL_010 + garbage
    out = feed(BlockDecoder, data, chunk)
    assert blocks_of(out) == [Block.from_bytes(TRANSACTION), Block.from_bytes(SPECIAL_010)]
    assert errors_of(out)
    assert all(e.reason == "garbage" for e in errors_of(out))


def test_decoder_bad_checksum_then_good_block() -> None:
    bad = bytearray(TRANSACTION)
    bad[-2] ^= 0x01
    out = BlockDecoder().feed(bytes(bad) + TRANSACTION)
    assert [e.reason for e in errors_of(out)] == ["bad checksum"]
    assert blocks_of(out) == [Block.from_bytes(TRANSACTION)]


def test_decoder_block_cut_short_by_the_next() -> None:
    out = BlockDecoder().feed(TRANSACTION[:10] + SPECIAL_010)
    assert [e.reason for e in errors_of(out)] == ["block cut short"]
    assert blocks_of(out) == [Block.from_bytes(SPECIAL_010)]


def test_decoder_non_word_inside_a_block() -> None:
    damaged = TRANSACTION[:5] + b"\x61" + TRANSACTION[6:]
    out = BlockDecoder().feed(damaged + SPECIAL_010)
    assert errors_of(out)[0].reason == "not a word"
    assert blocks_of(out) == [Block.from_bytes(SPECIAL_010)]


def test_decoder_bounds_its_buffer() -> None:
    decoder = BlockDecoder(max_words=16)
    out = decoder.feed(b"\xff" + b"\xe1" * 40)
    assert next(e.reason for e in errors_of(out)) == "block too long"
    assert decoder.buffered < 16
    assert decoder.feed(SPECIAL_010) == [Block.from_bytes(SPECIAL_010)]


@settings(max_examples=300)
@given(st.binary(max_size=300), st.integers(1, 40))
def test_any_bytes_give_blocks_or_protocol_errors(data: bytes, chunk: int) -> None:
    for item in feed(BlockDecoder, data, chunk):
        assert isinstance(item, Block | GilbarcoProtocolError)


@given(st.binary(max_size=60))
def test_any_block_body_gives_a_master_block_or_a_protocol_error(body: bytes) -> None:
    try:
        block = Block(body)
    except ValueError:
        return
    with contextlib.suppress(GilbarcoProtocolError):
        decode_master_block(block)
