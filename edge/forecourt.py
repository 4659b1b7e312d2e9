"""The forecourt service: every line, every pump, and the way requests reach them.

One ``DartLine`` per RS-485 line (one owner per line), one ``PumpController`` per dispenser.
Line events are dispatched to the pump they concern; the changed pumps' live state goes to the
hub in rounds at most ``live_interval`` apart while the forecourt changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any

from domain.errors import UnknownNozzle, UnknownPump
from domain.model import Authorization, Preset, rfc3339
from drivers.dart import (
    DartLine,
    LineNoise,
    PumpOffline,
    PumpOnline,
    PumpReplied,
    PumpRestarted,
)
from edge.config import StationConfig
from edge.ledger import Ledger
from edge.pump import PumpController
from edge.pump_link import PumpLink

log = logging.getLogger(__name__)


class PriceBook:
    """The prices pumps are programmed with, from the store's current price set."""

    def __init__(self, prices: dict[str, Decimal], price_set_id: str | None) -> None:
        self.prices = dict(prices)
        self.price_set_id = price_set_id

    def price(self, grade: str) -> Decimal:
        return self.prices[grade]


class Forecourt:
    def __init__(self, config: StationConfig, ledger: Ledger, *,
                 clock: Callable[[], datetime], live_interval: float = 0.2) -> None:
        self.config = config
        self.ledger = ledger
        self.hub = ledger.hub
        self._clock = clock
        self._live_interval = live_interval
        self.lines: dict[str, DartLine] = {}
        self.pumps: dict[int, PumpController] = {}
        self._by_address: dict[tuple[str, int], PumpController] = {}
        self._nozzles: dict[int, tuple[PumpController, int]] = {}
        self._stack = AsyncExitStack()
        self._tasks: list[asyncio.Task[None]] = []
        self._dirty: set[int] = set()
        self._wake = asyncio.Event()
        self.line_noise: dict[str, int] = {}
        self._closing = False
        self.prices = PriceBook({}, None)

    async def __aenter__(self) -> Forecourt:
        store = self.ledger.store
        await self.ledger.write(store.seed_prices,
                                {g.code: g.price for g in self.config.grades})
        price_set_id, prices = await self.ledger.read(store.current_price_set)
        self.prices.prices.update(prices)
        self.prices.price_set_id = price_set_id
        try:
            for line_cfg in self.config.lines:
                pumps = list(self.config.pumps_on(line_cfg.id))
                if not pumps:
                    continue  # a line with no pumps keeps its port closed (a config warning)
                line = DartLine(line_cfg.port, [p.address for p in pumps],
                                baudrate=line_cfg.baudrate, parity=line_cfg.parity.value,
                                reply_timeout=line_cfg.reply_timeout.total_seconds(),
                                poll_interval=line_cfg.poll_interval.total_seconds(),
                                max_retries=line_cfg.retries,
                                offline_after=line_cfg.offline_after, name=line_cfg.id)
                self.lines[line_cfg.id] = await self._stack.enter_async_context(line)
                self.line_noise[line_cfg.id] = 0
                for pump_cfg in pumps:
                    pump = PumpController(pump_cfg, line, self.ledger, self.prices,
                                          clock=self._clock, on_change=self._changed,
                                          policy=self.config.controller)
                    self.pumps[pump.number] = pump
                    self._by_address[(line_cfg.id, pump.address)] = pump
                    for nozzle in pump_cfg.nozzles:
                        self._nozzles[nozzle.number] = (pump, nozzle.logical)
            for line_id, line in self.lines.items():
                self._spawn(self._dispatch(line_id, line), f"dispatch-{line_id}")
            for pump in self.pumps.values():
                self._spawn(pump.run(), f"pump-{pump.number}")
            self._spawn(self._publish_live(), "live-state")
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self._closing = True  # the lines' closing takes every pump offline: not news
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self._stack.aclose()

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    @staticmethod
    def _task_done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.critical("task %s died", task.get_name(), exc_info=task.exception())

    async def _dispatch(self, line_id: str, line: DartLine) -> None:
        async for event in line.events():
            if isinstance(event, LineNoise):
                self.line_noise[line_id] += 1
                continue
            pump = self._by_address.get((line_id, event.address))
            if pump is None:
                continue
            if isinstance(event, PumpReplied):
                pump.replies(event.replies)
            elif isinstance(event, PumpOnline):
                log.info("pump %d online", pump.number)
                pump.line_online()
            elif isinstance(event, PumpOffline):
                if not self._closing:
                    log.error("pump %d offline (line %s)", pump.number, line_id)
                pump.line_offline()
            elif isinstance(event, PumpRestarted):
                pump.pump_restarted()
            self._changed(pump)

    def _changed(self, pump: PumpLink) -> None:
        self._dirty.add(pump.number)
        self._wake.set()

    async def _publish_live(self) -> None:
        last: dict[int, dict[str, Any]] = {}
        while True:
            await self._wake.wait()
            self._wake.clear()
            dirty, self._dirty = self._dirty, set()
            for number in sorted(dirty):
                view = self.pumps[number].view()
                if last.get(number) != view:
                    last[number] = view
                    now = self._clock().astimezone(self.ledger.zone).replace(microsecond=0)
                    self.hub.publish({"type": "pump.state", "ts": rfc3339(now), "data": view})
            await asyncio.sleep(self._live_interval)

    # ----------------------------------------------------------------- requests

    def nozzle(self, number: int) -> tuple[PumpController, int]:
        try:
            return self._nozzles[number]
        except KeyError:
            raise UnknownNozzle(f"there is no nozzle {number}") from None

    def pump(self, number: int) -> PumpController:
        try:
            return self.pumps[number]
        except KeyError:
            raise UnknownPump(f"there is no pump {number}") from None

    async def authorize(self, nozzle: int, preset: Preset | None, *, user: str | None,
                        source: str = "attendant", order_id: str | None = None) -> Authorization:
        pump, logical = self.nozzle(nozzle)
        pump.check_can_authorize(logical)  # answer at once rather than after queued jobs
        return await pump.call(lambda: pump.authorize(logical, preset, source=source, user=user,
                                                      order_id=order_id))

    async def stop(self, pump_number: int) -> None:
        pump = self.pump(pump_number)
        # Not queued behind other jobs: an emergency stop goes out now.
        await pump.stop()

    def snapshot(self) -> dict[str, Any]:
        return {"pumps": [self.pumps[n].view() for n in sorted(self.pumps)]}

    def lines_online(self) -> list[dict[str, Any]]:
        result = []
        for line_id, line in self.lines.items():
            online = line.online
            result.append({"id": line_id, "online": any(online.values()),
                           "pumps_online": sum(online.values()), "pumps": len(online)})
        return result

