"""Typed DART transactions: hand-written byte vectors (TRANS LNG DATA) and round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.fuelling import Decimals
from drivers.dart import (
    CD1,
    CD2,
    CD3,
    CD4,
    CD5,
    CD101,
    DC1,
    DC2,
    DC3,
    DC5,
    DC7,
    DC9,
    DC101,
    DC103,
    AlarmCode,
    DartProtocolError,
    PumpCommand,
    PumpStatus,
    RawTransaction,
    UnknownTransaction,
    decode_commands,
    decode_replies,
)


def raw(hex_text: str) -> RawTransaction:
    data = bytes.fromhex(hex_text)
    assert data[1] == len(data) - 2, "vector LNG must match its data"
    return RawTransaction(data[0], data[2:])


DC7_VECTOR = (
    "07 34"
    + " 00" * 22
    + " 02 02 02"  # DPVOL DPAMO DPUNP
    + " 00" * 5
    + " 00 99 99 00"  # MAMO 9999.00
    + " 00" * 3
    + " 01 02 00 00 00 00 00 00 00 00 00 00 00 00 00"  # grades of nozzles 1..15
)

COMMAND_VECTORS = [
    ("01 01 06", CD1(PumpCommand.AUTHORIZE)),
    ("01 01 00", CD1(PumpCommand.RETURN_STATUS)),
    ("01 01 0F", CD1(PumpCommand.RETURN_PRICES)),
    ("02 02 01 03", CD2((1, 3))),
    ("03 04 00 00 20 00", CD3(2000)),
    ("04 04 00 01 00 00", CD4(10000)),
    ("05 06 00 07 50 00 08 12", CD5((750, 812))),
    ("65 01 09", CD101(0x09)),
    ("65 01 11", CD101(0x11)),
]

REPLY_VECTORS = [
    ("01 01 04", DC1(PumpStatus.FILLING)),
    ("01 01 08", DC1(PumpStatus.SUSPENDED)),
    ("02 08 00 00 40 00 00 00 30 00", DC2(4000, 3000)),
    ("03 04 00 07 50 11", DC3(750, 1, True)),
    ("03 04 00 07 62 02", DC3(762, 2, False)),
    ("05 01 09", DC5(AlarmCode.EMERGENCY_STOP)),
    ("09 05 12 34 56 78 90", DC9(1234567890)),
    (
        "65 10 01 00 01 23 45 67 00 00 00 00 01 00 00 00 00 02",
        DC101(0x01, 1234567, 1, 2),
    ),
    # The 6-byte answer real pumps give to CD101 (PROTOCOLS.md): counter 1, total 10634.
    ("65 06 01 00 00 01 06 34", DC101(0x01, 10634, None, None)),
    ("65 06 19 99 99 99 99 99", DC101(0x19, 9_999_999_999, None, None)),
    ("67 06 00 07 50 00 08 12", DC103((750, 812))),
    (DC7_VECTOR, DC7(2, 2, 2, 999900, (1, 2))),
]


@pytest.mark.parametrize(("vector", "command"), COMMAND_VECTORS)
def test_command_vectors(vector: str, command: object) -> None:
    assert decode_commands([raw(vector)]) == (command,)
    assert command.to_raw() == raw(vector)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("vector", "reply"), REPLY_VECTORS)
def test_reply_vectors(vector: str, reply: object) -> None:
    assert decode_replies([raw(vector)]) == (reply,)
    assert reply.to_raw() == raw(vector)  # type: ignore[attr-defined]


def test_several_replies_in_one_block() -> None:
    replies = decode_replies([raw("01 01 04"), raw("03 04 00 07 50 11"), raw("02 08" + " 00" * 8)])
    assert replies == (DC1(PumpStatus.FILLING), DC3(750, 1, True), DC2(0, 0))


def test_unknown_transactions_are_kept() -> None:
    assert decode_replies([raw("0E 02 AB CD")]) == (UnknownTransaction(0x0E, b"\xab\xcd"),)
    assert decode_commands([raw("09 01 00")]) == (UnknownTransaction(0x09, b"\x00"),)
    assert UnknownTransaction(0x0E, b"\xab").to_raw() == raw("0E 01 AB")


def test_dc7_pads_grades_and_reports_alarm_codes() -> None:
    assert DC7(2, 2, 3, 0, (4,)).grades == (4,) + (0,) * 14
    assert DC7(2, 2, 3, 0, (4,)).grade(1) == 4
    assert DC7(2, 2, 3, 0, (4,)).grade(2) is None
    assert DC5(0x09).code is AlarmCode.EMERGENCY_STOP
    assert DC5(0x42).code is None


def test_dc7_carries_the_pumps_own_decimals() -> None:
    """DPVOL, DPAMO, DPUNP (bytes 22..24): 3 volume and price decimals, 2 for money, as the
    pump that sold 1.211 L at 1.539 for 1.86 (PROTOCOLS.md)."""
    vector = "07 34" + " 00" * 22 + " 03 02 03" + " 00" * 5 + " 00 99 99 99" + " 00" * 3 + (
        " 5C 5F" + " 00" * 13
    )
    (dc7,) = decode_replies([raw(vector)])
    assert isinstance(dc7, DC7)
    assert dc7.decimals == Decimals(volume=3, amount=2, price=3)
    assert (dc7.volume_decimals, dc7.amount_decimals, dc7.price_decimals) == (3, 2, 3)
    assert dc7.max_amount == 999_999
    assert (dc7.grade(1), dc7.grade(2), dc7.grade(3)) == (92, 95, None)
    assert dc7.to_raw() == raw(vector)


def test_dc101_short_form() -> None:
    short = DC101(0x01, 10634, None, None)
    assert short.short and not DC101(0x01, 10634).short
    assert short.to_raw() == raw("65 06 01 00 00 01 06 34")
    assert DC101(0x01, 10634).to_raw() == raw("65 10 01 00 00 01 06 34" + " 00" * 10)


def test_dc9_digits_keep_leading_zeros() -> None:
    (dc9,) = decode_replies([raw("09 05 00 12 34 56 78")])
    assert dc9 == DC9(12345678)
    assert isinstance(dc9, DC9) and dc9.digits == "0012345678"


def test_status_8_and_the_rev_211_commands() -> None:
    """Suspended (DC1 8) and CD1 0D/0E/0F decode as such (rev 2.11's optional transactions)."""
    assert decode_replies([raw("01 01 08")]) == (DC1(PumpStatus.SUSPENDED),)
    assert decode_commands([raw("01 01 0D"), raw("01 01 0E"), raw("01 01 0F")]) == (
        CD1(PumpCommand.SUSPEND),
        CD1(PumpCommand.RESUME),
        CD1(PumpCommand.RETURN_PRICES),
    )


@pytest.mark.parametrize(
    ("vector", "replies"),
    [
        ("01 02 04 00", True),  # DC1 is one byte
        ("01 01 03", True),  # there is no status 3
        ("02 04 00 00 00 00", True),
        ("03 04 00 0A 50 11", True),  # bad BCD
        ("65 10 0A" + " 00" * 15, True),  # no counter 0x0A
        ("65 06 0A 00 00 01 06 34", True),  # nor in the short form
        ("65 0B 01" + " 00" * 10, True),  # neither 16 nor 6 bytes
        ("65 05 01 00 00 01 06", True),
        ("65 06 01 00 00 01 0A 34", True),  # bad BCD in the short form
        ("67 04 00 07 50 00", True),  # not whole 3-byte groups
        ("67 00", True),
        ("07 05 00 00 00 00 00", True),
        ("01 01 01", False),  # CD1 has no command 01
        ("02 01 10", False),  # nozzle 16
        ("02 00", False),
        ("03 03 00 00 00", False),
        ("05 30" + " 00" * 48, False),  # 16 prices
    ],
)
def test_malformed_transactions(vector: str, replies: bool) -> None:
    decode = decode_replies if replies else decode_commands
    with pytest.raises(DartProtocolError):
        decode([raw(vector)])


@pytest.mark.parametrize(
    "make",
    [
        lambda: CD2(()),
        lambda: CD2((0,)),
        lambda: CD2((16,)),
        lambda: CD3(100_000_000),
        lambda: CD4(-1),
        lambda: CD5(()),
        lambda: CD5((1_000_000,)),
        lambda: CD101(0x0A),
        lambda: CD1(0x01),  # type: ignore[arg-type]
        lambda: DC1(3),  # type: ignore[arg-type]
        lambda: DC3(750, 16, True),
        lambda: DC7(9, 2, 2, 0, ()),
        lambda: DC7(2, 2, 2, 0, (1,) * 16),
        lambda: DC9(10**10),
        lambda: DC101(0x01, 10**10),
        lambda: DC101(0x01, 1, None, 0),  # both extra totals or neither
        lambda: DC101(0x01, 1, 0, None),
        lambda: DC7(2, 2, 2, 0, (1,)).grade(16),
        lambda: DC5(256),
    ],
)
def test_constructors_check_ranges(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


nozzles = st.integers(1, 15)
prices = st.lists(st.integers(0, 999_999), min_size=1, max_size=15).map(tuple)
eight = st.integers(0, 99_999_999)
ten = st.integers(0, 9_999_999_999)
counters = st.sampled_from([*range(1, 10), *range(0x11, 0x1A)])

commands = st.one_of(
    st.builds(CD1, st.sampled_from(PumpCommand)),
    st.builds(CD2, st.lists(nozzles, min_size=1, max_size=15).map(tuple)),
    st.builds(CD3, eight),
    st.builds(CD4, eight),
    st.builds(CD5, prices),
    st.builds(CD101, counters),
)
replies = st.one_of(
    st.builds(DC1, st.sampled_from(PumpStatus)),
    st.builds(DC2, eight, eight),
    st.builds(DC3, st.integers(0, 999_999), st.integers(0, 15), st.booleans()),
    st.builds(DC5, st.integers(0, 255)),
    st.builds(
        DC7,
        st.integers(0, 8),
        st.integers(0, 8),
        st.integers(0, 8),
        eight,
        st.lists(st.integers(0, 255), max_size=15).map(tuple),
    ),
    st.builds(DC9, ten),
    st.builds(DC101, counters, ten, ten, ten),
    st.builds(DC101, counters, ten, st.none(), st.none()),
    st.builds(DC103, prices),
)


@given(st.lists(commands, min_size=1, max_size=5))
def test_command_round_trip(items: list[object]) -> None:
    raws = [i.to_raw() for i in items]  # type: ignore[attr-defined]
    assert decode_commands(raws) == tuple(items)


@given(st.lists(replies, min_size=1, max_size=5))
def test_reply_round_trip(items: list[object]) -> None:
    raws = [i.to_raw() for i in items]  # type: ignore[attr-defined]
    assert decode_replies(raws) == tuple(items)


@given(st.integers(0, 255), st.binary(max_size=64))
def test_any_transaction_decodes_or_is_a_protocol_error(trans: int, data: bytes) -> None:
    """Whatever bytes a block carries, each decoder gives a transaction or our protocol error."""
    for decode in (decode_replies, decode_commands):
        try:
            (item,) = decode([RawTransaction(trans, data)])
        except DartProtocolError:
            continue
        # Reserved bytes and bits (DC7 RES, NOZIO bits 5..7) are not kept: compare typed.
        assert decode([item.to_raw()]) == (item,)
