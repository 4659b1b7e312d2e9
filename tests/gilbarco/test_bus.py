"""The sans-I/O Gilbarco line core, driven byte by byte with time as a parameter."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.gilbarco import (
    AllStop,
    Authorize,
    BusEvent,
    CommandDone,
    CommandFailed,
    DigitsMode,
    GilbarcoBus,
    HexRecord,
    LineNoise,
    PresetBlock,
    PumpOffline,
    PumpOnline,
    PumpStatus,
    PumpTotals,
    ReadRunningMoney,
    ReadSpecialFunction,
    ReadTotals,
    ReadTransaction,
    RunningMoney,
    SendBlock,
    SpecialFunctionAnswer,
    StatusChanged,
    Stop,
    Timing,
    Transaction,
)

from .test_answers import NOZZLE_RECORD, TOTALS_ONE_HOSE
from .test_codec import SPECIAL_010, TRANSACTION

LATE = 10.0  # seconds: past every answer window


def drain(bus: GilbarcoBus) -> list[BusEvent]:
    events = []
    while (event := bus.next_event()) is not None:
        events.append(event)
    return events


def done_of(events: Sequence[BusEvent]) -> list[CommandDone]:
    return [e for e in events if isinstance(e, CommandDone)]


def noise_of(events: Sequence[BusEvent]) -> list[LineNoise]:
    return [e for e in events if isinstance(e, LineNoise)]


def changes_of(events: Sequence[BusEvent]) -> list[StatusChanged]:
    return [e for e in events if isinstance(e, StatusChanged)]


def test_polls_round_robin_and_reports_status_changes() -> None:
    bus = GilbarcoBus([1, 2, 16])
    assert bus.data_to_send(0.0) == b"\x01"
    assert bus.data_to_send(0.0) == b""  # one request in flight
    bus.receive_data(b"\x61", 0.01)
    assert drain(bus) == [PumpOnline(1), StatusChanged(1, PumpStatus.IDLE, None)]
    assert bus.data_to_send(0.01) == b"\x02"
    bus.receive_data(b"\x72", 0.02)
    assert bus.data_to_send(0.02) == b"\x00"  # pump 16 is sent as 0
    bus.receive_data(b"\x60", 0.03)
    assert bus.status(16) is PumpStatus.IDLE and bus.status(2) is PumpStatus.CALLING
    drain(bus)
    assert bus.data_to_send(0.03) == b"\x01"
    bus.receive_data(b"\x61", 0.04)
    assert drain(bus) == []  # the same status again is no news
    assert bus.online() == {1: True, 2: True, 16: True}


def test_poll_interval_paces_rounds() -> None:
    bus = GilbarcoBus([1], poll_interval=0.5)
    assert bus.data_to_send(0.0) == b"\x01"
    bus.receive_data(b"\x61", 0.01)
    assert bus.data_to_send(0.02) == b""
    assert bus.next_timeout() == pytest.approx(0.52)
    assert bus.data_to_send(0.53) == b"\x01"


def test_echo_is_skipped_in_any_pieces() -> None:
    bus = GilbarcoBus([3], echo=True)
    assert bus.data_to_send(0.0) == b"\x03"
    bus.receive_data(b"\x03", 0.001)
    assert drain(bus) == []
    bus.receive_data(b"\x93", 0.01)
    assert changes_of(drain(bus)) == [StatusChanged(3, PumpStatus.FUELLING, None)]
    request = bus.submit(3, ReadTransaction())
    assert bus.data_to_send(0.02) == b"\x43"
    tx = Transaction(pump=3, hose=1, price=750, volume=1000, money=750).to_block().to_bytes()
    wire = b"\x43" + tx
    for i, byte in enumerate(wire):
        bus.receive_data(bytes((byte,)), 0.03 + i * 0.001)
    done = done_of(drain(bus))
    assert done == [CommandDone(3, request, Transaction.from_block(Transaction(
        pump=3, hose=1, price=750, volume=1000, money=750).to_block()))]


def test_a_late_answer_before_the_echo_is_never_taken_for_the_answer() -> None:
    # As seen on a loaded machine: pump 1's echo and answer come after its exchange timed out,
    # in the middle of pump 2's. Pump 1's echo "01" is also what a data error of pump 1 looks
    # like, and "02" what pump 2's would: neither may be read as a status.
    bus = GilbarcoBus([1, 2], echo=True)
    assert bus.data_to_send(0.0) == b"\x01"
    bus.handle_timeout(LATE)
    assert bus.data_to_send(LATE) == b"\x02"
    bus.receive_data(b"\x01\x61", LATE + 0.01)
    bus.receive_data(b"\x02", LATE + 0.02)
    bus.receive_data(b"\x62", LATE + 0.03)
    events = drain(bus)
    assert noise_of(events)[0].error.reason == "bytes before the echo"
    assert changes_of(events) == [StatusChanged(2, PumpStatus.IDLE, None)]
    assert bus.status(1) is None and bus.stats.bad_answers == 0 and bus.stats.echo_errors == 1
    # An echo that starts right and then differs: what matched was not the echo either.
    bus.submit(2, SendBlock(PresetBlock("money", 100)))
    assert bus.data_to_send(LATE) == b"\x22"
    bus.receive_data(b"\x22\xd2", LATE + 0.01)
    block = bus.data_to_send(LATE + 0.01)
    bus.receive_data(block[:3] + b"\x00" + block, LATE + 0.02)
    assert bus.stats.echo_errors == 2


def test_a_late_status_of_another_pump_is_noise_without_echo_too() -> None:
    bus = GilbarcoBus([1, 2])
    bus.data_to_send(0.0)
    bus.handle_timeout(LATE)
    assert bus.data_to_send(LATE) == b"\x02"
    bus.receive_data(b"\x61\x62", LATE + 0.01)
    events = drain(bus)
    assert noise_of(events)[0].error.reason == "late answer"
    assert changes_of(events) == [StatusChanged(2, PumpStatus.IDLE, None)]
    assert bus.stats.bad_answers == 0


def test_a_transaction_of_another_pump_is_a_bad_answer() -> None:
    bus = GilbarcoBus([1, 2])
    bus.submit(1, ReadTransaction())
    assert bus.data_to_send(0.0) == b"\x41"
    bus.receive_data(TRANSACTION, 0.05)  # the captured one is pump 2's
    assert bus.stats.bad_answers == 1
    assert noise_of(drain(bus))[0].error.reason == "transaction of another pump"


def test_three_missed_answers_take_a_pump_offline_and_fail_its_queue() -> None:
    bus = GilbarcoBus([1])
    bus.data_to_send(0.0)
    bus.receive_data(b"\x61", 0.01)
    drain(bus)
    request = bus.submit(1, ReadTotals())
    now = 0.0
    for _ in range(3):
        assert bus.data_to_send(now) == b"\x51"
        now += LATE
        bus.handle_timeout(now)
    events = drain(bus)
    assert PumpOffline(1) in events
    assert CommandFailed(1, request, "offline") in events
    assert bus.stats.timeouts == 3
    assert not bus.is_online(1) and bus.status(1) is None
    # Offline: requests fail at once, polls probe once a second.
    late = bus.submit(1, ReadTotals())
    assert drain(bus) == [CommandFailed(1, late, "offline")]
    assert bus.data_to_send(now) == b""
    assert bus.next_timeout() == pytest.approx(now + 1.0)
    assert bus.data_to_send(now + 1.0) == b"\x01"
    bus.receive_data(b"\x71", now + 1.01)
    assert drain(bus) == [PumpOnline(1), StatusChanged(1, PumpStatus.CALLING, None)]


def test_requests_go_before_polls_and_get_their_answers() -> None:
    bus = GilbarcoBus([2])
    tx_id = bus.submit(2, ReadTransaction())
    totals_id = bus.submit(2, ReadTotals())
    money_id = bus.submit(2, ReadRunningMoney())
    assert bus.data_to_send(0.0) == b"\x42"
    bus.receive_data(TRANSACTION[:20], 0.05)
    bus.receive_data(TRANSACTION[20:], 0.06)
    assert bus.data_to_send(0.06) == b"\x52"
    totals = TOTALS_ONE_HOSE
    bus.receive_data(totals, 0.2)
    assert bus.data_to_send(0.2) == b"\x62"
    bus.receive_data(bytes.fromhex("E0 E0 E0 E5 E2 E0"), 0.21)
    done = done_of(drain(bus))
    assert [d.request_id for d in done] == [tx_id, totals_id, money_id]
    answers = [d.answer for d in done]
    assert isinstance(answers[0], Transaction) and answers[0].money == 25000
    assert isinstance(answers[1], PumpTotals) and answers[1].hoses[0].volume == 12345678
    assert answers[2] == RunningMoney(25000)
    assert bus.data_to_send(0.21) == b"\x02"  # then polls again


def test_garbage_before_an_answer_is_noise_and_the_answer_still_counts() -> None:
    bus = GilbarcoBus([2])
    request = bus.submit(2, ReadTransaction())
    bus.data_to_send(0.0)
    bus.receive_data(b"\x00\x13" + TRANSACTION, 0.05)
    events = drain(bus)
    assert noise_of(events)
    assert done_of(events)[0].request_id == request


def test_a_bad_checksum_is_a_miss_and_the_request_goes_again() -> None:
    bus = GilbarcoBus([2])
    request = bus.submit(2, ReadTransaction())
    assert bus.data_to_send(0.0) == b"\x42"
    bad = bytearray(TRANSACTION)
    bad[-2] ^= 1
    bus.receive_data(bytes(bad), 0.05)
    assert bus.data_to_send(0.05) == b""  # the rest of a bad answer is let pass first
    bus.handle_timeout(0.2)
    assert bus.stats.checksum_errors == 1 and bus.stats.bad_answers == 1
    assert bus.data_to_send(0.2) == b"\x42"
    bus.receive_data(TRANSACTION, 0.25)
    events = drain(bus)
    assert done_of(events)[0].request_id == request
    assert bus.is_online(2)


def test_a_status_from_another_pump_is_a_bad_answer() -> None:
    bus = GilbarcoBus([1])
    bus.data_to_send(0.0)
    bus.receive_data(b"\x62", 0.01)
    bus.handle_timeout(LATE)
    assert bus.stats.bad_answers == 1 and bus.status(1) is None


def test_a_block_goes_after_ready_for_data_then_a_pause() -> None:
    bus = GilbarcoBus([1], timing=Timing(pause=0.1))
    preset = PresetBlock("money", 10000)
    request = bus.submit(1, SendBlock(preset))
    assert bus.data_to_send(0.0) == b"\x21"
    bus.receive_data(b"\xd1", 0.01)
    assert bus.next_timeout() == 0.01
    block = bus.data_to_send(0.01)
    assert block == bytes.fromhex("FF E4 F2 F4 F8 E0 E0 E0 E0 E1 E0 FB E3 F0")
    assert bus.data_to_send(0.02) == b""
    bus.handle_timeout(0.05)
    assert done_of(drain(bus)) == []  # still pausing
    bus.handle_timeout(0.01 + 14 * 11 / 5787 + 0.1)
    assert done_of(drain(bus)) == [CommandDone(1, request, None)]
    # READY_FOR_DATA is the answer to DATA_FOLLOWS, not the pump's status.
    assert bus.status(1) is None


def test_a_pump_not_ready_for_data_fails_the_block() -> None:
    bus = GilbarcoBus([1])
    request = bus.submit(1, SendBlock(PresetBlock("volume", 2000)))
    bus.data_to_send(0.0)
    bus.receive_data(b"\x91", 0.01)
    events = drain(bus)
    assert CommandFailed(1, request, "not ready for data (status 9)") in events
    assert StatusChanged(1, PumpStatus.FUELLING, None) in events
    assert bus.is_online(1)


def test_special_function_answer_and_a_pump_that_does_not_know_it() -> None:
    bus = GilbarcoBus([2], echo=True)
    request = bus.submit(2, ReadSpecialFunction(10))
    assert bus.data_to_send(0.0) == b"\x22"
    bus.receive_data(b"\x22\xd2", 0.01)
    assert bus.data_to_send(0.01) == SPECIAL_010
    bus.receive_data(SPECIAL_010 + NOZZLE_RECORD[:7], 0.05)
    bus.receive_data(NOZZLE_RECORD[7:], 0.06)
    done = done_of(drain(bus))
    answer = SpecialFunctionAnswer((HexRecord.from_bytes(NOZZLE_RECORD),))
    assert done == [CommandDone(2, request, answer)]
    # A function the pump does not answer: no retry, and the pump stays online.
    unknown = bus.submit(2, ReadSpecialFunction(1))
    bus.data_to_send(0.1)
    bus.receive_data(b"\x22\xd2", 0.11)
    bus.data_to_send(0.11)
    bus.handle_timeout(LATE)
    assert CommandFailed(2, unknown, "no answer") in drain(bus)
    assert bus.is_online(2)


def test_all_stop_goes_first_and_needs_no_answer() -> None:
    bus = GilbarcoBus([1, 2])
    bus.submit(1, Authorize())
    bus.submit(2, Stop())
    stop_all = bus.submit(None, AllStop())
    assert bus.data_to_send(0.0) == b"\xfc"
    bus.handle_timeout(LATE)
    assert drain(bus) == [CommandDone(None, stop_all, None)]
    assert bus.data_to_send(LATE) == b"\x11"
    bus.handle_timeout(2 * LATE)
    assert bus.data_to_send(2 * LATE) == b"\x32"
    with pytest.raises(ValueError):
        bus.submit(1, AllStop())
    with pytest.raises(ValueError):
        bus.submit(None, Stop())
    with pytest.raises(ValueError):
        bus.submit(3, Stop())


def test_cancel_and_connection_lost() -> None:
    bus = GilbarcoBus([1])
    first = bus.submit(1, ReadTotals())
    second = bus.submit(1, ReadTotals())
    assert bus.data_to_send(0.0) == b"\x51"
    assert not bus.cancel(first)  # on the wire already
    assert bus.cancel(second)
    assert not bus.cancel(second)
    stop = bus.submit(None, AllStop())
    bus.connection_lost(0.1)
    events = drain(bus)
    assert CommandFailed(1, first, "line down") in events
    assert CommandFailed(None, stop, "line down") in events
    assert PumpOffline(1) in events


def test_eight_digit_mode_answers() -> None:
    bus = GilbarcoBus([2], mode=DigitsMode.EIGHT)
    request = bus.submit(2, ReadRunningMoney())
    bus.data_to_send(0.0)
    bus.receive_data(bytes.fromhex("E0 E0 E0 E5 E2 E0"), 0.01)
    assert done_of(drain(bus)) == []
    bus.receive_data(bytes.fromhex("E1 E0"), 0.02)
    done = done_of(drain(bus))
    assert done == [CommandDone(2, request, RunningMoney(1025000, DigitsMode.EIGHT))]


def test_constructor_checks() -> None:
    for pumps in ([], [1, 1], [0], [17]):
        with pytest.raises(ValueError):
            GilbarcoBus(pumps)
    with pytest.raises(ValueError):
        Timing(status=0.01)


_REQUESTS = st.sampled_from(
    [ReadTransaction(), ReadTotals(), ReadRunningMoney(), ReadSpecialFunction(10),
     SendBlock(PresetBlock("money", 500)), Authorize(), Stop()]
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.binary(max_size=40), st.floats(0, 0.5), _REQUESTS), max_size=25),
    st.booleans(),
    st.sampled_from(list(DigitsMode)),
)
def test_any_bytes_give_events_only(
    steps: list[tuple[bytes, float, object]], echo: bool, mode: DigitsMode
) -> None:
    bus = GilbarcoBus([1, 2], echo=echo, mode=mode)
    now = 0.0
    for data, delay, request in steps:
        if request is not None and bus.is_online(1):
            bus.submit(1, request)  # type: ignore[arg-type]
        bus.data_to_send(now)
        bus.receive_data(data, now)
        now += delay
        bus.handle_timeout(now)
        for event in drain(bus):
            assert isinstance(
                event,
                StatusChanged | CommandDone | CommandFailed | PumpOnline | PumpOffline | LineNoise,
            )


def test_an_echo_on_a_line_set_to_no_echo_is_named() -> None:
    bus = GilbarcoBus([2])
    request = bus.submit(2, ReadTransaction())
    assert bus.data_to_send(0.0) == b"\x42"
    bus.receive_data(b"\x42" + TRANSACTION, 0.05)
    events = drain(bus)
    assert noise_of(events)[0].error.reason == "an echo on a line without echo"
    assert [d.request_id for d in done_of(events)] == [request]
    assert bus.stats.echoes_unexpected == 1
