"""DART master core with a fake clock: exact bytes on the wire, and a scripted fake pump."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.dart import (
    CD1,
    CD3,
    DC1,
    DC2,
    DC3,
    DartProtocolError,
    DataFrame,
    FrameDecoder,
    PumpCommand,
    PumpStatus,
    RawTransaction,
    UnknownTransaction,
)
from drivers.dart.bus import DartBus
from drivers.dart.events import (
    BusEvent,
    CommandDone,
    CommandFailed,
    LineNoise,
    PumpOffline,
    PumpOnline,
    PumpReplied,
    PumpRestarted,
)

from .fake_pump import FakePump

CHAR = 11 / 9600  # one 8O1 character at 9600 baud


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def drain(bus: DartBus) -> list[BusEvent]:
    events = []
    while (event := bus.next_event()) is not None:
        events.append(event)
    return events


def pump_block(address: int, txn: int, *raws: str) -> bytes:
    """A pump's DATA block; each raw is 'TRANS LNG DATA' in hex."""
    transactions = tuple(RawTransaction(h(r)[0], h(r)[2:]) for r in raws)
    return DataFrame(address, txn, transactions).to_bytes()


def timeout(bus: DartBus) -> float:
    deadline = bus.next_timeout()
    assert deadline is not None
    bus.handle_timeout(deadline)
    return deadline


class Wire:
    """Connects a bus to fake pumps: every write is answered at once, silence times out."""

    def __init__(self, bus: DartBus, *pumps: FakePump) -> None:
        self.bus, self.pumps, self.now = bus, pumps, 0.0
        self.written: list[bytes] = []
        self.events: list[BusEvent] = []

    def step(self) -> None:
        out = self.bus.data_to_send(self.now)
        if out:
            self.written.append(out)
            self.now += len(out) * CHAR
            reply = b"".join(p.feed(out) for p in self.pumps)
            if reply:
                self.now += 0.002 + len(reply) * CHAR
                self.bus.receive_data(reply, self.now)
        deadline = self.bus.next_timeout()
        if deadline is not None and deadline > self.now:
            self.now = deadline  # silence until the core's next deadline
        self.bus.handle_timeout(self.now)
        self.events += drain(self.bus)

    def run(self, steps: int) -> list[BusEvent]:
        for _ in range(steps):
            self.step()
        return self.events


# ------------------------------------------------------------------ exact exchanges


def test_poll_eot_and_reply_window() -> None:
    bus = DartBus([0x50])
    assert bus.data_to_send(0.0) == h("50 20 FA")
    # Window: the 3 request bytes on the wire, then 25 ms for the first answer byte.
    assert bus.next_timeout() == pytest.approx(3 * CHAR + 0.025)
    assert bus.data_to_send(0.001) == b""  # one request in flight
    bus.receive_data(h("50 70 FA"), 0.010)
    assert drain(bus) == [PumpOnline(0x50)]
    assert bus.is_online(0x50)
    assert bus.data_to_send(0.011) == h("50 20 FA")
    assert bus.stats.exchanges == 2


def test_reply_window_is_extended_while_bytes_arrive() -> None:
    bus = DartBus([0x51])
    bus.data_to_send(0.0)
    first = 3 * CHAR + 0.025
    bus.receive_data(h("51"), 0.027)
    assert bus.next_timeout() == pytest.approx(0.027 + 5 * CHAR)
    bus.handle_timeout(first)  # not yet: the reply is still coming
    bus.receive_data(h("70 FA"), 0.029)
    assert drain(bus) == [PumpOnline(0x51)]
    assert bus.stats.timeouts == 0


def test_poll_data_then_ack_then_poll_to_same_pump() -> None:
    # Working controllers in real traffic send ACK, then POLL; some pumps ignore ACKPOLL.
    bus = DartBus([0x51])
    bus.data_to_send(0.0)
    bus.receive_data(pump_block(0x51, 1, "01 01 04", "03 04 00 07 50 11"), 0.01)
    assert drain(bus) == [
        PumpOnline(0x51),
        PumpReplied(0x51, (DC1(PumpStatus.FILLING), DC3(750, 1, True))),
    ]
    assert bus.data_to_send(0.02) == h("51 C1 FA 51 20 FA")


def test_ackpoll_only_where_configured() -> None:
    bus = DartBus([0x51], ack_poll=[0x51])
    bus.data_to_send(0.0)
    bus.receive_data(pump_block(0x51, 1, "01 01 04"), 0.01)
    drain(bus)
    assert bus.data_to_send(0.02) == h("51 E1 FA")  # ACKPOLL with the pump's TX#


def test_ack_then_poll_to_another_pump_back_to_back() -> None:
    bus = DartBus([0x50, 0x51])
    assert bus.data_to_send(0.0) == h("50 20 FA")
    bus.receive_data(pump_block(0x50, 4, "01 01 05"), 0.01)
    assert bus.data_to_send(0.02) == h("50 C4 FA 51 20 FA")


def test_command_acked() -> None:
    bus = DartBus([0x50])
    request = bus.submit(0x50, [CD1(PumpCommand.AUTHORIZE)])
    # First block after start carries TX# 0; CRC-16/ARC of 50 30 01 01 06 is 0x5E1F.
    assert bus.data_to_send(0.0) == h("50 30 01 01 06 1F 5E 03 FA")
    bus.receive_data(h("50 C0 FA"), 0.01)
    assert drain(bus) == [PumpOnline(0x50), CommandDone(0x50, request)]
    second = bus.submit(0x50, [CD3(2000), CD1(PumpCommand.AUTHORIZE)])
    frame = bus.data_to_send(0.02)
    assert frame[:2] == h("50 31")  # next TX#
    bus.receive_data(h("50 C1 FA"), 0.03)
    assert drain(bus) == [CommandDone(0x50, second)]
    assert bus.data_to_send(0.04) == h("50 20 FA")  # queue empty: back to polling


def test_tx_numbers_wrap_f_to_1() -> None:
    bus = DartBus([0x50])
    seen = []
    for i in range(17):
        bus.submit(0x50, [CD1(PumpCommand.RETURN_STATUS)])
        frame = bus.data_to_send(i)
        seen.append(frame[1] & 0x0F)
        bus.receive_data(bytes((0x50, 0xC0 | seen[-1], 0xFA)), i + 0.01)
    assert seen == [0, *range(1, 16), 1]


def test_nak_three_times_fails_the_command() -> None:
    bus = DartBus([0x50], max_retries=3)
    request = bus.submit(0x50, [CD1(PumpCommand.RESET)])
    frame = bus.data_to_send(0.0)
    for i in range(3):
        if i:
            assert bus.data_to_send(i) == frame  # resent with the same TX#
        bus.receive_data(h("50 50 FA"), i + 0.01)
    assert drain(bus) == [PumpOnline(0x50), CommandFailed(0x50, request, "NAKed 3 times")]
    assert bus.stats.naks == 3
    assert bus.data_to_send(5.0) == h("50 20 FA")


def test_nak_with_another_txn_is_noise() -> None:
    bus = DartBus([0x50])
    bus.submit(0x50, [CD1(PumpCommand.RESET)])
    bus.data_to_send(0.0)
    bus.receive_data(h("50 55 FA"), 0.01)
    events = drain(bus)
    assert len(events) == 1 and isinstance(events[0], LineNoise)
    assert bus.data_to_send(0.02) == b""  # still waiting for this block's answer


def test_retransmitted_block_is_acked_not_redelivered() -> None:
    bus = DartBus([0x51])
    block = pump_block(0x51, 2, "02 08 00 00 10 00 00 00 75 00")
    bus.data_to_send(0.0)
    bus.receive_data(block, 0.01)
    assert drain(bus) == [PumpOnline(0x51), PumpReplied(0x51, (DC2(1000, 7500),))]
    assert bus.data_to_send(0.02) == h("51 C2 FA 51 20 FA")
    bus.receive_data(block, 0.03)  # our ACK was lost: the pump sends it again
    assert drain(bus) == []
    assert bus.data_to_send(0.04) == h("51 C2 FA 51 20 FA")
    assert bus.stats.retransmissions == 1


def test_txn_zero_after_nonzero_is_a_restart() -> None:
    bus = DartBus([0x51])
    bus.data_to_send(0.0)
    bus.receive_data(pump_block(0x51, 7, "01 01 04"), 0.01)
    drain(bus)
    bus.data_to_send(0.02)
    bus.receive_data(pump_block(0x51, 0, "01 01 00"), 0.03)
    assert drain(bus) == [
        PumpRestarted(0x51),
        PumpReplied(0x51, (DC1(PumpStatus.NOT_PROGRAMMED),)),
    ]
    assert bus.data_to_send(0.04) == h("51 C0 FA 51 20 FA")


@pytest.mark.parametrize("after_f", [0, 1])
def test_both_wraps_after_f_are_accepted(after_f: int) -> None:
    bus = DartBus([0x51])
    bus.data_to_send(0.0)
    bus.receive_data(pump_block(0x51, 15, "01 01 04"), 0.01)
    bus.data_to_send(0.02)
    bus.receive_data(pump_block(0x51, after_f, "01 01 05"), 0.03)
    replied = [e for e in drain(bus) if isinstance(e, PumpReplied)]
    assert len(replied) == 2
    assert bus.data_to_send(0.04) == bytes((0x51, 0xC0 | after_f, 0xFA, 0x51, 0x20, 0xFA))


def test_unexpected_txn_is_naked_then_resynchronised() -> None:
    bus = DartBus([0x51], max_retries=2)
    bus.data_to_send(0.0)
    bus.receive_data(pump_block(0x51, 3, "01 01 04"), 0.01)
    drain(bus)
    skipped = pump_block(0x51, 9, "01 01 05")
    for i in range(2):
        assert bus.data_to_send(i + 0.02) == (h("51 C3 FA 51 20 FA") if i == 0 else h("51 20 FA"))
        bus.receive_data(skipped, i + 0.03)
        events = drain(bus)
        assert [type(e) for e in events] == [LineNoise]
        assert bus.data_to_send(i + 0.04)[:3] == h("51 59 FA")  # NAK with the pump's TX#
        bus.receive_data(h("51 70 FA"), i + 0.05)
    # The pump insists: the block is taken, so a pump that skipped a TX# is not locked out.
    bus.data_to_send(3.0)
    bus.receive_data(skipped, 3.01)
    assert drain(bus) == [PumpReplied(0x51, (DC1(PumpStatus.FILLING_COMPLETED),))]
    assert bus.stats.naks_sent == 2


def test_timeouts_take_a_pump_offline_and_it_comes_back() -> None:
    bus = DartBus([0x50], offline_after=3, offline_poll_interval=1.0)
    request = bus.submit(0x50, [CD1(PumpCommand.STOP)])
    frame = bus.data_to_send(0.0)
    now = timeout(bus)
    assert drain(bus) == []
    for _ in range(2):
        assert bus.data_to_send(now) == frame  # a timed-out block is resent with its TX#
        now = timeout(bus)
    assert drain(bus) == [PumpOffline(0x50), CommandFailed(0x50, request, "offline")]
    assert not bus.is_online(0x50)
    # Offline: commands fail at once, and the pump is only probed once a second.
    late = bus.submit(0x50, [CD1(PumpCommand.STOP)])
    assert drain(bus) == [CommandFailed(0x50, late, "offline")]
    assert bus.data_to_send(now + 0.5) == b""
    assert bus.next_timeout() == pytest.approx(now + 1.0)
    assert bus.data_to_send(now + 1.0) == h("50 20 FA")
    bus.receive_data(h("50 70 FA"), now + 1.01)
    assert drain(bus) == [PumpOnline(0x50)]
    assert bus.is_online(0x50)
    assert bus.stats.timeouts == 3


def test_a_pump_never_heard_goes_offline_once() -> None:
    bus = DartBus([0x50, 0x51], offline_after=2)
    wire = Wire(bus, FakePump(0x50))
    events = wire.run(12)
    assert events.count(PumpOffline(0x51)) == 1
    assert PumpOnline(0x50) in events and PumpOnline(0x51) not in events


def test_garbage_and_bad_crc_are_noise_and_the_line_goes_on() -> None:
    bus = DartBus([0x50])
    bus.data_to_send(0.0)
    bus.receive_data(h("00 FF 13 50 70 FA"), 0.01)
    events = drain(bus)
    assert isinstance(events[0], LineNoise)
    assert events[1:] == [PumpOnline(0x50)]
    bus.data_to_send(0.02)
    bad = bytearray(pump_block(0x50, 1, "01 01 04"))
    bad[4] ^= 0x01
    bus.receive_data(bytes(bad), 0.03)
    [noise] = drain(bus)
    assert isinstance(noise, LineNoise) and noise.error.reason == "bad CRC"
    timeout(bus)  # the corrupt reply is not an answer
    bus.data_to_send(1.0)
    bus.receive_data(pump_block(0x50, 1, "01 01 04"), 1.01)
    assert drain(bus) == [PumpReplied(0x50, (DC1(PumpStatus.FILLING),))]
    assert bus.stats.crc_errors == 1


def test_frame_from_a_pump_not_addressed_is_noise() -> None:
    bus = DartBus([0x50, 0x51])
    bus.data_to_send(0.0)
    bus.receive_data(h("51 70 FA"), 0.01)
    events = drain(bus)
    assert [type(e) for e in events] == [LineNoise]
    assert bus.data_to_send(0.02) == b""
    bus.receive_data(h("52 70 FA 50 70 FA"), 0.02)
    assert [type(e) for e in drain(bus)] == [LineNoise, PumpOnline]


def test_unsolicited_frame_while_idle_is_noise() -> None:
    bus = DartBus([0x50])
    bus.receive_data(h("50 70 FA"), 0.0)
    assert [type(e) for e in drain(bus)] == [LineNoise]


def test_bad_transaction_in_good_block_is_kept_raw_and_acked() -> None:
    bus = DartBus([0x50])
    bus.data_to_send(0.0)
    bus.receive_data(pump_block(0x50, 1, "01 01 03", "01 01 04"), 0.01)
    events = drain(bus)
    assert isinstance(events[1], LineNoise)
    assert events[2] == PumpReplied(
        0x50, (UnknownTransaction(0x01, b"\x03"), DC1(PumpStatus.FILLING))
    )
    assert bus.data_to_send(0.02) == h("50 C1 FA 50 20 FA")


def test_commands_go_before_polls_and_polls_round_robin() -> None:
    bus = DartBus([0x50, 0x51, 0x52])
    assert bus.data_to_send(0.0) == h("50 20 FA")
    bus.receive_data(h("50 70 FA"), 0.01)
    bus.submit(0x52, [CD1(PumpCommand.STOP)])
    assert bus.data_to_send(0.02)[:2] == h("52 30")
    bus.receive_data(h("52 C0 FA"), 0.03)
    assert bus.data_to_send(0.04) == h("51 20 FA")
    bus.receive_data(h("51 70 FA"), 0.05)
    assert bus.data_to_send(0.06) == h("52 20 FA")


def test_poll_interval_paces_rounds_but_not_commands() -> None:
    bus = DartBus([0x50, 0x51], poll_interval=0.5)
    for address, t in ((0x50, 0.0), (0x51, 0.1)):
        assert bus.data_to_send(t) == bytes((address, 0x20, 0xFA))
        bus.receive_data(bytes((address, 0x70, 0xFA)), t + 0.01)
    assert bus.data_to_send(0.2) == b""
    assert bus.next_timeout() == pytest.approx(0.7)
    bus.submit(0x51, [CD1(PumpCommand.AUTHORIZE)])
    assert bus.data_to_send(0.3)[:2] == h("51 30")
    bus.receive_data(h("51 C0 FA"), 0.31)
    assert bus.data_to_send(0.4) == b""
    assert bus.data_to_send(0.7) == h("50 20 FA")


def test_ack_is_not_held_back_by_pacing() -> None:
    bus = DartBus([0x50], poll_interval=1.0)
    bus.data_to_send(0.0)
    bus.receive_data(pump_block(0x50, 1, "01 01 04"), 0.01)
    assert bus.next_timeout() == pytest.approx(0.01)
    assert bus.data_to_send(0.02) == h("50 C1 FA")
    assert bus.data_to_send(0.03) == b""


def test_connection_lost_takes_everything_offline() -> None:
    bus = DartBus([0x50, 0x51])
    bus.data_to_send(0.0)
    bus.receive_data(h("50 70 FA"), 0.01)
    drain(bus)
    request = bus.submit(0x50, [CD1(PumpCommand.RESET)])
    bus.connection_lost(0.02)
    assert drain(bus) == [
        PumpOffline(0x50),
        CommandFailed(0x50, request, "line down"),
        PumpOffline(0x51),
    ]
    assert bus.online() == {0x50: False, 0x51: False}
    # Both are probed again at once, the round going on where it was.
    assert bus.data_to_send(0.03) == h("51 20 FA")
    timeout(bus)
    assert bus.data_to_send(0.1) == h("50 20 FA")


def test_cancel_only_unsent_blocks() -> None:
    bus = DartBus([0x50])
    first = bus.submit(0x50, [CD1(PumpCommand.RESET)])
    second = bus.submit(0x50, [CD1(PumpCommand.AUTHORIZE)])
    bus.data_to_send(0.0)
    assert not bus.cancel(first)
    assert bus.cancel(second)
    assert not bus.cancel(second)


def test_submit_validates() -> None:
    bus = DartBus([0x50])
    with pytest.raises(ValueError):
        bus.submit(0x51, [CD1(PumpCommand.RESET)])
    with pytest.raises(ValueError):
        bus.submit(0x50, [])
    with pytest.raises(ValueError):
        DartBus([0x50, 0x50])
    with pytest.raises(ValueError):
        DartBus([0x70])


# ------------------------------------------------------------------ against a fake pump


def test_sale_like_traffic_with_fake_pumps() -> None:
    pumps = [FakePump(0x50), FakePump(0x51)]
    bus = DartBus([0x50, 0x51])
    wire = Wire(bus, *pumps)
    wire.run(4)
    pumps[0].say(DC1(PumpStatus.FILLING), DC2(100, 750))
    pumps[0].say(DC1(PumpStatus.FILLING_COMPLETED))
    pumps[1].say(DC3(812, 2, True))
    request = bus.submit(0x51, [CD3(2000), CD1(PumpCommand.AUTHORIZE)])
    events = wire.run(12)
    replied = [e for e in events if isinstance(e, PumpReplied)]
    assert replied == [
        PumpReplied(0x50, (DC1(PumpStatus.FILLING), DC2(100, 750))),
        PumpReplied(0x51, (DC3(812, 2, True),)),
        PumpReplied(0x50, (DC1(PumpStatus.FILLING_COMPLETED),)),
    ]
    assert CommandDone(0x51, request) in events
    assert pumps[1].applied == [(CD3(2000), CD1(PumpCommand.AUTHORIZE))]
    assert not pumps[0].outbox and not pumps[1].outbox  # every block was ACKed


def test_lost_ack_is_not_applied_twice_by_the_pump() -> None:
    pump = FakePump(0x50)
    bus = DartBus([0x50])
    wire = Wire(bus, pump)
    wire.run(1)
    request = bus.submit(0x50, [CD1(PumpCommand.AUTHORIZE)])
    pump.mute = True  # the pump applies the block but its ACK is lost
    wire.run(1)
    pump.mute = False
    events = wire.run(1)
    assert CommandDone(0x50, request) in events
    assert pump.applied == [(CD1(PumpCommand.AUTHORIZE),)]


def test_pump_restart_reported_and_its_replies_delivered() -> None:
    pump = FakePump(0x50)
    bus = DartBus([0x50])
    wire = Wire(bus, pump)
    pump.say(DC1(PumpStatus.RESET))
    pump.say(DC1(PumpStatus.AUTHORIZED))
    wire.run(4)
    pump.restart()
    pump.say(DC1(PumpStatus.NOT_PROGRAMMED))
    events = wire.run(3)
    assert PumpRestarted(0x50) in events
    assert events[-1] == PumpReplied(0x50, (DC1(PumpStatus.NOT_PROGRAMMED),))


def test_pump_goes_silent_then_returns() -> None:
    pump = FakePump(0x50)
    bus = DartBus([0x50], offline_after=3, offline_poll_interval=0.5)
    wire = Wire(bus, pump)
    wire.run(2)
    pump.mute = True
    wire.run(5)
    assert wire.events.count(PumpOffline(0x50)) == 1
    polls = pump.polls
    start = wire.now
    while wire.now < start + 2.0:
        wire.step()
    assert 3 <= pump.polls - polls <= 5  # offline: probed every 0.5 s only
    pump.mute = False
    while wire.now < start + 3.0:
        wire.step()
    assert wire.events.count(PumpOnline(0x50)) == 2
    assert bus.is_online(0x50)


# ------------------------------------------------------------------ fuzz

_ANSWERS = [
    h("50 70 FA"),
    h("51 70 FA"),
    h("50 C0 FA"),
    h("50 C1 FA"),
    h("50 50 FA"),
    h("51 20 FA"),
    pump_block(0x50, 1, "01 01 04"),
    pump_block(0x51, 0, "01 01 03"),
    pump_block(0x51, 2, "03 04 00 07 50 11", "02 08 00 00 00 01 00 00 00 07"),
]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.binary(max_size=24), st.sampled_from(_ANSWERS)),
            st.floats(min_value=0.0, max_value=0.2),
            st.booleans(),
        ),
        max_size=60,
    )
)
def test_bus_survives_any_input(script: list[tuple[bytes, float, bool]]) -> None:
    bus = DartBus([0x50, 0x51], offline_after=2, offline_poll_interval=0.3)
    now = 0.0
    requests = set()
    for data, delay, submit in script:
        if submit:
            requests.add(bus.submit(0x50, [CD1(PumpCommand.RETURN_STATUS)]))
        out = bus.data_to_send(now)
        # Whatever happens, the core writes only well-formed frames.
        assert all(not isinstance(f, DartProtocolError) for f in FrameDecoder().feed(out))
        now += delay
        bus.receive_data(data, now)
        bus.handle_timeout(now)
        for event in drain(bus):
            if isinstance(event, CommandDone | CommandFailed):
                requests.remove(event.request_id)  # each request ends exactly once
    bus.connection_lost(now + 1)
    for event in drain(bus):
        if isinstance(event, CommandDone | CommandFailed):
            requests.remove(event.request_id)
    assert not requests
