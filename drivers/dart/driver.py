"""The DART driver behind the registry: config keys, checks, lines of fuelling points, simulator.

``DartFuellingLine`` owns one ``DartLine`` (one RS-485 bus) and a ``DartFuellingPoint`` per
pump on it. It is an async context manager in the shape of aiomqtt's client: entering starts
one task that owns a task group (the bus event dispatch and each pump's start-up probe);
leaving cancels and awaits it, then closes the port. If the dispatch dies, ``events()`` raises
what killed it, so the station cannot run on with a silent line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from decimal import Decimal
from types import TracebackType
from typing import Self

from domain.config_reader import Findings, Table
from domain.equipment import LineConfig, PumpConfig
from domain.fuelling import FuellingPoint, FuellingPointError, PointEvent
from domain.retry import PUMP_STARTUP

from ..linerunner import LineRunner, stop_each
from .config import DartLineSettings, DartPumpSettings, check_line, read_line, read_pump
from .events import LineNoise, PumpOnline
from .line import DartLine, LineStats
from .point import DartFuellingPoint

__all__ = ["DRIVER", "DartDriver", "DartFuellingLine"]

log = logging.getLogger("drivers.dart")



class DartFuellingLine:
    def __init__(self, line: LineConfig, pumps: Sequence[PumpConfig]) -> None:
        settings: DartLineSettings = line.settings
        self._id = line.id
        addresses = [p.settings.address for p in pumps]
        self.dart = DartLine(
            settings.port, addresses, baudrate=settings.baudrate,
            parity=settings.parity.value,
            reply_timeout=settings.reply_timeout.total_seconds(),
            poll_interval=settings.poll_interval.total_seconds(),
            max_retries=settings.retries, offline_after=settings.offline_after, name=line.id,
            ack_poll=[p.settings.address for p in pumps if p.settings.ack_poll])
        self._runner = LineRunner(line.id)
        self._points = {p.number: DartFuellingPoint(p, self.dart, self._runner.emit)
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
        await self.dart.__aenter__()
        self._runner.start(self._run())
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._runner.stop()
        await self.dart.__aexit__(exc_type, exc, tb)
        for point in self._points.values():
            point.line_down()

    def events(self) -> AsyncIterator[PointEvent]:
        return self._runner.events()

    async def stop_all(self) -> None:
        await stop_each(self._points.values(), self._id, log)

    def health(self) -> Mapping[str, object]:
        stats = self.dart.stats
        return {"connected": stats.connected, "exchanges": stats.bus.exchanges,
                "timeouts": stats.bus.timeouts, "noise": self.noise,
                "crc_errors": stats.bus.crc_errors, "port_failures": stats.port_failures}

    @property
    def stats(self) -> LineStats:
        """The DART bus counters (tests and ``bench/bus.py`` read them)."""
        return self.dart.stats

    # ------------------------------------------------------------------ inside

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            async for event in self.dart.events():
                if isinstance(event, LineNoise):
                    self.noise += 1
                    continue
                point = self._by_address.get(event.address)
                if point is None:
                    continue
                restarts = point.restarts
                point.bus_event(event)
                # A restart is told by TX# 0, or by a pump that lost its prices.
                if isinstance(event, PumpOnline) or point.restarts != restarts:
                    self._bring_up(point)

    def _bring_up(self, point: DartFuellingPoint) -> None:
        if point.probe_task is not None and not point.probe_task.done():
            return
        assert self._group is not None
        point.probe_task = self._group.create_task(self._probe(point),
                                                   name=f"probe-pump-{point.pump}")

    async def _probe(self, point: DartFuellingPoint) -> None:
        """Start-up of one pump: asked again with a backoff while the line hears it."""
        try:
            await PUMP_STARTUP.call_async(
                point.probe, log, f"pump {point.pump} (0x{point.address:02X}) start-up",
                retry_on=(FuellingPointError, TimeoutError), level=logging.WARNING,
                until=lambda: not point.link_up)
        except (FuellingPointError, TimeoutError) as exc:
            log.info("pump %d: start-up stopped, the pump is offline (%s)", point.pump, exc)


class DartDriver:
    """Wayne DART over RS-485 (PROTOCOLS.md, DART)."""

    name = "dart"
    title = "Wayne DART over RS-485"

    def read_line(self, table: Table) -> DartLineSettings | None:
        return read_line(table)

    def read_pump(self, table: Table) -> DartPumpSettings | None:
        return read_pump(table)

    def check(self, line: LineConfig, pumps: Sequence[PumpConfig], prices: dict[str, Decimal],
              findings: Findings) -> None:
        check_line(line, pumps, prices, findings)

    def resources(self, line: LineConfig) -> Sequence[tuple[str, str]]:
        port: str = line.settings.port
        # Each loop:// is a separate loopback, so it may repeat.
        return () if port == "loop://" else (("port", port),)

    def describe_line(self, line: LineConfig) -> str:
        s: DartLineSettings = line.settings
        ms = 1000
        return (f"{s.port}, DART at {s.baudrate} baud 8{s.parity.value}1, reply timeout "
                f"{int(s.reply_timeout.total_seconds() * ms)} ms, poll gap "
                f"{int(s.poll_interval.total_seconds() * ms)} ms, {s.retries} retries, "
                f"offline after {s.offline_after} missed polls")

    def describe_pump(self, pump: PumpConfig) -> str:
        s: DartPumpSettings = pump.settings
        extras = [name for name, on in (("ACKPOLL", s.ack_poll),
                                        ("one command per block", s.one_command_per_block),
                                        ("no price read-back", not s.price_readback)) if on]
        return f"address 0x{s.address:02X}" + "".join(f", {e}" for e in extras)

    def open_line(self, line: LineConfig, pumps: Sequence[PumpConfig]) -> DartFuellingLine:
        return DartFuellingLine(line, pumps)


DRIVER = DartDriver()
