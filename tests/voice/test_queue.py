"""The announcement queue with a fake clock: priorities, de-duplication, quiet hours, bounds."""

from __future__ import annotations

from datetime import time, timedelta

import pytest

from drivers.voice import (
    Announcement,
    AnnouncementQueue,
    Priority,
    QuietAllow,
    QuietHours,
    Verdict,
)

from .conftest import T0

SALE = Announcement("三号枪加油完成，金额三百元", Priority.SALE, "sale")
ALARM = Announcement("注意，一号加油机紧急停机，请立即处理", Priority.ALARM, "pump_alarm")
STOCK = Announcement("一号油罐九十二号汽油库存不足，请及时订油", Priority.WARNING, "low_stock")
AUTH = Announcement("三号枪已授权，请加油", Priority.SERVICE, "authorized")


def said(queue: AnnouncementQueue, at: timedelta = timedelta(0)) -> list[str]:
    out = []
    while (item := queue.next(T0 + at)) is not None:
        out.append(item.text)
    return out


def test_alarms_before_warnings_before_customers_before_sales() -> None:
    queue = AnnouncementQueue()
    for item in (SALE, AUTH, STOCK, ALARM):
        assert queue.offer(item, T0) is Verdict.QUEUED
    assert said(queue) == [ALARM.text, STOCK.text, AUTH.text, SALE.text]


def test_first_come_first_said_within_a_priority() -> None:
    queue = AnnouncementQueue()
    texts = [f"{n}号枪加油完成" for n in range(1, 6)]
    for text in texts:
        queue.offer(Announcement(text, Priority.SALE), T0)
    assert said(queue) == texts


def test_the_same_text_within_the_window_is_said_once() -> None:
    queue = AnnouncementQueue(dedupe=timedelta(seconds=10))
    assert queue.offer(ALARM, T0) is Verdict.QUEUED
    assert queue.offer(ALARM, T0 + timedelta(seconds=9.9)) is Verdict.DUPLICATE
    assert said(queue) == [ALARM.text]
    # Measured from the first offer: a repeat does not extend the window.
    assert queue.offer(ALARM, T0 + timedelta(seconds=10)) is Verdict.QUEUED
    assert queue.dropped[Verdict.DUPLICATE] == 1


def test_different_texts_are_not_duplicates_and_zero_window_turns_it_off() -> None:
    queue = AnnouncementQueue(dedupe=timedelta(seconds=10))
    assert queue.offer(SALE, T0) is Verdict.QUEUED
    assert queue.offer(AUTH, T0) is Verdict.QUEUED
    off = AnnouncementQueue(dedupe=timedelta(0))
    assert [off.offer(SALE, T0), off.offer(SALE, T0)] == [Verdict.QUEUED, Verdict.QUEUED]


def test_quiet_hours_across_midnight_let_only_alarms_through() -> None:
    queue = AnnouncementQueue(quiet_hours=QuietHours.parse("22:00-07:00"),
                              quiet_allow=QuietAllow.ALARMS)
    night = T0.replace(hour=23, minute=30)
    assert queue.offer(SALE, night) is Verdict.QUIET
    assert queue.offer(STOCK, night) is Verdict.QUIET
    assert queue.offer(ALARM, night) is Verdict.QUEUED
    early = T0.replace(hour=6, minute=59)
    assert queue.offer(AUTH, early) is Verdict.QUIET
    morning = T0.replace(hour=7, minute=0)
    assert queue.offer(AUTH, morning) is Verdict.QUEUED
    assert said(queue, at=morning - T0) == [ALARM.text, AUTH.text]
    assert queue.dropped[Verdict.QUIET] == 3


def test_quiet_hours_nothing_silences_alarms_too() -> None:
    queue = AnnouncementQueue(quiet_hours=QuietHours.parse("12:00-14:00"),
                              quiet_allow=QuietAllow.NOTHING)
    assert queue.offer(ALARM, T0.replace(hour=13)) is Verdict.QUIET
    assert queue.offer(ALARM, T0.replace(hour=14)) is Verdict.QUEUED


def test_quiet_hours_window() -> None:
    night = QuietHours.parse("22:00-07:00")
    assert time(22, 0) in night and time(3, 0) in night and time(6, 59, 59) in night
    assert time(7, 0) not in night and time(21, 59) not in night and time(12) not in night
    lunch = QuietHours.parse(" 12:00 - 14:30 ")
    assert time(12) in lunch and time(14, 29) in lunch
    assert time(14, 30) not in lunch and time(11, 59) not in lunch
    assert str(lunch) == "12:00-14:30"
    assert QuietHours.parse("7:00-8:00") == QuietHours(time(7), time(8))
    for bad in ("22:00", "24:00-07:00", "7-8", "22:00-22:00", "22:60-07:00", "ten-eleven"):
        with pytest.raises(ValueError):
            QuietHours.parse(bad)


def test_a_full_queue_keeps_the_urgent_and_the_newest() -> None:
    queue = AnnouncementQueue(size=3)
    sales = [Announcement(f"{n}号枪加油完成", Priority.SALE) for n in range(1, 4)]
    for item in sales:
        queue.offer(item, T0)
    # An alarm pushes out the oldest sale; so does a newer sale.
    assert queue.offer(ALARM, T0) is Verdict.QUEUED
    newest = Announcement("9号枪加油完成", Priority.SALE)
    assert queue.offer(newest, T0) is Verdict.QUEUED
    assert len(queue) == 3
    assert queue.dropped["evicted"] == 2
    assert said(queue) == [ALARM.text, sales[2].text, newest.text]


def test_a_queue_full_of_alarms_refuses_a_sale() -> None:
    queue = AnnouncementQueue(size=2)
    queue.offer(ALARM, T0)
    queue.offer(Announcement("注意，二号加油机断电，请立即处理", Priority.ALARM), T0)
    assert queue.offer(SALE, T0) is Verdict.FULL
    assert len(queue) == 2 and queue.dropped[Verdict.FULL] == 1


def test_late_announcements_are_dropped_but_alarms_are_always_said() -> None:
    queue = AnnouncementQueue(max_delay=timedelta(seconds=30))
    queue.offer(AUTH, T0)
    queue.offer(ALARM, T0)
    queue.offer(SALE, T0 + timedelta(seconds=20))
    assert said(queue, at=timedelta(seconds=31)) == [ALARM.text, SALE.text]
    assert queue.dropped["stale"] == 1
