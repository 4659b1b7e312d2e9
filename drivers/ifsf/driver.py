"""The IFSF driver behind the registry: config keys, checks, and a LAN of fuelling points.

``IfsfFuellingLine`` owns one ``IfsfNetwork`` (one LAN: heartbeats, two TCP links per node) and
an ``IfsfFuellingPoint`` per pump on it. It is an async context manager in the shape of
aiomqtt's client: entering opens the sockets and starts one task that owns a task group (the
network's event dispatch and every pump's runner); leaving cancels and awaits it, then closes
the sockets. If the dispatch dies, ``events()`` raises what killed it.
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

from ..linerunner import LineRunner, stop_each
from .address import ErrorAddress, Lna
from .config import (
    IfsfLineSettings,
    IfsfPumpSettings,
    check_line,
    members,
    read_line,
    read_pump,
)
from .dispatch import PointRunner
from .events import (
    ConfigurationNeeded,
    LinkNoise,
    NodeOffline,
    NodeOnline,
    Polled,
    Received,
    UnknownNode,
)
from .ids import ErrorId
from .lan import NodeSettings
from .network import IfsfNetwork
from .point import IfsfFuellingPoint
from .prices import NodePrices
from .talk import Talk

__all__ = ["DRIVER", "IfsfDriver", "IfsfFuellingLine"]

log = logging.getLogger("drivers.ifsf")


class IfsfFuellingLine:
    """One IFSF LAN and the station pumps on it."""

    def __init__(self, line: LineConfig, pumps: Sequence[PumpConfig]) -> None:
        settings: IfsfLineSettings = line.settings
        self._id = line.id
        nodes = sorted({m.node for pump in pumps for m in members(pump)})
        interval = settings.heartbeat_interval.total_seconds()
        reply = settings.reply_timeout.total_seconds()
        node_settings = {}
        for node in nodes:
            endpoint = settings.static_nodes.get(node.node)
            node_settings[node] = NodeSettings(
                endpoint=endpoint, heartbeat_interval=interval, reply_timeout=reply,
                status_poll_interval=settings.status_poll_interval.total_seconds()
                if endpoint is not None else None)
        self.network = IfsfNetwork(
            settings.controller, node_settings, udp_port=settings.udp_port,
            heartbeat_interval=interval, heartbeat_destination=settings.heartbeat_to,
            listen=settings.listen, advertise=settings.advertise, name=line.id)
        self.prices = {node: NodePrices(self.network, node) for node in nodes}
        self._runner = LineRunner(line.id)
        self._points = {
            pump.number: IfsfFuellingPoint(pump, settings, Talk(self.network, pump.number),
                                           self.prices, self._runner.emit)
            for pump in pumps}
        self._group: asyncio.TaskGroup | None = None
        self._runners = {number: PointRunner(point, self.network.online, self._spawn)
                         for number, point in self._points.items()}
        self._by_node: dict[Lna, list[PointRunner]] = {}
        for runner in self._runners.values():
            for node in runner.point.nodes:
                self._by_node.setdefault(node, []).append(runner)
        self.noise = 0
        self.strangers = 0

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
        await self.network.__aenter__()
        self._runner.start(self._run())
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._runner.stop()
        await self.network.__aexit__(exc_type, exc, tb)

    def events(self) -> AsyncIterator[PointEvent]:
        return self._runner.events()

    async def stop_all(self) -> None:
        await stop_each(self._points.values(), self._id, log)

    def health(self) -> Mapping[str, object]:
        stats = self.network.stats
        nodes = self.network.nodes
        return {
            "connected": any(self.network.online(n) for n in nodes),
            "nodes": len(nodes),
            "nodes_online": sum(1 for n in nodes if self.network.online(n)),
            "exchanges": sum(s.requests for s in stats.links.values()),
            "timeouts": sum(s.timeouts for s in stats.links.values()),
            "noise": self.noise,
            "strangers": self.strangers,
        }

    # ------------------------------------------------------------------ inside

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        if self._group is None:
            work.close()
            return
        self._group.create_task(work, name=f"{self._id}-{name}")

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            for number, runner in self._runners.items():
                group.create_task(runner.run(), name=f"{self._id}-pump-{number}")
            async for event in self.network.events():
                if isinstance(event, LinkNoise):
                    self.noise += 1
                elif isinstance(event, UnknownNode):
                    self.strangers += 1
                elif isinstance(event, NodeOnline | NodeOffline | ConfigurationNeeded | Polled):
                    for runner in self._by_node.get(event.node, ()):
                        runner.feed(event)
                elif isinstance(event, Received):
                    self._received(event)

    def _received(self, event: Received) -> None:
        address = event.message.address
        if isinstance(address, ErrorAddress):
            value = event.message.value(ErrorId.ERROR_TYPE)
            code = value[-1] if value else address.error
            prices = self.prices.get(event.node)
            if prices is not None:
                prices.result(address.fp, code)
        fp = getattr(address, "fp", None)
        for runner in self._by_node.get(event.node, ()):
            if fp is None or runner.point.follower(event.node, fp) is not None:
                runner.feed(event)


class IfsfDriver:
    """IFSF dispenser application over TCP/IP (PROTOCOLS.md, IFSF)."""

    name = "ifsf"
    title = "IFSF over TCP/IP"

    def read_line(self, table: Table) -> IfsfLineSettings | None:
        return read_line(table)

    def read_pump(self, table: Table) -> IfsfPumpSettings | None:
        return read_pump(table)

    def check(self, line: LineConfig, pumps: Sequence[PumpConfig], prices: dict[str, Decimal],
              findings: Findings) -> None:
        check_line(line, pumps, prices, findings)

    def resources(self, line: LineConfig) -> Sequence[tuple[str, str]]:
        s: IfsfLineSettings = line.settings
        host, port = s.listen
        return (("udp_port", f"UDP port {s.udp_port}"),
                ("listen", f"TCP port {port} on {host}"))

    def describe_line(self, line: LineConfig) -> str:
        s: IfsfLineSettings = line.settings
        static = (", static nodes " + ", ".join(f"1.{n} at {h}:{p}" for n, (h, p) in
                                                 sorted(s.static_nodes.items()))
                  if s.static_nodes else "")
        return (f"IFSF LAN as node {s.controller}, heartbeats on UDP {s.udp_port} to "
                f"{s.heartbeat_to} every {int(s.heartbeat_interval.total_seconds())} s, "
                f"listening on {s.listen[0]}:{s.listen[1]}, Current_Log_Noz as a "
                f"{s.nozzle_form.value}, full as {s.full.value}{static}")

    def describe_pump(self, pump: PumpConfig) -> str:
        s: IfsfPumpSettings = pump.settings
        if s.nodes:
            return "DIT nodes " + ", ".join(f"1.{n}" for n in s.nodes)
        return f"node 1.{s.node} fuelling point {s.fuelling_point}"

    def open_line(self, line: LineConfig, pumps: Sequence[PumpConfig]) -> IfsfFuellingLine:
        return IfsfFuellingLine(line, pumps)


DRIVER = IfsfDriver()
