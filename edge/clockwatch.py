"""Noticing that the wall clock was stepped (an NTP sync after boot, a dead RTC battery, a person).

Sales, shifts and the audit log are stamped with the wall clock, so a step shows in their times:
a sale at 09:00 followed by one at 08:00, or a shift that seems to last a day. Nothing the station
promises depends on it (order, timeouts and expiry run on the monotonic clock and the event seq),
but whoever reads the times later must be able to see where the clock jumped. The station logs
each step with its size and counts them in /api/v1/health and /metrics.

Sans-I/O: the two clocks are passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ClockWatch"]

# Chrony slews small errors smoothly; a difference this large between the two clocks' progress is a
# step, not drift or scheduling jitter on a busy machine.
STEP_THRESHOLD = 2.0


@dataclass
class ClockWatch:
    threshold: float = STEP_THRESHOLD
    steps: int = 0
    last_step: float | None = None  # seconds, + forwards
    _offset: float | None = None  # wall - monotonic at the last look

    def observe(self, wall: float, monotonic: float) -> float | None:
        """The step since the last look, in seconds, when the wall clock jumped; else None."""
        offset = wall - monotonic
        previous, self._offset = self._offset, offset
        if previous is None or abs(offset - previous) < self.threshold:
            return None
        step = offset - previous
        self.steps += 1
        self.last_step = step
        return step
