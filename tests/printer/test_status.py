"""Status bytes (ESC/POS DLE EOT n), conditions, alarms and backoff: pure logic."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.printer import (
    Backoff,
    ConditionTracker,
    OfflineCause,
    PaperLevel,
    PrinterCondition,
    StatusByteError,
    decode_offline_cause,
    decode_online,
    decode_paper,
)


def test_printer_status_bit_3_is_offline() -> None:
    assert decode_online(b"\x12") is True
    assert decode_online(b"\x1a") is False


def test_paper_sensor_values_from_the_reference() -> None:
    assert decode_paper(b"\x12") is PaperLevel.ADEQUATE
    assert decode_paper(b"\x1e") is PaperLevel.LOW  # near-end: bits 2 and 3
    assert decode_paper(b"\x72") is PaperLevel.OUT  # end: bits 5 and 6
    assert decode_paper(b"\x7e") is PaperLevel.OUT  # both sensors: the end wins


def test_offline_cause() -> None:
    assert decode_offline_cause(b"\x16") == OfflineCause.COVER_OPEN
    assert decode_offline_cause(b"\x32") == OfflineCause.PAPER_END_STOP
    assert decode_offline_cause(b"\x52") == OfflineCause.ERROR


@pytest.mark.parametrize("reply", [b"", b"\x00", b"\xff", b"\x13", b"\x92", b"A"])
def test_anything_else_is_not_a_status_byte(reply: bytes) -> None:
    with pytest.raises(StatusByteError):
        decode_online(reply)


def test_the_newest_byte_answers() -> None:
    # A late answer to the previous request arrives first.
    assert decode_paper(b"\x12\x72") is PaperLevel.OUT


def test_one_alarm_per_change_of_condition() -> None:
    tracker = ConditionTracker("network 10.0.0.9:9100")
    assert tracker.observe(PrinterCondition.READY, "", 0) is None
    alarm = tracker.observe(PrinterCondition.OFFLINE, "connection refused", 2)
    assert alarm is not None and alarm.event_data() == {
        "printer": "network 10.0.0.9:9100", "alarm": "offline", "previous": "ready",
        "message": "connection refused", "pending_jobs": 2}
    assert tracker.observe(PrinterCondition.OFFLINE, "connection refused", 3) is None
    assert tracker.failures == 2
    alarm = tracker.observe(PrinterCondition.PAPER_OUT, "out of paper", 3)
    assert alarm is not None and alarm.event_data()["alarm"] == "paper_out"
    alarm = tracker.observe(PrinterCondition.READY, "", 0)
    assert alarm is not None and alarm.recovered
    assert alarm.event_data()["alarm"] == "recovered"
    assert alarm.event_data()["previous"] == "paper_out"
    assert tracker.failures == 0


def test_paper_low_prints_but_is_told() -> None:
    tracker = ConditionTracker("p")
    alarm = tracker.observe(PrinterCondition.PAPER_LOW, "paper low", 0)
    assert alarm is not None and alarm.event_data()["alarm"] == "paper_low"
    assert PrinterCondition.PAPER_LOW.prints and tracker.failures == 0


def test_backoff_doubles_up_to_the_cap() -> None:
    backoff = Backoff(first=1.0, cap=60.0, jitter=0.0)
    assert [backoff.delay(n, 0.5) for n in (1, 2, 3, 4, 7, 8, 1000)] == [
        1.0, 2.0, 4.0, 8.0, 60.0, 60.0, 60.0]


def test_backoff_jitter_stays_within_bounds() -> None:
    backoff = Backoff(first=10.0, cap=60.0, jitter=0.2)
    assert backoff.delay(1, 0.0) == pytest.approx(8.0)
    assert backoff.delay(1, 0.999999) == pytest.approx(12.0, abs=1e-4)
    assert backoff.delay(10, 0.999999) == 60.0  # never past the cap


@settings(deadline=None)
@given(st.binary(max_size=4))
def test_any_reply_is_a_status_or_a_status_byte_error(reply: bytes) -> None:
    for decoder in (decode_online, decode_paper, decode_offline_cause):
        with contextlib.suppress(StatusByteError):
            decoder(reply)
