"""The asyncio face of the SQLite store, and the station's fail-safe switch.

Every write goes through one worker thread (one owner for the database file, commits in order)
so the event loop never blocks on an fsync. When the store refuses a write (disk full, database
locked, I/O error) the ledger turns ``writable`` off: the controller then refuses to authorize new
sales and says why, while the pumps keep their own figures. A probe retries the store every few
seconds and turns ``writable`` back on when a real commit succeeds.

Durable events are published to the hub only after their commit.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import tzinfo
from typing import Any, ParamSpec, TypeVar

from domain.model import Event, NewSale, Sale, rfc3339
from edge.hub import EventHub
from edge.store import Store, StoreUnavailable

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


def event_message(event: Event, zone: tzinfo | None = None) -> dict[str, Any]:
    """An event as the WebSocket shows it; times in the station's zone when given."""
    ts = event.ts.astimezone(zone) if zone is not None else event.ts
    return {"type": event.type, "id": event.id, "seq": event.seq, "ts": rfc3339(ts),
            "data": event.data}


class Ledger:
    def __init__(self, store: Store, hub: EventHub, *, probe_interval: float = 2.0,
                 zone: tzinfo | None = None) -> None:
        self.store = store
        self.hub = hub
        self.zone = zone
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger")
        self._probe_interval = probe_interval
        self.writable = True
        self.unavailable_reason: str | None = None
        self._recovered = asyncio.Event()
        self._recovered.set()
        self.sales_recorded = 0
        # Events up to here were already told to the hub (or existed before this start).
        self._published_seq = store.last_seq()
        self._publishing = asyncio.Lock()

    async def write(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a store write in the writer thread; a refusal turns the station fail-safe."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._writer, functools.partial(fn, *args, **kwargs))
        except StoreUnavailable as exc:
            self._unavailable(str(exc))
            raise

    async def read(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    def _unavailable(self, reason: str) -> None:
        if self.writable:
            log.error("store cannot record sales, refusing new authorizations: %s", reason)
        self.writable = False
        self.unavailable_reason = reason
        self._recovered.clear()

    async def wait_writable(self) -> None:
        await self._recovered.wait()

    async def probe(self) -> None:
        """Runs for the daemon's life: turns the station back on once the store writes again."""
        while True:
            await asyncio.sleep(self._probe_interval)
            if self.writable:
                continue
            try:
                await asyncio.get_running_loop().run_in_executor(
                    self._writer, self.store.check_writable)
            except StoreUnavailable as exc:
                self.unavailable_reason = str(exc)
                log.debug("store still unavailable: %s", exc)
                continue
            log.info("store writable again, authorizations allowed")
            self.writable = True
            self.unavailable_reason = None
            self._recovered.set()

    async def publish_new(self) -> None:
        """Tell the hub every committed event it has not heard of yet, in seq order.

        Called after any write that appends events; reading back by seq (rather than passing
        events along) keeps the order right when several writers commit in between.
        """
        async with self._publishing:
            while True:
                events = await self.read(self.store.events_since, self._published_seq, 500)
                for event in events:
                    self.hub.publish(event_message(event, self.zone))
                    self._published_seq = event.seq
                if len(events) < 500:
                    return

    async def append_event(self, type_: str, data: dict[str, Any]) -> Event:
        event = await self.write(self.store.append_event, type_, data)
        await self.publish_new()
        return event

    async def record_sale(self, sale: NewSale) -> tuple[Sale, bool]:
        recorded, created = await self.write(self.store.record_sale, sale)
        if created:
            self.sales_recorded += 1
            await self.publish_new()
        return recorded, created

    def close(self) -> None:
        self._writer.shutdown(wait=True)
