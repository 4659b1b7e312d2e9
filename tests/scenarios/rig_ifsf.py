"""The IFSF rigs: the project's IFSF dispenser simulator (simulator/ifsf/) on this machine's
loopback, heartbeats broadcast to 127.255.255.255 on a free UDP port.

- ``ifsf/tqc``: Censtar TQC boards: pump 1 is fuelling point 2 of node 1 (whose point 1 is not
  configured and stays closed), pump 2 is fuelling point 1 of node 2.
- ``ifsf/dit``: DIT dispensers, a node per nozzle: pump 1 on nodes 11 and 12, pump 2 on 13
  and 14.
- ``ifsf/bitmask``: the TQC rig with Current_Log_Noz sent as a bitmask.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from datetime import timedelta
from decimal import Decimal
from types import TracebackType
from typing import Self

from domain.equipment import LineConfig, NozzleConfig, PumpConfig
from drivers.ifsf.config import IfsfLineSettings, IfsfPumpSettings, Member, members
from drivers.ifsf.messages import NozzleForm
from simulator.ifsf import IfsfSimulator, SimulatedNode, run_ifsf_simulator
from tests.scenarios.rig import FLOW, Fill

HEARTBEAT = 0.5  # seconds: a silent node is offline after 1.5 s
PRODUCTS = {"92": 92, "95": 95}


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", 0))
        return int(sock.getsockname()[1])


class IfsfRig:
    protocol = "ifsf"
    counters_shared = False

    def __init__(self, layout: str, form: NozzleForm = NozzleForm.NUMBER) -> None:
        self.layout = layout
        self.form = form
        self.name = f"ifsf/{layout}" if form is NozzleForm.NUMBER else f"ifsf/{form.value}"
        self.prices = {1: Decimal("7.50"), 2: Decimal("8.02")}
        self.udp_port = _free_udp_port()
        self._stack = AsyncExitStack()
        self.sim: IfsfSimulator | None = None
        self._pumps = self._configure()

    def _configure(self) -> list[PumpConfig]:
        nozzles = {1: (1, 2), 2: (3, 4)}
        pumps = []
        for number, stations in nozzles.items():
            settings = (IfsfPumpSettings(nodes=(10 + 2 * number - 1, 10 + 2 * number))
                        if self.layout == "dit"
                        else IfsfPumpSettings(node=number, fuelling_point=3 - number))
            pumps.append(PumpConfig(
                number, "lan1",
                tuple(NozzleConfig(station, logical, "92" if logical == 1 else "95")
                      for logical, station in enumerate(stations, start=1)),
                settings=settings))
        return pumps

    def line(self) -> LineConfig:
        return LineConfig("lan1", "ifsf", IfsfLineSettings(
            udp_port=self.udp_port, heartbeat_interval=timedelta(seconds=HEARTBEAT),
            heartbeat_to="127.255.255.255", listen=("127.0.0.1", 0), nozzle_form=self.form,
            reply_timeout=timedelta(seconds=2), products=dict(PRODUCTS)))

    def pumps(self) -> Sequence[PumpConfig]:
        return self._pumps

    def _nodes(self) -> list[SimulatedNode]:
        prices = {92: self.prices[1], 95: self.prices[2]}
        options = {"flow_lpm": FLOW, "ramp_seconds": Decimal("0.3"), "nozzle_form": self.form}
        if self.layout == "dit":
            return [SimulatedNode(node, {1: {1: 92 if node % 2 else 95}}, prices, **options)  # type: ignore[arg-type]
                    for node in (11, 12, 13, 14)]
        both = {1: 92, 2: 95}
        return [SimulatedNode(1, {1: both, 2: both}, prices, **options),  # type: ignore[arg-type]
                SimulatedNode(2, {1: both}, prices, **options)]  # type: ignore[arg-type]

    async def __aenter__(self) -> Self:
        self.sim = await self._stack.enter_async_context(run_ifsf_simulator(
            self._nodes(), udp_port=self.udp_port, heartbeat_interval=HEARTBEAT,
            heartbeat_destination="127.255.255.255"))
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._stack.aclose()

    def _sim(self) -> IfsfSimulator:
        assert self.sim is not None
        return self.sim

    def _members(self, pump: int) -> tuple[Member, ...]:
        return members(self._pumps[pump - 1])

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
        for member in self._members(pump):
            self._sim().set_fault(member.node.node, heartbeat=not silent, mute=silent)


RIGS: dict[str, Callable[[], IfsfRig]] = {
    "ifsf/tqc": lambda: IfsfRig("tqc"),
    "ifsf/dit": lambda: IfsfRig("dit"),
    "ifsf/bitmask": lambda: IfsfRig("tqc", NozzleForm.BITMASK),
}
