"""Gilbarco answers: command and status bytes, transaction, totals, running money, hex records."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.gilbarco import (
    ALL_STOP,
    Block,
    Command,
    DigitsMode,
    GilbarcoProtocolError,
    HexRecord,
    HexRecordDecoder,
    HoseTotals,
    NozzleReport,
    PumpConfiguration,
    PumpStatus,
    PumpTotals,
    RunningMoney,
    SpecialFunctionAnswer,
    Transaction,
    command_byte,
    decode_status,
    status_byte,
)

from .test_codec import TRANSACTION, checksum_by_hand


def with_checksum(words: str) -> bytes:
    """``FF ... FB`` typed out, closed with the notes' checksum and F0."""
    frame = bytes.fromhex(words)
    return frame + bytes((0xE0 | checksum_by_hand(frame), 0xF0))


# Totals (PROTOCOLS.md, "Totals answer"), one hose typed out: first hose (E0), volume 12345678,
# money 00098765, level-1 price 0750, level-2 price 0780.
TOTALS_ONE_HOSE = bytes.fromhex(
    "FF F6 E0 F9 E8 E7 E6 E5 E4 E3 E2 E1 FA E5 E6 E7 E8 E9 E0 E0 E0"
    " F4 E0 E5 E7 E0 F5 E0 E8 E7 E0 FB E2 F0"
)

# The captured sale in the 8-digit mode: price 6 digits, volume and money 8 (39 words).
TRANSACTION_8 = with_checksum(
    "FF F1 F8 EB E1 E0 E0 E2 F6 E2 F4 F7 E0 E7 E0 E1 E0 E0"
    " F9 E0 E6 E3 E3 E2 E0 E0 E0 FA E0 E0 E0 E5 E2 E0 E0 E0 FB"
)


# ------------------------------------------------------------------ commands and status


def test_command_bytes() -> None:
    assert command_byte(Command.STATUS, 1) == 0x01
    assert command_byte(Command.AUTHORIZE, 2) == 0x12
    assert command_byte(Command.DATA_FOLLOWS, 15) == 0x2F
    assert command_byte(Command.STOP, 16) == 0x30  # 16 is sent as 0
    assert command_byte(Command.TRANSACTION, 3) == 0x43
    assert command_byte(Command.TOTALS, 16) == 0x50
    assert command_byte(Command.RUNNING_MONEY, 9) == 0x69
    assert ALL_STOP == 0xFC
    for pump in (0, 17):
        with pytest.raises(ValueError):
            command_byte(Command.STATUS, pump)


def test_status_bytes() -> None:
    assert decode_status(0x62, 2) is PumpStatus.IDLE
    assert decode_status(0x70, 16) is PumpStatus.CALLING
    assert decode_status(0x93, 3) is PumpStatus.FUELLING
    assert decode_status(0x01, 1) is PumpStatus.DATA_ERROR
    assert decode_status(0xD5, 5) is PumpStatus.READY_FOR_DATA
    assert status_byte(PumpStatus.STOPPED, 16) == 0xC0
    assert PumpStatus.END_OF_SALE_A.ends_sale and PumpStatus.END_OF_SALE_B.ends_sale
    assert not PumpStatus.FUELLING.ends_sale


@pytest.mark.parametrize(
    ("byte", "pump", "reason"),
    [(0x61, 2, "status from another pump"), (0x32, 2, "unknown status"),
     (0xE2, 2, "unknown status"), (0x60, 1, "status from another pump")],
)
def test_bad_status_bytes(byte: int, pump: int, reason: str) -> None:
    with pytest.raises(GilbarcoProtocolError) as info:
        decode_status(byte, pump)
    assert info.value.reason == reason


# ------------------------------------------------------------------ transaction


def test_captured_transaction_fields() -> None:
    tx = Transaction.from_block(Block.from_bytes(TRANSACTION))
    assert (tx.pump, tx.hose, tx.price, tx.volume, tx.money) == (2, 3, 1070, 23360, 25000)
    assert tx.price_level == 1
    assert tx.header == bytes.fromhex("F1 F8 EB")
    assert tx.unknown == bytes.fromhex("E0 E0 E2")


def test_eight_digit_transaction() -> None:
    assert len(TRANSACTION_8) == 39
    tx = Transaction.from_block(Block.from_bytes(TRANSACTION_8), DigitsMode.EIGHT)
    assert (tx.pump, tx.hose, tx.price, tx.volume, tx.money) == (2, 3, 1070, 23360, 25000)
    assert tx.to_block().to_bytes() == TRANSACTION_8
    with pytest.raises(GilbarcoProtocolError) as info:
        Transaction.from_block(Block.from_bytes(TRANSACTION_8))
    assert info.value.reason == "a transaction is 33 words in standard mode"
    with pytest.raises(GilbarcoProtocolError):
        Transaction.from_block(Block.from_bytes(TRANSACTION), DigitsMode.EIGHT)


@pytest.mark.parametrize(
    ("index", "word", "reason"),
    [
        (8, 0xF7, "hose: expected 0xF6"),
        (10, 0xF1, "price level: expected 0xF4 or 0xF5"),
        (11, 0xF9, "price: expected 0xF7"),
        (16, 0xFA, "volume: expected 0xF9"),
        (23, 0xF9, "money: expected 0xFA"),
        (13, 0xEC, "bad digit"),
    ],
)
def test_bad_transactions(index: int, word: int, reason: str) -> None:
    frame = bytearray(TRANSACTION[:-2])
    frame[index] = word
    frame[-1:] = b"\xfb"
    damaged = with_checksum(bytes(frame).hex(" "))
    with pytest.raises(GilbarcoProtocolError) as info:
        Transaction.from_block(Block.from_bytes(damaged))
    assert info.value.reason == reason


def test_transaction_level_two_and_pump_sixteen() -> None:
    tx = Transaction(pump=16, hose=1, price=780, volume=100, money=78, price_level=2)
    block = tx.to_block()
    assert block.body[3] == 0xEF and block.body[9] == 0xF5
    assert Transaction.from_block(block) == tx


# ------------------------------------------------------------------ totals


def test_totals_vector() -> None:
    assert len(TOTALS_ONE_HOSE) == 1 + 30 + 3
    totals = PumpTotals.from_block(Block.from_bytes(TOTALS_ONE_HOSE))
    assert totals.hoses == (HoseTotals(1, 12345678, 98765, 750, 780),)
    assert totals.hose(1) == totals.hoses[0] and totals.hose(2) is None
    assert totals.to_block().to_bytes() == TOTALS_ONE_HOSE


def test_totals_several_hoses_and_eight_digit_mode() -> None:
    hoses = (HoseTotals(1, 10**8 - 1, 5, 750, 780), HoseTotals(3, 0, 0, 812, 830))
    for mode, record in ((DigitsMode.STANDARD, 30), (DigitsMode.EIGHT, 42)):
        block = PumpTotals(hoses, mode).to_block()
        assert len(block.body) == 2 * record
        assert PumpTotals.from_block(Block.from_bytes(block.to_bytes()), mode).hoses == hoses
    with pytest.raises(ValueError):
        PumpTotals((HoseTotals(1, 10**8, 0, 1, 1),)).to_block()  # totals wrap at 10**8
    big = PumpTotals((HoseTotals(2, 10**12 - 1, 10**11, 999999, 1),), DigitsMode.EIGHT)
    assert PumpTotals.from_block(big.to_block(), DigitsMode.EIGHT) == big


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("FF FB", "totals are 30-word records per hose in standard mode"),
        ("FF F6 E0 F9 FB", "totals are 30-word records per hose in standard mode"),
    ],
)
def test_bad_totals(frame: str, reason: str) -> None:
    with pytest.raises(GilbarcoProtocolError) as info:
        PumpTotals.from_block(Block.from_bytes(with_checksum(frame)))
    assert info.value.reason == reason


def test_totals_record_markers_and_duplicates() -> None:
    body = bytearray(TOTALS_ONE_HOSE[1:-3])
    body[11] = 0xF9  # FA expected
    with pytest.raises(GilbarcoProtocolError) as info:
        PumpTotals.from_block(Block(bytes(body)))
    assert info.value.reason == "totals record: expected 0xFA"
    twice = Block(TOTALS_ONE_HOSE[1:-3] * 2)
    with pytest.raises(GilbarcoProtocolError) as info:
        PumpTotals.from_block(twice)
    assert info.value.reason == "a hose twice in the totals"


# ------------------------------------------------------------------ running money


def test_running_money() -> None:
    assert RunningMoney.from_bytes(bytes.fromhex("E0 E0 E0 E5 E2 E0")).money == 25000
    eight = RunningMoney.from_bytes(bytes.fromhex("E1 E0 E0 E0 E0 E0 E0 E1"), DigitsMode.EIGHT)
    assert eight.money == 10000001
    assert RunningMoney(1234).to_bytes() == bytes.fromhex("E4 E3 E2 E1 E0 E0")
    with pytest.raises(GilbarcoProtocolError) as info:
        RunningMoney.from_bytes(bytes.fromhex("E0 E0 E0"))
    assert info.value.reason == "running money is 6 digit words"


# ------------------------------------------------------------------ special functions

# ":010200100001EC" CR LF with bit 7 set: one data byte (hose 1), pump 2, function 010, last.
NOZZLE_RECORD = bytes(ord(c) | 0x80 for c in ":010200100001EC\r\n")


def test_hex_record_vector() -> None:
    record = HexRecord.from_bytes(NOZZLE_RECORD)
    assert record == HexRecord(pump=2, function=10, blocks_left=0, data=b"\x01")
    assert record.to_bytes() == NOZZLE_RECORD
    answer = SpecialFunctionAnswer((record,))
    assert NozzleReport.from_answer(answer) == NozzleReport(1)
    none = SpecialFunctionAnswer((HexRecord(2, 10, 0, b"\x00"),))
    assert NozzleReport.from_answer(none).hose is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (":010200100001ED\r\n", "bad record checksum"),
        (":010200100001E\r\n", "not hex digits"),
        (":0102001000G1EC\r\n", "not hex digits"),
        (":020200100001EB\r\n", "record count does not match its data"),
        (":0102001A0001E2\r\n", "function is not decimal"),
        (":010200100001EC\r", "not a hex record"),
    ],
)
def test_bad_hex_records(text: str, reason: str) -> None:
    with pytest.raises(GilbarcoProtocolError) as info:
        HexRecord.from_bytes(bytes(ord(c) | 0x80 for c in text))
    assert info.value.reason == reason


def test_multi_record_answer_and_configuration() -> None:
    config = PumpConfiguration(volume_decimals=3, money_decimals=2, price_decimals=3,
                               money_digits=8)
    answer = SpecialFunctionAnswer.of(5, 1, config.data() * 4, per_record=8)
    assert [r.blocks_left for r in answer.records] == [2, 1, 0]
    assert PumpConfiguration.from_answer(answer) == config
    with pytest.raises(GilbarcoProtocolError):
        PumpConfiguration.from_answer(SpecialFunctionAnswer.of(5, 1, b"\x00\x07\x02\x02\x06"))
    with pytest.raises(GilbarcoProtocolError):
        PumpConfiguration.from_answer(SpecialFunctionAnswer.of(5, 1, b"\x00\x02"))


def feed_records(data: bytes, size: int) -> list[object]:
    decoder = HexRecordDecoder()
    out: list[object] = []
    for i in range(0, len(data), size):
        out += decoder.feed(data[i : i + size])
    return out


def records_of(items: Sequence[object]) -> list[HexRecord]:
    return [i for i in items if isinstance(i, HexRecord)]


@pytest.mark.parametrize("chunk", [1, 2, 9, 200])
def test_record_decoder_in_pieces_with_garbage(chunk: int) -> None:
    good = HexRecord.from_bytes(NOZZLE_RECORD)
    bad = bytes(ord(c) | 0x80 for c in ":010200100001ED\r\n")
    data = b"\x00\x12" + NOZZLE_RECORD + b"\xe0" + bad + NOZZLE_RECORD[:5] + NOZZLE_RECORD
    out = feed_records(data, chunk)
    assert records_of(out) == [good, good]
    reasons = {e.reason for e in out if isinstance(e, GilbarcoProtocolError)}
    assert reasons == {"garbage", "bad record checksum", "record cut short"}


@settings(max_examples=300)
@given(st.binary(max_size=300), st.integers(1, 40))
def test_any_bytes_give_records_or_protocol_errors(data: bytes, chunk: int) -> None:
    for item in feed_records(data, chunk):
        assert isinstance(item, HexRecord | GilbarcoProtocolError)


@settings(max_examples=300)
@given(st.binary(max_size=120), st.sampled_from(list(DigitsMode)))
def test_any_block_gives_an_answer_or_a_protocol_error(body: bytes, mode: DigitsMode) -> None:
    try:
        block = Block(body)
    except ValueError:
        return
    for decode in (Transaction.from_block, PumpTotals.from_block):
        with contextlib.suppress(GilbarcoProtocolError):
            decode(block, mode)


@given(st.binary(max_size=12), st.sampled_from(list(DigitsMode)))
def test_any_words_give_running_money_or_a_protocol_error(words: bytes, mode: DigitsMode) -> None:
    with contextlib.suppress(GilbarcoProtocolError):
        RunningMoney.from_bytes(words, mode)
