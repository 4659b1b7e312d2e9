"""What every protocol's ``FuellingLine`` shares (``domain.fuelling``).

A line is an async context manager in the shape of aiomqtt's client: entering starts one task
that owns the line's work (in a task group of its own); leaving cancels and awaits it. The
fuelling points emit their neutral events through the runner, in order; ``events()`` yields
them and, when the line's task ends, raises what ended it, so that the station cannot run on
with a silent line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine, Iterable
from typing import Any

from domain.fuelling import FuellingPoint, PointEvent

__all__ = ["LineRunner", "stop_each"]


class _End:
    """Put on the event queue when the line's task ends: ``error`` is what ended it."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class LineRunner:
    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: asyncio.Queue[PointEvent | _End] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def emit(self, event: PointEvent) -> None:
        """A fuelling point's event, for ``events()``."""
        self._queue.put_nowait(event)

    def start(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run the line's work in its own task (once)."""
        if self._task is not None:
            work.close()
            raise RuntimeError(f"line {self.name} runs once")
        self._task = asyncio.get_running_loop().create_task(work, name=f"line-{self.name}")
        self._task.add_done_callback(self._ended)
        return self._task

    @property
    def started(self) -> bool:
        return self._task is not None

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def events(self) -> AsyncIterator[PointEvent]:
        while True:
            item = await self._queue.get()
            if isinstance(item, _End):
                self._queue.put_nowait(item)  # every reader ends
                if item.error is not None:
                    raise item.error
                return
            yield item

    def _ended(self, task: asyncio.Task[None]) -> None:
        error = None if task.cancelled() else task.exception()
        self._queue.put_nowait(_End(error))


async def stop_each(points: Iterable[FuellingPoint], line: str,
                    log: logging.Logger) -> None:
    """Stop every online point at once (a protocol without a stop-all command)."""
    results = await asyncio.gather(*(point.stop() for point in points if point.online),
                                   return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, Exception):
            raise result
        if isinstance(result, Exception):
            log.error("line %s: stop-all: %s", line, result)
