"""The announcement queue: what is said next, and what is never said. Sans-I/O.

One speaker can say one thing at a time, a few seconds each, while a busy forecourt produces
announcements faster than that. The queue decides, with the time passed in:

- priorities: alarms first, then warnings, then customers waiting, then finished sales;
  first come first said within a priority;
- de-duplication: the same text offered again within `dedupe` of its first offer is said once
  (two events describing one fact, a flapping alarm);
- quiet hours: a local-time window in which only alarms, or nothing, are said; what is refused
  is dropped, not kept for the morning;
- bounds: at most `size` waiting; a newcomer at least as urgent as the least urgent waiting
  pushes out the oldest of those, and an announcement that waited longer than `max_delay` is
  dropped (except alarms): "3号枪已授权" said a minute late points at the wrong customer.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum, StrEnum

from .settings import QuietAllow, QuietHours, SpeechSettings


class Priority(IntEnum):
    """Lower is said first."""

    ALARM = 0  # safety: a pump alarm, water in a tank
    WARNING = 1  # someone should act soon: low stock, a gauge offline
    SERVICE = 2  # a customer waits: nozzle authorized, app order ready
    SALE = 3  # a sale is done


@dataclass(frozen=True)
class Announcement:
    text: str  # what is said, numbers already as Chinese numerals
    priority: Priority
    kind: str = "notice"  # a short tag for logs and WAV file names: "sale", "authorized", ...


class Verdict(StrEnum):
    QUEUED = "queued"
    DUPLICATE = "duplicate"  # the same text was offered within the de-duplication window
    QUIET = "quiet"  # refused during quiet hours
    FULL = "full"  # the queue is full of announcements at least as urgent


@dataclass(frozen=True)
class _Waiting:
    announcement: Announcement
    offered_at: datetime
    order: int  # offer order, for first come first said within a priority


class AnnouncementQueue:
    def __init__(
        self,
        *,
        size: int = SpeechSettings.queue_size,
        dedupe: timedelta = SpeechSettings.dedupe,
        max_delay: timedelta = SpeechSettings.max_delay,
        quiet_hours: QuietHours | None = None,
        quiet_allow: QuietAllow = QuietAllow.ALARMS,
    ) -> None:
        if size < 1:
            raise ValueError("the queue holds at least one announcement")
        self._size = size
        self._dedupe = dedupe
        self._max_delay = max_delay
        self._quiet_hours = quiet_hours
        self._quiet_allow = quiet_allow
        self._waiting: list[_Waiting] = []
        self._recent: dict[str, datetime] = {}  # text -> when it was first accepted
        self._order = 0
        # Why announcements were not said: verdicts, plus "evicted" and "stale".
        self.dropped: Counter[str] = Counter()

    @classmethod
    def from_settings(cls, settings: SpeechSettings) -> AnnouncementQueue:
        return cls(size=settings.queue_size, dedupe=settings.dedupe,
                   max_delay=settings.max_delay, quiet_hours=settings.quiet_hours,
                   quiet_allow=settings.quiet_allow)

    def __len__(self) -> int:
        return len(self._waiting)

    def quiet(self, now: datetime) -> bool:
        """Whether `now` (local time of the station) is within quiet hours."""
        return self._quiet_hours is not None and now.time() in self._quiet_hours

    def offer(self, announcement: Announcement, now: datetime) -> Verdict:
        verdict = self._judge(announcement, now)
        if verdict is not Verdict.QUEUED:
            self.dropped[verdict] += 1
            return verdict
        if len(self._waiting) >= self._size:
            worst = max(self._waiting,
                        key=lambda w: (w.announcement.priority, -w.order))
            if announcement.priority > worst.announcement.priority:
                self.dropped[Verdict.FULL] += 1
                return Verdict.FULL
            self._waiting.remove(worst)
            self.dropped["evicted"] += 1
        if self._dedupe > timedelta(0):
            self._recent[announcement.text] = now
        self._order += 1
        self._waiting.append(_Waiting(announcement, now, self._order))
        return Verdict.QUEUED

    def _judge(self, announcement: Announcement, now: datetime) -> Verdict:
        if self.quiet(now) and not (
            self._quiet_allow is QuietAllow.ALARMS and announcement.priority is Priority.ALARM
        ):
            return Verdict.QUIET
        # Forget texts whose window has passed, so the map stays as small as the window.
        self._recent = {text: at for text, at in self._recent.items()
                        if now - at < self._dedupe}
        if announcement.text in self._recent:
            return Verdict.DUPLICATE
        return Verdict.QUEUED

    def next(self, now: datetime) -> Announcement | None:
        """The next announcement to say, or None; stale ones are dropped on the way."""
        while self._waiting:
            first = min(self._waiting, key=lambda w: (w.announcement.priority, w.order))
            self._waiting.remove(first)
            late = now - first.offered_at > self._max_delay
            if late and first.announcement.priority is not Priority.ALARM:
                self.dropped["stale"] += 1
                continue
            return first.announcement
        return None
