"""In-process fan-out of live events to the console WebSockets (and, later, the cloud link).

Durable events are written to SQLite first and published here only after their commit; pump
state changes are published directly (they are live state, not records). A subscriber that falls
behind loses its oldest live messages and is told so, instead of slowing the controller down.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

Message = dict[str, Any]


class Subscription:
    def __init__(self, maxsize: int) -> None:
        self._queue: asyncio.Queue[Message] = asyncio.Queue(maxsize)
        self.dropped = 0

    def _offer(self, message: Message) -> None:
        if self._queue.full():
            # The console catches up from the next state message; counting keeps it visible.
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(message)

    async def get(self) -> Message:
        return await self._queue.get()

    def get_nowait(self) -> Message | None:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None


class EventHub:
    def __init__(self, *, queue_size: int = 1000) -> None:
        self._subscribers: set[Subscription] = set()
        self._queue_size = queue_size
        self.published = 0

    def publish(self, message: Message) -> None:
        """Deliver without waiting; must be called from the event loop's thread."""
        self.published += 1
        for subscriber in tuple(self._subscribers):
            subscriber._offer(message)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        subscription = Subscription(self._queue_size)
        self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            self._subscribers.discard(subscription)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)
