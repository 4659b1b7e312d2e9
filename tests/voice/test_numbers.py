"""Numbers as spoken Mandarin: the examples a station uses, and a round trip through an
independent reader of Chinese numerals for every other number."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.voice.numbers import digits, integer, litres, money, number, spoken_name

_DIGIT = {c: i for i, c in enumerate("零一二三四五六七八九")}
_SMALL = {"十": 10, "百": 100, "千": 1000}


def read_integer(text: str) -> int:
    """Chinese numerals back to an int, written from the reading rules, not from `integer`."""
    sign = -1 if text.startswith("负") else 1
    total = section = digit = 0
    for ch in text.removeprefix("负"):
        if ch in _DIGIT:
            digit = _DIGIT[ch]
        elif ch in _SMALL:
            section += (digit or 1) * _SMALL[ch]
            digit = 0
        elif ch == "万":
            total += (section + digit) * 10_000
            section = digit = 0
        elif ch == "亿":
            total = (total + section + digit) * 100_000_000
            section = digit = 0
        else:
            raise ValueError(f"not a numeral: {ch!r}")
    return sign * (total + section + digit)


def read_money(text: str) -> Decimal:
    sign = -1 if text.startswith("负") else 1
    rest = text.removeprefix("负")
    yuan, _, rest = rest.rpartition("元") if "元" in rest else ("", "", rest)
    jiao, _, rest = rest.partition("角") if "角" in rest else ("", "", rest)
    fen = rest.removesuffix("分").removeprefix("零")
    value = Decimal(read_integer(yuan) if yuan else 0)
    value += Decimal(read_integer(jiao) if jiao else 0) / 10
    value += Decimal(read_integer(fen) if fen else 0) / 100
    return sign * value


@pytest.mark.parametrize(("amount", "spoken"), [
    ("287.50", "二百八十七元五角"),
    ("300.00", "三百元"),
    ("0.05", "五分"),
    ("1005.30", "一千零五元三角"),
    ("10.05", "十元零五分"),
    ("12.34", "十二元三角四分"),
    ("0.50", "五角"),
    ("0.00", "零元"),
    ("100.07", "一百元零七分"),
    ("15.00", "十五元"),
    ("7.625", "七元六角三分"),  # rounded half-up to the fen, as receipts are
])
def test_money_is_said_in_yuan_jiao_fen(amount: str, spoken: str) -> None:
    assert money(Decimal(amount)) == spoken


@pytest.mark.parametrize(("volume", "spoken"), [
    ("40.25", "四十点二五升"),
    ("40.00", "四十升"),
    ("40.50", "四十点五升"),
    ("0.75", "零点七五升"),
    ("20.05", "二十点零五升"),
    ("3250", "三千二百五十升"),
])
def test_litres_are_said_with_dian(volume: str, spoken: str) -> None:
    assert litres(Decimal(volume)) == spoken


@pytest.mark.parametrize(("value", "spoken"), [
    (0, "零"), (3, "三"), (10, "十"), (15, "十五"), (20, "二十"), (105, "一百零五"),
    (110, "一百一十"), (1005, "一千零五"), (1050, "一千零五十"), (10000, "一万"),
    (10010, "一万零一十"), (100000, "十万"), (101000, "十万一千"), (1000000, "一百万"),
    (100010000, "一亿零一万"), (123456789, "一亿二千三百四十五万六千七百八十九"), (-10, "负十"),
])
def test_integers(value: int, spoken: str) -> None:
    assert integer(value) == spoken


@pytest.mark.parametrize(("name", "spoken"), [
    ("92号汽油", "九十二号汽油"),
    ("95号汽油", "九十五号汽油"),
    ("0号柴油", "零号柴油"),
    ("-10号柴油", "负十号柴油"),
    ("3号枪", "三号枪"),
    ("12号枪", "十二号枪"),
    ("007号", "零零七号"),
    ("E10乙醇汽油", "E十乙醇汽油"),
    ("柴油", "柴油"),
])
def test_names_are_said_as_people_say_them(name: str, spoken: str) -> None:
    assert spoken_name(name) == spoken


def test_other_forms() -> None:
    assert digits("0459") == "零四五九"
    assert number(Decimal("7.50")) == "七点五"
    assert number("-1.20") == "负一点二"


@pytest.mark.parametrize("bad", [7.5, True, None])
def test_floats_and_others_are_refused(bad: object) -> None:
    with pytest.raises(TypeError):
        money(bad)  # type: ignore[arg-type]


def test_out_of_range_and_garbage_are_refused() -> None:
    with pytest.raises(ValueError):
        integer(10**12)
    with pytest.raises(ValueError):
        money("NaN")
    with pytest.raises(ValueError):
        money("seven")
    with pytest.raises(ValueError):
        digits("12a")


@given(st.integers(min_value=-(10**12) + 1, max_value=10**12 - 1))
def test_every_integer_reads_back(value: int) -> None:
    spoken = integer(value)
    assert read_integer(spoken) == value
    assert not spoken.startswith("零") or value == 0
    assert "零零" not in spoken  # a run of zeros is said once


@given(st.decimals(min_value=Decimal("-99999999.99"), max_value=Decimal("99999999.99"),
                   places=2, allow_nan=False, allow_infinity=False))
def test_every_amount_reads_back(value: Decimal) -> None:
    assert read_money(money(value)) == value
