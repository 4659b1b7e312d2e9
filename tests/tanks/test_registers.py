"""Register decoding against IEEE 754 and Modbus byte layouts, not against our own encoder."""

from __future__ import annotations

import struct
from decimal import Decimal
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.client import AsyncModbusTcpClient

from drivers.gauges import (
    Block,
    ProbeMap,
    Register,
    RegisterError,
    RegisterKind,
    StrappingTable,
    ValueType,
    WordOrder,
    plan_reads,
    words_of,
)

F32 = ValueType.FLOAT32
ABCD, CDAB = WordOrder.ABCD, WordOrder.CDAB


@pytest.mark.parametrize(
    ("words", "order", "expected"),
    [
        # IEEE 754 single precision: 1234.5 is 0x449A5000, 100.0 is 0x42C80000, -1 is 0xBF800000.
        ((0x449A, 0x5000), ABCD, Decimal("1234.5")),
        ((0x5000, 0x449A), CDAB, Decimal("1234.5")),
        ((0x42C8, 0x0000), ABCD, Decimal("100")),
        ((0x0000, 0x42C8), CDAB, Decimal("100")),
        ((0xBF80, 0x0000), ABCD, Decimal("-1")),
    ],
)
def test_float32_in_both_word_orders(words: tuple[int, int], order: WordOrder,
                                     expected: Decimal) -> None:
    assert Register(6, F32).decode(words, order) == expected


def test_float32_keeps_the_digits_a_float32_has() -> None:
    # 1069.943 is not exact in binary: 0x4485BE2D is the nearest float32 (1069.94299316...).
    assert Register(0, F32).decode((0x4485, 0xBE2D)) == Decimal("1069.943")


@pytest.mark.parametrize(
    ("kind", "words", "order", "scale", "expected"),
    [
        (ValueType.UINT16, (12345,), ABCD, "0.1", Decimal("1234.5")),
        (ValueType.INT16, (0xFFDD,), ABCD, "0.1", Decimal("-3.5")),  # -35 x 0.1 degrees
        (ValueType.UINT16, (0xFFDD,), ABCD, "1", Decimal(65501)),
        (ValueType.UINT32, (0x0001, 0xE240), ABCD, "0.01", Decimal("1234.56")),  # 123456
        (ValueType.UINT32, (0xE240, 0x0001), CDAB, "0.01", Decimal("1234.56")),
        (ValueType.INT32, (0xFFFF, 0xFFFE), ABCD, "1", Decimal(-2)),
        (ValueType.UINT32, (0x0000, 0x0064), ABCD, "1000", Decimal(100000)),  # m3 -> litres
    ],
)
def test_integers_with_scale(kind: ValueType, words: tuple[int, ...], order: WordOrder,
                             scale: str, expected: Decimal) -> None:
    assert Register(0, kind, Decimal(scale)).decode(words, order) == expected


def test_a_16_bit_value_ignores_the_word_order() -> None:
    assert Register(0, ValueType.INT16).decode((0x8000,), CDAB) == Decimal(-32768)


@pytest.mark.parametrize("words", [(0x7FC0, 0x0000), (0x7F80, 0x0000), (0xFF80, 0x0000)])
def test_nan_and_infinity_are_no_measurement(words: tuple[int, int]) -> None:
    with pytest.raises(RegisterError):
        Register(0, F32).decode(words)


def test_wrong_word_counts_are_refused() -> None:
    with pytest.raises(RegisterError):
        Register(0, F32).decode((0x449A,))
    with pytest.raises(RegisterError):
        Register(0, ValueType.UINT16).decode((0x10000,))


def test_registers_refuse_impossible_places() -> None:
    with pytest.raises(ValueError):
        Register(0xFFFF, F32)  # its second word would be past the last address
    with pytest.raises(ValueError):
        Register(0, scale=Decimal(0))


def test_encode_gives_the_ieee_words_in_the_configured_order() -> None:
    assert Register(0, F32).encode(Decimal("1234.5"), CDAB) == (0x5000, 0x449A)
    assert Register(0, ValueType.INT16, Decimal("0.1")).encode(Decimal("-3.5")) == (0xFFDD,)
    # Integer types round to the nearest step and clamp to their range.
    assert Register(0, ValueType.UINT16).encode(Decimal(-5)) == (0,)
    assert Register(0, ValueType.UINT16).encode(Decimal(70000)) == (0xFFFF,)


_PYMODBUS = {
    ValueType.INT16: AsyncModbusTcpClient.DATATYPE.INT16,
    ValueType.UINT16: AsyncModbusTcpClient.DATATYPE.UINT16,
    ValueType.INT32: AsyncModbusTcpClient.DATATYPE.INT32,
    ValueType.UINT32: AsyncModbusTcpClient.DATATYPE.UINT32,
}


@given(st.sampled_from(list(_PYMODBUS)), st.lists(st.integers(0, 0xFFFF), min_size=2,
                                                   max_size=2), st.sampled_from(list(WordOrder)))
def test_integers_agree_with_pymodbus(kind: ValueType, words: list[int], order: WordOrder) -> None:
    # pymodbus's converter is an independent implementation of the same layouts.
    words = words[: kind.words]
    pymodbus_order: Literal["big", "little"] = "little" if order is CDAB else "big"
    expected = AsyncModbusTcpClient.convert_from_registers(words, _PYMODBUS[kind],
                                                           word_order=pymodbus_order)
    assert isinstance(expected, int)
    assert Register(0, kind).decode(words, order) == Decimal(expected)


@given(st.floats(width=32, allow_nan=False, allow_infinity=False), st.sampled_from(list(WordOrder)))
def test_float32_round_trips(value: float, order: WordOrder) -> None:
    register = Register(0, F32)
    decoded = register.decode(register.encode(Decimal(repr(value)), order), order)
    (exact,) = struct.unpack(">f", struct.pack(">f", value))
    assert decoded == Decimal(format(exact, ".7g"))


def test_reads_cover_touching_registers_and_never_gaps() -> None:
    registers = [Register(0, F32), Register(2, F32), Register(4), Register(6, F32),
                 Register(20, ValueType.UINT32), Register(23)]
    assert plan_reads(registers) == (Block(0, 5), Block(6, 2), Block(20, 2), Block(23, 1))
    assert plan_reads([Register(a) for a in range(300)]) == (
        Block(0, 125), Block(125, 125), Block(250, 50))
    assert plan_reads([]) == ()


def test_words_of_names_a_register_that_was_not_read() -> None:
    with pytest.raises(RegisterError, match="register 7"):
        words_of({6: 1}, Register(6, F32))


def test_a_probe_decodes_its_image_and_converts_a_level_by_the_strapping_table() -> None:
    probe = ProbeMap(level=Register(0, ValueType.UINT32, Decimal("0.1")),
                     water=Register(2, scale=Decimal("0.1")),
                     strapping=StrappingTable.of([(0, 0), (1000, 8000), (2000, 20000)]))
    # Level 1500.0 mm is 15000 tenths (0x00003A98); water 12.3 mm is 123.
    values = probe.decode({0: 0x0000, 1: 0x3A98, 2: 123}, ABCD)
    assert (values.level_mm, values.volume_l, values.water_mm) == (
        Decimal("1500.0"), Decimal("14000"), Decimal("12.3"))
    assert values.temperature_c is None


def test_a_probe_needs_exactly_one_source_of_volume_and_distinct_registers() -> None:
    with pytest.raises(ValueError, match="volume register or a strapping table"):
        ProbeMap(level=Register(0))
    with pytest.raises(ValueError, match="both use register 1"):
        ProbeMap(level=Register(0, F32), volume=Register(1, F32))


def test_a_negative_level_is_a_probe_fault() -> None:
    probe = ProbeMap(level=Register(0, ValueType.INT16), volume=Register(1))
    with pytest.raises(RegisterError, match="negative"):
        probe.decode({0: 0xFFFF, 1: 0}, ABCD)


def test_register_kinds_use_the_modbus_function_codes() -> None:
    assert RegisterKind.HOLDING.function == 0x03
    assert RegisterKind.INPUT.function == 0x04
