"""Sortable unique ids for sales, events, authorizations and payments.

The layout is UUIDv7 (RFC 9562 section 5.7): 48 bits of Unix milliseconds, then random bits,
written as the usual 36-character UUID text. Ids are unique across stations and across a lost
and re-created database (a per-database counter is not), and their text sorts by creation time.
Within one millisecond, or when the clock steps back, the 12-bit `rand_a` field is used as a
counter (RFC 9562 section 6.2, method 1) so that ids from one store still sort in the order
they were made.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime
from uuid import UUID

_COUNTER_MAX = 0xFFF


class IdMaker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._counter = 0

    def new(self, now: datetime) -> str:
        ms = int(now.timestamp() * 1000)
        with self._lock:
            if ms > self._last_ms:
                self._last_ms = ms
                # Start low in the counter space so that many ids fit in one millisecond.
                self._counter = int.from_bytes(os.urandom(2), "big") & 0x1FF
            else:
                self._counter += 1
                if self._counter > _COUNTER_MAX:
                    # Borrow the next millisecond rather than give up ordering.
                    self._last_ms += 1
                    self._counter = 0
            ms, counter = self._last_ms, self._counter
        rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
        value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b
        return str(UUID(int=value))
