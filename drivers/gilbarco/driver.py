"""The Gilbarco driver behind the registry: config keys, checks, and lines of fuelling points.

``GilbarcoFuellingLine`` owns one ``GilbarcoLine`` (one current loop) and a
``GilbarcoFuellingPoint`` per pump on it. Entering starts one task that owns a task group: the
bus event dispatch, each pump's worker and its running-money reads. Leaving cancels and awaits
it, then closes the port. If the group dies, ``events()`` raises what killed it, so the station
cannot run on with a silent line. The line's stop-all is Gilbarco's own all-stop byte (0xFC).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from decimal import Decimal
from types import TracebackType
from typing import Any, Self

from domain.config_reader import Findings, Table
from domain.equipment import LineConfig, PumpConfig
from domain.fuelling import FuellingPoint, PointEvent

from ..linerunner import LineRunner
from .config import (
    GilbarcoLineSettings,
    GilbarcoPumpSettings,
    check_line,
    read_line,
    read_pump,
)
from .events import LineNoise, PumpOffline, PumpOnline, StatusChanged
from .line import GilbarcoLine, LineStats
from .point import GilbarcoFuellingPoint

__all__ = ["DRIVER", "GilbarcoDriver", "GilbarcoFuellingLine"]

log = logging.getLogger("drivers.gilbarco")


class GilbarcoFuellingLine:
    def __init__(self, line: LineConfig, pumps: Sequence[PumpConfig]) -> None:
        settings: GilbarcoLineSettings = line.settings
        self._id = line.id
        self.gilbarco = GilbarcoLine(
            settings.port, [p.settings.address for p in pumps], baudrate=settings.baudrate,
            parity=settings.parity.value, mode=settings.digits, echo=settings.echo,
            timing=settings.timing, poll_interval=settings.poll_interval.total_seconds(),
            offline_after=settings.offline_after, name=line.id)
        self._runner = LineRunner(line.id)
        self._points = {p.number: GilbarcoFuellingPoint(p, self.gilbarco, settings,
                                                        self._runner.emit)
                        for p in pumps}
        self._by_address = {p.address: p for p in self._points.values()}
        self._group: asyncio.TaskGroup | None = None
        self.noise = 0

    # ------------------------------------------------------------------ FuellingLine

    @property
    def id(self) -> str:
        return self._id

    @property
    def points(self) -> Mapping[int, FuellingPoint]:
        return self._points

    async def __aenter__(self) -> Self:
        if self._runner.started:
            raise RuntimeError(f"line {self._id} runs once")
        await self.gilbarco.__aenter__()
        started = asyncio.get_running_loop().create_future()
        task = self._runner.start(self._run(started))
        await asyncio.wait([started, task], return_when=asyncio.FIRST_COMPLETED)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._runner.stop()
        await self.gilbarco.__aexit__(exc_type, exc, tb)
        for point in self._points.values():
            point.line_down()

    def events(self) -> AsyncIterator[PointEvent]:
        return self._runner.events()

    async def stop_all(self) -> None:
        """0xFC: every pump of the line stops at once."""
        await self.gilbarco.all_stop()

    def health(self) -> Mapping[str, object]:
        stats = self.gilbarco.stats
        return {"connected": stats.connected, "exchanges": stats.bus.exchanges,
                "timeouts": stats.bus.timeouts, "noise": self.noise,
                "checksum_errors": stats.bus.checksum_errors,
                "echo_errors": stats.bus.echo_errors, "port_failures": stats.port_failures}

    @property
    def stats(self) -> LineStats:
        return self.gilbarco.stats

    # ------------------------------------------------------------------ inside

    async def _run(self, started: asyncio.Future[None]) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            for each in self._points.values():
                each.attach(self._spawn)
            started.set_result(None)
            async for event in self.gilbarco.events():
                if isinstance(event, LineNoise):
                    self.noise += 1
                elif isinstance(event, PumpOnline | PumpOffline | StatusChanged):
                    point = self._by_address.get(event.pump)
                    if point is not None:
                        point.bus_event(event)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        assert self._group is not None
        return self._group.create_task(work, name=name)


class GilbarcoDriver:
    """Gilbarco two-wire over a current loop (PROTOCOLS.md, "Gilbarco two-wire")."""

    name = "gilbarco"
    title = "Gilbarco two-wire (current loop)"

    def read_line(self, table: Table) -> GilbarcoLineSettings | None:
        return read_line(table)

    def read_pump(self, table: Table) -> GilbarcoPumpSettings | None:
        return read_pump(table)

    def check(self, line: LineConfig, pumps: Sequence[PumpConfig], prices: dict[str, Decimal],
              findings: Findings) -> None:
        check_line(line, pumps, prices, findings)

    def resources(self, line: LineConfig) -> Sequence[tuple[str, str]]:
        port: str = line.settings.port
        # Each loop:// is a separate loopback, so it may repeat.
        return () if port == "loop://" else (("port", port),)

    def describe_line(self, line: LineConfig) -> str:
        s: GilbarcoLineSettings = line.settings
        t = s.timing
        config = ("not asked" if s.config_function is None
                  else f"special function {s.config_function:03d}")
        return (f"{s.port}, Gilbarco two-wire at {s.baudrate} baud 8{s.parity.value}1, "
                f"{s.digits} mode, {'echo skipped' if s.echo else 'no echo'}, windows "
                f"{_ms(t.status)}/{_ms(t.transaction)}/{_ms(t.totals)} ms (status/transaction/"
                f"totals), pause {_ms(t.pause)} ms, configuration {config}")

    def describe_pump(self, pump: PumpConfig) -> str:
        s: GilbarcoPumpSettings = pump.settings
        return f"pump {s.address}"

    def open_line(self, line: LineConfig, pumps: Sequence[PumpConfig]) -> GilbarcoFuellingLine:
        return GilbarcoFuellingLine(line, pumps)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


DRIVER = GilbarcoDriver()
