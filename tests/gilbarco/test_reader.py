"""Reading one answer: the echo, then a status, running money, a block or hex records, fed
whole, in halves, byte by byte, with garbage; and any bytes give a reading, never an error."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.gilbarco import (
    AnswerKind,
    Block,
    DigitsMode,
    GilbarcoProtocolError,
    HexRecord,
    PumpStatus,
    PumpTotals,
    RunningMoney,
    SpecialFunctionAnswer,
    Transaction,
)
from drivers.gilbarco.reader import AnswerReader, Echo, Reading

from .test_answers import NOZZLE_RECORD, TOTALS_ONE_HOSE
from .test_codec import TRANSACTION

CASES = [
    (AnswerKind.STATUS, 2, b"\x72", PumpStatus.CALLING),
    (AnswerKind.RUNNING_MONEY, 2, bytes.fromhex("E0 E0 E0 E5 E2 E0"), RunningMoney(25000)),
    (AnswerKind.TRANSACTION, 2, TRANSACTION, Transaction.from_block(Block.from_bytes(TRANSACTION))),
    (AnswerKind.TOTALS, 2, TOTALS_ONE_HOSE,
     PumpTotals.from_block(Block.from_bytes(TOTALS_ONE_HOSE))),
    (AnswerKind.SPECIAL_FUNCTION, 2, NOZZLE_RECORD,
     SpecialFunctionAnswer((HexRecord.from_bytes(NOZZLE_RECORD),))),
]


def read(kind: AnswerKind, pump: int, data: bytes, size: int) -> list[Reading]:
    reader = AnswerReader(kind, pump, DigitsMode.STANDARD, others=(1, 3))
    return [reader.feed(data[i : i + size]) for i in range(0, len(data), size)]


@pytest.mark.parametrize(("kind", "pump", "wire", "answer"), CASES)
@pytest.mark.parametrize("size", [1, 2, 1000])
def test_answers_in_any_pieces(kind: AnswerKind, pump: int, wire: bytes, answer: object,
                               size: int) -> None:
    readings = read(kind, pump, wire, size)
    assert [r.answer for r in readings if r.complete] == [answer]
    assert readings[-1].complete and not any(r.bad or r.noise for r in readings)


@pytest.mark.parametrize(("kind", "pump", "wire", "answer"), CASES[2:])
def test_garbage_before_is_noise_and_after_is_noise(kind: AnswerKind, pump: int, wire: bytes,
                                                     answer: object) -> None:
    readings = read(kind, pump, b"\x00\x13" + wire + b"\x99", 1000)
    (reading,) = readings
    assert reading.complete and reading.answer == answer
    assert reading.noise and reading.bad is None


def test_late_status_of_another_pump_then_ours() -> None:
    (reading,) = read(AnswerKind.STATUS, 2, b"\x61\x63\x92", 10)
    assert reading.answer is PumpStatus.FUELLING
    assert [e.reason for e in reading.noise] == ["late answer", "late answer"]
    (reading,) = read(AnswerKind.STATUS, 2, b"\x64", 10)  # pump 4 is not on the line
    assert reading.bad is not None and reading.bad.reason == "status from another pump"


def test_a_bad_checksum_is_bad_and_what_follows_is_noise() -> None:
    bad = bytearray(TRANSACTION)
    bad[-2] ^= 1
    reader = AnswerReader(AnswerKind.TRANSACTION, 2, DigitsMode.STANDARD)
    first = reader.feed(bytes(bad))
    assert first.bad is not None and first.bad.reason == "bad checksum"
    second = reader.feed(TRANSACTION)
    assert second.noise and not second.complete


def test_the_echo_is_matched_by_content() -> None:
    echo = Echo(b"\x22")
    rest, stray = echo.take(b"\x01\x61\x22\xd2")
    assert (rest, stray, echo.done) == (b"\xd2", b"\x01\x61", True)
    block = Echo(bytes.fromhex("FF E9 FE E0 E1 E0 FB EE F0"))
    rest, stray = block.take(bytes.fromhex("FF E9 00 FF E9 FE E0"))
    assert (rest, stray, block.done) == (b"", bytes.fromhex("FF E9 00"), False)
    rest, stray = block.take(bytes.fromhex("E1 E0 FB EE F0 BA"))
    assert (rest, stray, block.done) == (b"\xba", b"", True)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(AnswerKind)), st.binary(max_size=120), st.integers(1, 30),
       st.sampled_from(list(DigitsMode)))
def test_any_bytes_give_readings_only(kind: AnswerKind, data: bytes, size: int,
                                      mode: DigitsMode) -> None:
    reader = AnswerReader(kind, 16, mode, others=(1, 2))
    for i in range(0, len(data), size):
        reading = reader.feed(data[i : i + size])
        assert all(isinstance(e, GilbarcoProtocolError) for e in reading.noise)
        assert reading.bad is None or isinstance(reading.bad, GilbarcoProtocolError)
    echo = Echo(data[:5] or b"\x01")
    for i in range(0, len(data), size):
        echo.take(data[i : i + size])
