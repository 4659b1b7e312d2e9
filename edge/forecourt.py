"""The forecourt service: every line, every pump, and the way requests reach them.

Each configured line is opened by its protocol's driver (``drivers.registry``): one owner per
line, a ``FuellingPoint`` per dispenser, a ``PumpController`` per fuelling point. The line's
events are dispatched to the controller they concern; changed pumps' live state goes to the hub
in rounds at most ``live_interval`` apart while the forecourt changes.

An async context manager in the shape of aiomqtt's client: entering opens the lines and starts
one task that owns a task group (a dispatch per line, a job loop per pump, the live state);
leaving cancels and awaits it, then closes the lines. If any of them dies, ``wait()`` raises
what killed it: the daemon exits and systemd restarts it, rather than run on half alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any

from domain.accounts import AccountUse
from domain.equipment import LineConfig
from domain.errors import UnknownNozzle, UnknownPump
from domain.fuelling import FuellingLine
from domain.model import Authorization, Preset, rfc3339
from drivers import registry
from edge.config import StationConfig
from edge.ledger import Ledger
from edge.pump import PumpController
from edge.store import StoreUnavailable

log = logging.getLogger(__name__)

SERVICE_WATCH_SECONDS = 2.0  # how soon a release from the command line reaches the pumps


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
        self.lines: dict[str, FuellingLine] = {}
        self.line_configs: dict[str, LineConfig] = {}
        self.pumps: dict[int, PumpController] = {}
        self._nozzles: dict[int, tuple[PumpController, int]] = {}
        self._stack = AsyncExitStack()
        self._runner: asyncio.Task[None] | None = None
        self._dirty: set[int] = set()
        self._wake = asyncio.Event()
        self.prices = PriceBook({}, None)

    async def __aenter__(self) -> Forecourt:
        store = self.ledger.store
        await self.ledger.write(store.seed_prices,
                                {g.code: g.price for g in self.config.grades})
        price_set_id, prices = await self.ledger.read(store.current_price_set)
        self.prices.prices.update(prices)
        self.prices.price_set_id = price_set_id
        stopped = await self.ledger.read(store.pumps_out_of_service)
        try:
            for line_cfg in self.config.lines:
                pumps = list(self.config.pumps_on(line_cfg.id))
                if not pumps:
                    continue  # a line with no pumps stays closed (a config warning)
                driver = registry.driver(line_cfg.protocol)
                line = await self._stack.enter_async_context(driver.open_line(line_cfg, pumps))
                self.lines[line_cfg.id] = line
                self.line_configs[line_cfg.id] = line_cfg
                for pump_cfg in pumps:
                    pump = PumpController(pump_cfg, line.points[pump_cfg.number], self.ledger,
                                          self.prices, clock=self._clock,
                                          on_change=self._changed,
                                          policy=self.config.controller)
                    pump.out_of_service = stopped.get(pump.number)
                    if pump.out_of_service is not None:
                        pump.alarms["out_of_service"] = {
                            "kind": "out_of_service", "reason": pump.out_of_service.reason}
                    self.pumps[pump.number] = pump
                    for nozzle in pump_cfg.nozzles:
                        self._nozzles[nozzle.number] = (pump, nozzle.logical)
            self._runner = asyncio.get_running_loop().create_task(self._run(), name="forecourt")
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner
        await self._stack.aclose()

    async def wait(self) -> None:
        """Until the forecourt stops; raises what killed it (a line or a pump's tasks)."""
        assert self._runner is not None, "enter the forecourt first"
        await asyncio.shield(self._runner)

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for line_id, line in self.lines.items():
                group.create_task(self._dispatch(line), name=f"dispatch-{line_id}")
            for pump in self.pumps.values():
                group.create_task(pump.run(), name=f"pump-{pump.number}")
            group.create_task(self._publish_live(), name="live-state")
            group.create_task(self._watch_service(), name="pump-service")

    async def _dispatch(self, line: FuellingLine) -> None:
        async for event in line.events():
            pump = self.pumps.get(event.pump)
            if pump is not None:
                pump.handle(event)
        raise RuntimeError(f"line {line.id} stopped delivering events")

    async def _watch_service(self) -> None:
        """A pump released from the command line (``forecourt pump release``) is seen here."""
        while True:
            await asyncio.sleep(SERVICE_WATCH_SECONDS)
            try:
                stopped = await self.ledger.read(self.ledger.store.pumps_out_of_service)
            except StoreUnavailable:
                continue
            for number, pump in self.pumps.items():
                if pump.out_of_service is not None and number not in stopped:
                    log.warning("pump %d was released back into service", number)
                    pump.service_restored()

    def _changed(self, pump: PumpController) -> None:
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
                        source: str = "attendant", order_id: str | None = None,
                        account: AccountUse | None = None) -> Authorization:
        pump, logical = self.nozzle(nozzle)
        pump.check_can_authorize(logical)  # answer at once rather than after queued jobs
        return await pump.call(lambda: pump.authorize(logical, preset, source=source, user=user,
                                                      order_id=order_id, account=account))

    async def stop(self, pump_number: int, user: str | None = None) -> None:
        pump = self.pump(pump_number)
        # Not queued behind other jobs: an emergency stop goes out now.
        await pump.stop(user)

    async def stop_all(self, user: str | None = None) -> dict[str, Any]:
        """Stop every pump on every line at once (each line the fastest way it can); every pump
        is latched as stopped until an attendant resets it."""
        for pump in self.pumps.values():
            if pump.latched is None:
                pump.latched = {"by": user, "at": self._clock().isoformat(), "all": True}
                self._changed(pump)
                pump.urgent(pump.raise_alarm("station_stop", user=user, all=True,
                                             message="station-wide emergency stop"))
        results = await asyncio.gather(*(line.stop_all() for line in self.lines.values()),
                                       return_exceptions=True)
        failed = {line_id: str(result) for line_id, result in zip(self.lines, results,
                                                                  strict=True)
                  if isinstance(result, Exception)}
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result
        log.warning("station-wide emergency stop sent to %d line(s)%s", len(self.lines),
                    f"; failed on {failed}" if failed else "")
        return {"lines": len(self.lines), "failed": failed}

    def snapshot(self) -> dict[str, Any]:
        return {"pumps": [self.pumps[n].view() for n in sorted(self.pumps)]}

    def lines_online(self) -> list[dict[str, Any]]:
        result = []
        for line_id, line in self.lines.items():
            points = list(line.points.values())
            online = sum(1 for point in points if point.online)
            result.append({"id": line_id, "protocol": self.line_configs[line_id].protocol,
                           "online": online > 0, "pumps_online": online,
                           "pumps": len(points)})
        return result

    def line_health(self) -> dict[str, dict[str, Any]]:
        return {line_id: dict(line.health()) for line_id, line in self.lines.items()}

    def problems(self) -> list[str]:
        """What makes the forecourt degraded: pumps out of service, blocked or unreadable."""
        found = []
        for pump in self.pumps.values():
            if pump.out_of_service is not None:
                found.append(f"pump {pump.number} out of service ({pump.out_of_service.reason})")
            if pump.blocked:
                found.append(f"pump {pump.number} blocked ({'; '.join(pump.blocked.values())})")
            if "unreadable_fill" in pump.alarms:
                found.append(f"pump {pump.number}: its finished sale cannot be read")
        return found
