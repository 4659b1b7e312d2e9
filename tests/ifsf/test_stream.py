"""The TCP stream splitter and the heartbeat: fed whole, in halves, byte by byte, with garbage,
two at once; and a fuzz rule per decoder (any bytes give messages or our protocol error)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.ifsf import (
    BufferStatus,
    ErrorReport,
    FpStatus,
    Heartbeat,
    IfsfProtocolError,
    Lna,
    MessageSplitter,
    NozzleForm,
    RunningTransaction,
    Transaction,
    decode_address,
    decode_message,
    decode_number,
)
from drivers.ifsf.codec import decode_items
from drivers.ifsf.stream import MAX_STREAM_BODY

from . import vectors as v

CONTROLLER = Lna(2, 1)
DISPENSERS = frozenset({1})
# Messages from dispensers to the controller 2.1, in the notes.
TO_CONTROLLER = (
    v.ANSWER_FP1_IDLE,
    v.ACK_NO_TRANSACTIONS,
    v.ACK_ACCEPTED,
    v.ACK_RELEASE_REFUSED,
    v.FP_STATUS_CLOSED,
    v.RUNNING_TRANSACTION,
    v.ERROR_PRICE_CHANGED,
)


def messages(items: Sequence[object]) -> list[bytes]:
    return [i.to_bytes() for i in items if not isinstance(i, IfsfProtocolError)]  # type: ignore[attr-defined]


def errors(items: Sequence[object]) -> list[IfsfProtocolError]:
    return [i for i in items if isinstance(i, IfsfProtocolError)]


def feed_all(splitter: MessageSplitter, chunks: Sequence[bytes]) -> list[object]:
    out: list[object] = []
    for chunk in chunks:
        out.extend(splitter.feed(chunk))
    return out


@pytest.mark.parametrize("data", v.ALL)
def test_whole(data: bytes) -> None:
    assert messages(MessageSplitter().feed(data)) == [data]


@pytest.mark.parametrize("data", v.ALL)
def test_halves(data: bytes) -> None:
    splitter = MessageSplitter()
    half = len(data) // 2
    assert splitter.feed(data[:half]) == []
    assert messages(splitter.feed(data[half:])) == [data]
    assert splitter.buffered == 0


@pytest.mark.parametrize("data", TO_CONTROLLER)
def test_byte_by_byte(data: bytes) -> None:
    splitter = MessageSplitter(CONTROLLER, DISPENSERS)
    out = feed_all(splitter, [bytes((b,)) for b in data])
    assert messages(out) == [data] and not errors(out)


def test_two_at_once_and_all_at_once() -> None:
    splitter = MessageSplitter(CONTROLLER, DISPENSERS)
    assert messages(splitter.feed(v.FP_STATUS_CLOSED + v.RUNNING_TRANSACTION)) == [
        v.FP_STATUS_CLOSED, v.RUNNING_TRANSACTION]
    stream = b"".join(TO_CONTROLLER)
    assert messages(MessageSplitter(CONTROLLER, DISPENSERS).feed(stream)) == list(TO_CONTROLLER)
    # And every message boundary crossed by the chunking.
    for size in (3, 7, 11):
        chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
        splitter = MessageSplitter(CONTROLLER, DISPENSERS)
        assert messages(feed_all(splitter, chunks)) == list(TO_CONTROLLER)


def test_garbage_before_and_after() -> None:
    splitter = MessageSplitter(CONTROLLER, DISPENSERS)
    out = splitter.feed(b"\xff\x00\x13garbage" + v.ACK_ACCEPTED + b"\xee\xee\xee\xee\xee")
    assert messages(out) == [v.ACK_ACCEPTED]
    assert [e.reason for e in errors(out)] == ["garbage before message"] * 2
    assert splitter.buffered == 0
    out = splitter.feed(v.ANSWER_FP1_IDLE)
    assert messages(out) == [v.ANSWER_FP1_IDLE] and not errors(out)


def test_a_bad_message_then_a_good_one() -> None:
    # Well framed, but its item overruns the body: reported, and the next one still comes.
    bad = bytes.fromhex("02 01 01 01 00 80 00 05 01 21 64 05 00")
    out = MessageSplitter(CONTROLLER, DISPENSERS).feed(bad + v.RUNNING_TRANSACTION)
    assert messages(out) == [v.RUNNING_TRANSACTION]
    assert "overruns" in errors(out)[0].reason


def test_a_message_for_someone_else_is_garbage_to_us() -> None:
    other = bytes.fromhex("02 02 01 03 00 FB 00 03 01 21 00")
    out = MessageSplitter(CONTROLLER, DISPENSERS).feed(other + v.ACK_ACCEPTED)
    assert messages(out) == [v.ACK_ACCEPTED]
    assert len(errors(out)) == 1


def test_an_implausible_length_does_not_stall_the_stream() -> None:
    # A header claiming 0xFFFF bytes is not waited for.
    stall = bytes.fromhex("02 01 01 01 00 80 FF FF")
    out = MessageSplitter(CONTROLLER, DISPENSERS).feed(stall + v.ACK_ACCEPTED)
    assert messages(out) == [v.ACK_ACCEPTED]


def test_reset_forgets_a_partial_message() -> None:
    splitter = MessageSplitter(CONTROLLER, DISPENSERS)
    splitter.feed(v.ACK_ACCEPTED[:5])
    splitter.reset()
    assert splitter.buffered == 0
    assert messages(splitter.feed(v.ACK_ACCEPTED)) == [v.ACK_ACCEPTED]


# ------------------------------------------------------------------ heartbeat


def test_heartbeat_round_trip_and_layout() -> None:
    beat = Heartbeat(IPv4Address("192.168.1.31"), 3486, Lna(1, 3), 1)
    data = beat.to_bytes()
    assert data == bytes.fromhex("C0 A8 01 1F 0D 9E 01 03 01 01")
    assert Heartbeat.from_bytes(data) == beat
    assert beat.configuration_needed
    assert not Heartbeat(IPv4Address("10.0.0.2"), 4000, Lna(2, 1)).configuration_needed


@pytest.mark.parametrize("bad", ["C0 A8 01 1F 0D 9E 01 03 01", "C0 A8 01 1F 0D 9E 01 03 02 00",
                                 "C0 A8 01 1F 0D 9E 01 03 01 00 00"])
def test_bad_heartbeats(bad: str) -> None:
    with pytest.raises(IfsfProtocolError):
        Heartbeat.from_bytes(bytes.fromhex(bad))


# ------------------------------------------------------------------ fuzz: one rule per decoder


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=40), max_size=8))
def test_fuzz_splitter(chunks: list[bytes]) -> None:
    for destination, sources in ((None, None), (CONTROLLER, DISPENSERS)):
        splitter = MessageSplitter(destination, sources)
        for chunk in chunks:
            for item in splitter.feed(chunk):
                assert isinstance(item, IfsfProtocolError) or hasattr(item, "to_bytes")
        assert splitter.buffered <= 8 + MAX_STREAM_BODY


@settings(max_examples=300)
@given(st.binary(max_size=16), st.sampled_from(TO_CONTROLLER), st.binary(max_size=16))
def test_fuzz_splitter_finds_a_message_among_garbage(before: bytes, data: bytes,
                                                      after: bytes) -> None:
    # Garbage that cannot start a header for us (no byte 0x02, our subnet) never hides the
    # message after it, and nothing after a message can take it back.
    before = before.replace(b"\x02", b"\x03")
    out = MessageSplitter(CONTROLLER, DISPENSERS).feed(before + data + after)
    assert data in messages(out)
    assert bool(errors(out)) == bool(before) or bool(after)


@settings(max_examples=500)
@given(st.binary(max_size=64))
def test_fuzz_decode_message(data: bytes) -> None:
    try:
        message = decode_message(data)
    except IfsfProtocolError:
        return
    assert message.to_bytes() == data or message.type.value in (7,)


@settings(max_examples=300)
@given(st.binary(max_size=12))
def test_fuzz_heartbeat_and_address_and_number(data: bytes) -> None:
    for decode in (Heartbeat.from_bytes, decode_address, decode_number, decode_items):
        with contextlib.suppress(IfsfProtocolError):
            decode(data)  # type: ignore[operator]


@settings(max_examples=300)
@given(st.binary(max_size=40))
def test_fuzz_typed_views(data: bytes) -> None:
    try:
        items = decode_items(data)
    except IfsfProtocolError:
        return
    for form in NozzleForm:
        for view in (
            lambda: FpStatus.from_items(items),
            lambda: RunningTransaction.from_items(items, form),  # noqa: B023
            lambda: BufferStatus.from_items(items),
            lambda: Transaction.from_items(items, form, 1),  # noqa: B023
            lambda: ErrorReport.from_items(0x99, items),
        ):
            with contextlib.suppress(IfsfProtocolError):
                view()
