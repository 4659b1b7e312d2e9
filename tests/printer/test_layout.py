"""Fitting text to the paper grid: Chinese takes two columns, ASCII one."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.printer import Align, Document, Pair, Rule, Size, Text, columns, layout, wrap
from drivers.printer.layout import clean

from .decoder import width


def test_columns() -> None:
    assert columns("92号汽油") == 8
    assert columns("￥300.00") == 8
    assert columns("，") == 2


def test_wrap_breaks_chinese_anywhere_and_words_at_spaces() -> None:
    assert wrap("乌鲁木齐北京路加油站", 8) == ["乌鲁木齐", "北京路加", "油站"]
    assert wrap("thank you for coming", 10) == ["thank you", "for coming"]
    assert wrap("abcdefghijkl", 5) == ["abcde", "fghij", "kl"]
    assert wrap("", 8) == [""]


def test_a_chinese_character_never_straddles_the_edge() -> None:
    assert wrap("a油油油", 4) == ["a油", "油油"]


@settings(deadline=None)  # a busy shared machine must not fail a test on time
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80),
       st.integers(min_value=2, max_value=48))
def test_wrap_fits_and_keeps_every_printable_character(text: str, span: int) -> None:
    cleaned = clean(text)
    lines = wrap(cleaned, span)
    assert all(columns(line) <= span for line in lines)
    assert "".join(lines).replace(" ", "") == cleaned.replace(" ", "")


def test_pair_fills_the_line_exactly() -> None:
    (row,) = layout(Document((Pair("金额", "￥300.00"),)), 32)
    assert isinstance(row, Text)
    assert row.text == "金额" + " " * 20 + "￥300.00"
    assert width(row.text) == 32


def test_pair_too_long_puts_the_value_under_the_label() -> None:
    rows = layout(Document((Pair("APP订单", "A" * 30),)), 32)
    assert [r.text for r in rows if isinstance(r, Text)] == ["APP订单", "  " + "A" * 30]


def test_double_width_halves_the_columns() -> None:
    rows = layout(Document((Text("乌鲁木齐北京路加油站", size=Size.LARGE),)), 32)
    assert [r.text for r in rows if isinstance(r, Text)] == ["乌鲁木齐北京路加", "油站"]


def test_rule_spans_the_paper() -> None:
    (row,) = layout(Document((Rule("="),)), 48)
    assert isinstance(row, Text) and row.text == "=" * 48
    (row,) = layout(Document((Rule("—"),)), 48)  # a wide character: half as many
    assert isinstance(row, Text) and row.text == "—" * 24


def test_control_characters_never_reach_the_printer() -> None:
    # An ESC in an order id would be obeyed as a command.
    (row,) = layout(Document((Text("A1\x1b@\x1d\x56\x00B", Align.LEFT),)), 32)
    assert isinstance(row, Text) and row.text == "A1@VB"


def test_too_narrow_paper_is_refused() -> None:
    with pytest.raises(ValueError):
        layout(Document(()), 8)
