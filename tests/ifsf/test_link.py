"""The node-link and LAN cores, with time as a parameter: tokens, one message in flight,
timeouts, heartbeats, static nodes."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.ifsf import (
    Ack,
    AllFuellingPoints,
    Answer,
    ConfigurationNeeded,
    DataItem,
    FpId,
    FuellingPointAddress,
    Heartbeat,
    LanCore,
    LinkNoise,
    Lna,
    NodeLink,
    NodeOffline,
    NodeOnline,
    NodeSettings,
    Polled,
    Read,
    Received,
    Replied,
    RequestFailed,
    TransactionAddress,
    UnknownNode,
    Unsolicited,
    Write,
    decode_message,
)
from drivers.ifsf.link import STATUS_POLL_INTERVAL, UNANSWERED_LIMIT

from . import vectors as v

US = Lna(2, 1)
NODE = Lna(1, 1)
BEAT = Heartbeat(IPv4Address("127.0.0.1"), 4001, NODE)


def drain(link: NodeLink | LanCore) -> list[object]:
    out = []
    while (event := link.next_event()) is not None:
        out.append(event)
    return out


def sent(link: NodeLink, now: float) -> Read | Write | Ack | None:
    data = link.next_message(now)
    if data is None:
        return None
    message = decode_message(data)
    assert isinstance(message, Read | Write | Ack)
    return message


def fp_answer(request: Read | Write, state: int = 3, fp: int = 1) -> Answer:
    return Answer(US, NODE, request.token, FuellingPointAddress(fp),
                  (DataItem(FpId.FP_STATE, bytes((state,))),))


def ack(request: Read | Write, status: int = 0, address: object = None) -> Ack:
    return Ack(US, NODE, request.token, address or request.address, status)  # type: ignore[arg-type]


def online_link(now: float = 0.0, **kwargs: object) -> NodeLink:
    link = NodeLink(NODE, US, **kwargs)  # type: ignore[arg-type]
    link.heartbeat(BEAT, now)
    link.link_up(now)
    poll = sent(link, now)
    assert isinstance(poll, Read) and poll.address == AllFuellingPoints()
    assert poll.ids == (FpId.FP_STATE,)
    link.receive(fp_answer(poll), now)
    link.receive(ack(poll), now)
    events = drain(link)
    assert isinstance(events[0], NodeOnline)
    assert isinstance(events[1], Polled) and len(events[1].messages) == 2
    return link


def test_online_needs_heartbeat_link_and_an_answer() -> None:
    link = NodeLink(NODE, US)
    assert not link.wants_connection(0.0)
    link.heartbeat(BEAT, 0.0)
    assert link.wants_connection(0.0) and link.endpoint == ("127.0.0.1", 4001)
    assert not link.online
    link.link_up(0.1)
    assert not link.online
    poll = sent(link, 0.1)
    assert isinstance(poll, Read) and poll.token == 1
    link.receive(fp_answer(poll), 0.2)
    assert link.online  # proven alive by the first answer
    assert isinstance(drain(link)[0], NodeOnline)


def test_a_request_while_offline_fails_at_once() -> None:
    link = NodeLink(NODE, US)
    request_id = link.submit_write(FuellingPointAddress(1), (DataItem(FpId.OPEN_FP),))
    assert drain(link) == [RequestFailed(NODE, request_id, "offline")]


def test_one_message_in_flight_and_tokens_matched() -> None:
    link = online_link()
    first = link.submit_write(FuellingPointAddress(1), (DataItem(FpId.OPEN_FP),))
    second = link.submit_read(FuellingPointAddress(1), (FpId.FP_STATE,))
    write = sent(link, 1.0)
    assert isinstance(write, Write) and write.token == 2
    assert sent(link, 1.0) is None  # the read waits for the write's acknowledge
    # An acknowledge with another token is noise, and changes nothing.
    link.receive(Ack(US, NODE, 7, FuellingPointAddress(1)), 1.1)
    events = drain(link)
    assert len(events) == 1 and isinstance(events[0], LinkNoise)
    assert sent(link, 1.1) is None
    link.receive(ack(write), 1.2)
    assert drain(link) == [Replied(NODE, first, (ack(write),))]
    read = sent(link, 1.2)
    assert isinstance(read, Read) and read.token == 3
    link.receive(fp_answer(read), 1.3)
    assert drain(link) == [Replied(NODE, second, (fp_answer(read),))]


def test_tokens_wrap_from_31_to_1() -> None:
    link = online_link()
    tokens = []
    for i in range(35):
        link.submit_read(FuellingPointAddress(1), (FpId.FP_STATE,))
        request = sent(link, 1.0 + i / 100)
        assert isinstance(request, Read)
        tokens.append(request.token)
        link.receive(fp_answer(request), 1.0 + i / 100)
    assert tokens[:3] == [2, 3, 4] and tokens[29:32] == [31, 1, 2]
    assert 0 not in tokens


def test_an_unknown_address_ends_a_read_with_its_acknowledge() -> None:
    link = online_link()
    request_id = link.submit_read(FuellingPointAddress(4), (FpId.FP_STATE,))
    read = sent(link, 1.0)
    assert isinstance(read, Read)
    link.receive(ack(read, status=6), 1.1)
    [event] = drain(link)
    assert isinstance(event, Replied) and event.request_id == request_id
    assert isinstance(event.messages[0], Ack) and event.messages[0].status == 6


def test_an_all_read_collects_answers_until_the_acknowledge() -> None:
    link = online_link()
    request_id = link.submit_read(TransactionAddress(1, 0), (1, 5, 6))
    read = sent(link, 1.0)
    assert isinstance(read, Read)
    answers = [Answer(US, NODE, read.token, TransactionAddress(1, n), (DataItem(1, b""),))
               for n in (1621, 1622)]
    for answer in answers:
        link.receive(answer, 1.1)
    assert drain(link) == []
    # Closed on FP 20 00 00, as one dispenser does (PROTOCOLS.md): matched by token.
    link.receive(Ack(US, NODE, read.token, TransactionAddress(1, 0, marker=0x20)), 1.2)
    [event] = drain(link)
    assert isinstance(event, Replied) and event.request_id == request_id
    assert event.messages[:2] == tuple(answers) and isinstance(event.messages[2], Ack)
    assert event.complete


def test_an_all_read_without_its_acknowledge_hands_over_what_came() -> None:
    link = online_link(reply_timeout=1.0)
    request_id = link.submit_read(TransactionAddress(1, 0), (1,))
    read = sent(link, 1.0)
    assert isinstance(read, Read)
    answer = Answer(US, NODE, read.token, TransactionAddress(1, 3), (DataItem(1, b"\x00\x03"),))
    link.receive(answer, 1.1)
    link.handle_timeout(2.0)
    assert drain(link) == [Replied(NODE, request_id, (answer,), complete=False)]
    assert link.online


def test_timeouts_then_offline_and_reset() -> None:
    link = online_link(reply_timeout=1.0)
    now = 1.0
    for attempt in range(1, UNANSWERED_LIMIT + 1):
        request_id = link.submit_read(FuellingPointAddress(1), (FpId.FP_STATE,))
        assert sent(link, now) is not None
        assert link.next_timeout() == now + 1.0
        link.handle_timeout(now + 0.5)  # early: nothing happens
        assert drain(link) == []
        now += 1.0
        link.handle_timeout(now)
        events = drain(link)
        assert events[0] == RequestFailed(NODE, request_id, "timeout")
        if attempt < UNANSWERED_LIMIT:
            assert len(events) == 1 and link.online
    assert events[1:] == [NodeOffline(NODE, "no answer")]
    assert link.take_reset() and not link.take_reset()


def test_heartbeat_lost_after_three_intervals() -> None:
    link = online_link(0.0, heartbeat_interval=10.0)
    link.heartbeat(BEAT, 10.0)
    assert link.next_timeout() == 40.0
    link.handle_timeout(39.9)
    assert link.online
    pending = link.submit_read(FuellingPointAddress(1), (FpId.FP_STATE,))
    link.handle_timeout(40.0)
    events = drain(link)
    assert RequestFailed(NODE, pending, "heartbeat lost") in events
    assert events[-1] == NodeOffline(NODE, "heartbeat lost")
    assert not link.wants_connection(40.0)
    assert link.take_reset()
    # The heartbeat comes back: connect again, answer, online.
    link.link_down(40.1)
    link.heartbeat(BEAT, 50.0)
    assert link.wants_connection(50.0)


def test_configuration_needed_is_told_once_per_change() -> None:
    link = NodeLink(NODE, US)
    needs = Heartbeat(BEAT.ip, BEAT.port, NODE, status=1)
    link.heartbeat(needs, 0.0)
    link.heartbeat(needs, 10.0)
    assert drain(link) == [ConfigurationNeeded(NODE)]
    link.heartbeat(BEAT, 20.0)
    link.heartbeat(needs, 30.0)
    assert drain(link) == [ConfigurationNeeded(NODE)]


def test_a_new_endpoint_resets_the_link() -> None:
    link = online_link()
    link.heartbeat(Heartbeat(IPv4Address("127.0.0.1"), 4002, NODE), 1.0)
    assert link.take_reset()
    assert link.endpoint == ("127.0.0.1", 4002)
    assert isinstance(drain(link)[-1], NodeOffline)


def test_link_down_fails_the_request_in_flight() -> None:
    link = online_link()
    request_id = link.submit_write(FuellingPointAddress(1), (DataItem(FpId.RELEASE_FP),))
    assert sent(link, 1.0) is not None
    link.link_down(1.1)
    events = drain(link)
    assert events[0] == RequestFailed(NODE, request_id, "link down")
    assert events[1] == NodeOffline(NODE, "link down")


def test_unsolicited_messages_and_acks_we_owe() -> None:
    link = online_link()
    status = decode_message(v.FP_STATUS_CLOSED)
    link.receive(status, 1.0)
    assert drain(link) == [Received(NODE, status)]  # type: ignore[arg-type]
    assert sent(link, 1.0) is None  # type 4: no acknowledge
    link.submit_read(FuellingPointAddress(1), (FpId.FP_STATE,))
    assert sent(link, 1.0) is not None
    needs_ack = Unsolicited(US, NODE, 5, FuellingPointAddress(1),
                            (DataItem(FpId.FP_STATUS_MESSAGE),), ack_required=True)
    link.receive(needs_ack, 1.1)
    owed = sent(link, 1.1)  # sent even with a request in flight
    assert owed == Ack(NODE, US, 5, FuellingPointAddress(1))


def test_static_node_is_polled_and_goes_offline_when_unanswered() -> None:
    link = NodeLink(NODE, US, endpoint=("10.0.0.9", 3486), reply_timeout=1.0)
    assert link.wants_connection(0.0)  # no heartbeat needed
    link.link_up(0.0)
    poll = sent(link, 0.0)
    assert isinstance(poll, Read)
    link.receive(fp_answer(poll), 0.1)
    link.receive(ack(poll), 0.1)
    assert isinstance(drain(link)[0], NodeOnline)
    assert link.next_timeout() == STATUS_POLL_INTERVAL
    now = STATUS_POLL_INTERVAL
    for _ in range(UNANSWERED_LIMIT):
        poll = sent(link, now)
        assert isinstance(poll, Read)
        now += 1.0
        link.handle_timeout(now)
        now = link.next_timeout() or now
    assert drain(link) == [NodeOffline(NODE, "no answer")]
    assert link.take_reset()


def test_a_static_node_that_never_answers_is_asked_again() -> None:
    link = NodeLink(NODE, US, endpoint=("10.0.0.9", 3486), reply_timeout=1.0,
                    unanswered_limit=10)
    link.link_up(0.0)
    assert sent(link, 0.0) is not None
    link.handle_timeout(1.0)
    assert link.next_timeout() == 2.0
    assert sent(link, 1.5) is None
    assert sent(link, 2.0) is not None


# ------------------------------------------------------------------ the LAN core


def test_lan_routes_heartbeats_and_streams_by_source() -> None:
    other = Lna(1, 2)
    lan = LanCore(US, {NODE: NodeSettings(), other: NodeSettings()})
    lan.datagram(BEAT.to_bytes(), ("127.0.0.1", 3486), 0.0)
    lan.datagram(Heartbeat(BEAT.ip, 4000, US).to_bytes(), ("127.0.0.1", 3486), 0.0)  # ours
    lan.datagram(Heartbeat(BEAT.ip, 4000, Lna(9, 1)).to_bytes(), ("127.0.0.1", 3486), 0.0)
    assert lan.link(NODE).endpoint == ("127.0.0.1", 4001)
    assert lan.link(other).endpoint is None
    lan.datagram(Heartbeat(BEAT.ip, 4007, Lna(1, 7)).to_bytes(), ("127.0.0.1", 3486), 0.0)
    lan.datagram(Heartbeat(BEAT.ip, 4007, Lna(1, 7)).to_bytes(), ("127.0.0.1", 3486), 1.0)
    lan.datagram(b"\x01\x02", ("127.0.0.1", 3486), 1.0)
    events = list(lan.events())
    assert UnknownNode(Lna(1, 7), ("127.0.0.1", 4007)) in events
    assert sum(isinstance(e, UnknownNode) for e in events) == 1
    assert any(isinstance(e, LinkNoise) and e.node is None for e in events)

    lan.stream_opened(1)
    lan.link(NODE).link_up(1.0)
    poll = decode_message(lan.link(NODE).next_message(1.0) or b"")
    assert isinstance(poll, Read)
    answer = fp_answer(poll).to_bytes()
    stranger = Answer(US, Lna(1, 7), 1, FuellingPointAddress(1), ()).to_bytes()
    lan.stream_data(1, stranger + answer[:5], 1.1)
    lan.stream_data(1, answer[5:], 1.2)
    assert lan.link(NODE).online
    assert lan.stats.strangers == 3


def test_lan_refuses_a_controller_among_its_nodes() -> None:
    with pytest.raises(ValueError):
        LanCore(US, {US: NodeSettings()})
    with pytest.raises(ValueError):
        LanCore(US, {})


@settings(max_examples=200)
@given(st.lists(st.one_of(st.binary(max_size=48), st.sampled_from(v.ALL)), max_size=6),
       st.binary(max_size=16))
def test_fuzz_the_lan_core(chunks: list[bytes], datagram: bytes) -> None:
    """Any bytes on a stream or the heartbeat port give events, never an exception."""
    lan = LanCore(US, {NODE: NodeSettings()})
    lan.stream_opened(1)
    now = 0.0
    for chunk in chunks:
        now += 0.1
        lan.stream_data(1, chunk, now)
        lan.datagram(datagram, ("127.0.0.1", 3486), now)
        lan.handle_timeout(now)
    for event in lan.events():
        assert isinstance(event, LinkNoise | UnknownNode | Received | ConfigurationNeeded)
