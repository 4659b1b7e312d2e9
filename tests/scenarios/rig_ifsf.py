"""The IFSF rigs: the project's IFSF dispenser simulator (simulator/ifsf/) on this machine's
loopback, heartbeats broadcast to 127.255.255.255 on a free UDP port.

- ``ifsf/tqc``: two dispensers on one LAN, Censtar TQC boards: pump 1 is fuelling point 2 of
  node 1 (whose point 1 is not configured and stays closed), pump 2 is fuelling point 1 of
  node 2.
- ``ifsf/one-board``: one TQC board, its two fuelling points the two pumps (a two-sided
  dispenser: both go silent together).
- ``ifsf/dit``: DIT dispensers, a node per nozzle: pump 1 on nodes 11 and 12, pump 2 on 13
  and 14.
- ``ifsf/bitmask``: the TQC rig with Current_Log_Noz sent as a bitmask.
- ``ifsf/milli``: the TQC rig counting millilitres and prices to 3 places (3/2/3).
- ``ifsf/release-without-preset``: boards that take a plain release for a fill-up
  (``full = "release"``).
- ``ifsf/many-messages-per-read``: boards that take every message of a TCP read.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from types import TracebackType
from typing import Self

from domain.equipment import LineConfig, NozzleConfig, PumpConfig
from domain.fuelling import Decimals
from drivers.ifsf.config import FullMode, IfsfLineSettings, IfsfPumpSettings, Member, members
from drivers.ifsf.messages import NozzleForm
from simulator.ifsf import IfsfSimulator, SimulatedNode, run_ifsf_simulator
from simulator.metering import Decimals as NodeDecimals
from tests.scenarios.rig import FLOW, Fill

HEARTBEAT = 0.5  # seconds: a silent node is offline after 1.5 s
PRODUCTS = {"92": 92, "95": 95}


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Variant:
    layout: str = "tqc"  # "tqc", "one-board" or "dit"
    form: NozzleForm = NozzleForm.NUMBER
    decimals: Decimals = field(default_factory=Decimals)
    release_without_preset: bool = False
    one_message_per_read: bool = True


VARIANTS: dict[str, Variant] = {
    "tqc": Variant(),
    "one-board": Variant(layout="one-board"),
    "dit": Variant(layout="dit"),
    "bitmask": Variant(form=NozzleForm.BITMASK),
    "milli": Variant(decimals=Decimals(volume=3, amount=2, price=3)),
    "release-without-preset": Variant(release_without_preset=True),
    "many-messages-per-read": Variant(one_message_per_read=False),
}


class IfsfRig:
    protocol = "ifsf"
    counters_shared = False

    def __init__(self, variant: str) -> None:
        self.name = f"ifsf/{variant}"
        self.variant = VARIANTS[variant]
        self.shares_link = self.variant.layout == "one-board"
        self.decimals = self.variant.decimals
        if self.decimals.price == 3:
            self.prices = {1: Decimal("7.505"), 2: Decimal("8.025")}
        else:
            self.prices = {1: Decimal("7.50"), 2: Decimal("8.02")}
        self.udp_port = _free_udp_port()
        self._stack = AsyncExitStack()
        self.sim: IfsfSimulator | None = None
        self._pumps = self._configure()

    def _settings(self, number: int) -> IfsfPumpSettings:
        layout = self.variant.layout
        if layout == "dit":
            return IfsfPumpSettings(nodes=(10 + 2 * number - 1, 10 + 2 * number))
        if layout == "one-board":
            return IfsfPumpSettings(node=1, fuelling_point=number)
        return IfsfPumpSettings(node=number, fuelling_point=3 - number)

    def _configure(self) -> list[PumpConfig]:
        nozzles = {1: (1, 2), 2: (3, 4)}
        return [PumpConfig(number, "lan1",
                           tuple(NozzleConfig(station, logical, "92" if logical == 1 else "95")
                                 for logical, station in enumerate(stations, start=1)),
                           decimals=self.decimals, settings=self._settings(number))
                for number, stations in nozzles.items()]

    def line(self) -> LineConfig:
        full = FullMode.RELEASE if self.variant.release_without_preset else FullMode.AUTO
        return LineConfig("lan1", "ifsf", IfsfLineSettings(
            udp_port=self.udp_port, heartbeat_interval=timedelta(seconds=HEARTBEAT),
            heartbeat_to="127.255.255.255", listen=("127.0.0.1", 0),
            nozzle_form=self.variant.form, full=full,
            reply_timeout=timedelta(seconds=2), products=dict(PRODUCTS)))

    def pumps(self) -> Sequence[PumpConfig]:
        return self._pumps

    def _nodes(self) -> list[SimulatedNode]:
        # The boards start with other prices than the scenarios program: set_prices must work.
        prices = {92: Decimal("7.00"), 95: Decimal("8.00")}
        v, d = self.variant, self.decimals

        def node(number: int, fps: dict[int, dict[int, int]]) -> SimulatedNode:
            return SimulatedNode(number, fps, prices, flow_lpm=FLOW,
                                 ramp_seconds=Decimal("0.3"), nozzle_form=v.form,
                                 decimals=NodeDecimals(d.volume, d.amount, d.price),
                                 release_needs_preset=not v.release_without_preset)

        if v.layout == "dit":
            return [node(number, {1: {1: 92 if number % 2 else 95}})
                    for number in (11, 12, 13, 14)]
        both = {1: 92, 2: 95}
        if v.layout == "one-board":
            return [node(1, {1: both, 2: both})]
        return [node(1, {1: both, 2: both}), node(2, {1: both})]

    async def __aenter__(self) -> Self:
        self.sim = await self._stack.enter_async_context(run_ifsf_simulator(
            self._nodes(), udp_port=self.udp_port, heartbeat_interval=HEARTBEAT,
            heartbeat_destination="127.255.255.255",
            one_message_per_read=self.variant.one_message_per_read))
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._stack.aclose()

    def _sim(self) -> IfsfSimulator:
        assert self.sim is not None
        return self.sim

    def _members(self, pump: int) -> tuple[Member, ...]:
        return members(self._pumps[pump - 1])

    def _nodes_of(self, pump: int) -> list[int]:
        return sorted({member.node.node for member in self._members(pump)})

    def _at(self, pump: int, logical: int) -> tuple[int, int, int]:
        """The node, fuelling point and IFSF nozzle of a pump's logical nozzle."""
        for member in self._members(pump):
            if logical in member.nozzles:
                return member.node.node, member.fp, member.nozzles[logical]
        raise ValueError(f"pump {pump} has no nozzle {logical}")

    def lift(self, pump: int, logical: int) -> None:
        self._sim().lift(*self._at(pump, logical))

    def hang(self, pump: int, logical: int) -> None:
        self._sim().hang(*self._at(pump, logical))

    def dispensed(self, pump: int) -> Decimal:
        sim = self._sim()
        sim.tick()
        for member in self._members(pump):
            fp = sim.fp(member.node.node, member.fp)
            if fp.filling is not None:
                return Decimal(fp.filling.volume).scaleb(-fp.decimals.volume)
        return Decimal(0)

    def fills(self, pump: int) -> list[Fill]:
        found: list[tuple[float, Fill]] = []
        for member in self._members(pump):
            station = {ifsf: logical for logical, ifsf in member.nozzles.items()}
            fp = self._sim().fp(member.node.node, member.fp)
            d = fp.decimals
            for record in fp.history:
                found.append((record.ended_at, Fill(
                    station[record.nozzle], Decimal(record.volume).scaleb(-d.volume),
                    Decimal(record.amount).scaleb(-d.amount))))
        return [fill for _, fill in sorted(found, key=lambda pair: pair[0])]

    def silence(self, pump: int, silent: bool) -> None:
        for node in self._nodes_of(pump):
            self._sim().set_fault(node, heartbeat=not silent, mute=silent)

    def power_cycle(self, pump: int) -> None:
        for node in self._nodes_of(pump):
            self._sim().power_cycle(node)


RIGS: dict[str, Callable[[], IfsfRig]] = {
    f"ifsf/{name}": (lambda name=name: IfsfRig(name)) for name in VARIANTS
}
