"""The IFSF dispenser simulator (``simulator.ifsf``) behind the neutral simulated line.

A station pump is a fuelling point of a Censtar TQC board (profile ``tqc``, the default:
consecutive TQC pumps share a board, two fuelling points a board, as a two-sided dispenser) or
a DIT dispenser with a node per nozzle (profile ``dit``). TQC boards are nodes 1, 2, ...; DIT
nodes are numbered from 11 (or after the last board). Each grade gets an IFSF product number
(its code when the code is a number, else the lowest free one) that the line's keys carry as
``[[lines.products]]``.

Everything is on this machine's loopback: each node on a free TCP port of 127.0.0.1, heartbeats
every second to 127.255.255.255 on a free UDP port (docs/ifsf.md: a datagram to
127.255.255.255 reaches every socket bound to 0.0.0.0 with SO_REUSEADDR on that port, as a LAN
broadcast does). Line options (``+``-joined): ``bitmask`` (Current_Log_Noz as a bitmask),
``release-without-preset`` (the boards take a plain release for a fill-up),
``many-messages-per-read``.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal

from domain.fuelling import Decimals
from drivers.ifsf.messages import NozzleForm
from simulator.ifsf import IfsfSimulator, SimulatedFp, SimulatedNode, run_ifsf_simulator
from simulator.ifsf.fuelling_point import TOTAL_MODULO
from simulator.lines.base import Fill, SimPump, grade_numbers
from simulator.metering import Decimals as MeterDecimals
from simulator.metering import raw_to_decimal
from simulator.records import SimulationError

__all__ = ["SIMULATION", "IfsfLine", "IfsfSimulation", "Seat"]

HEARTBEAT_SECONDS = 1
HEARTBEAT_TO = "127.255.255.255"
FIRST_DIT_NODE = 11
FPS_PER_BOARD = 2
MAX_PRODUCT = 99_999_999
LAYOUTS = {"tqc": "a fuelling point of a Censtar TQC board (two a board)",
           "dit": "a DIT dispenser: a node per nozzle"}
OPTIONS = frozenset({"bitmask", "release-without-preset", "many-messages-per-read"})


@dataclass(frozen=True)
class Seat:
    """Where a station pump's nozzle sits: a node, its fuelling point, the IFSF nozzle."""

    node: int
    fp: int
    nozzle: int


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", 0))
        return int(sock.getsockname()[1])


class IfsfLine:
    """An ``IfsfSimulator`` addressed by station pump numbers."""

    protocol = "ifsf"

    def __init__(self, sim: IfsfSimulator, seats: Mapping[int, Mapping[int, Seat]],
                 keys: Mapping[int, dict[str, object]], line_keys: dict[str, object]) -> None:
        self.sim = sim
        self._seats = {pump: dict(s) for pump, s in seats.items()}  # pump -> logical -> seat
        self._keys = dict(keys)
        self._line_keys = line_keys

    @property
    def pumps(self) -> Sequence[int]:
        return list(self._seats)

    @property
    def control_url(self) -> str | None:
        return self.sim.control_url

    def _seat(self, pump: int, logical: int) -> Seat:
        try:
            return self._seats[pump][logical]
        except KeyError:
            raise SimulationError(f"pump {pump} has no nozzle {logical} on this IFSF LAN") from None

    def _points(self, pump: int) -> list[tuple[SimulatedFp, dict[int, int]]]:
        """The pump's fuelling points, each with its IFSF nozzle -> the station's logical."""
        if pump not in self._seats:
            raise SimulationError(f"no pump {pump} on this IFSF LAN")
        found: dict[tuple[int, int], dict[int, int]] = {}
        for logical, seat in self._seats[pump].items():
            found.setdefault((seat.node, seat.fp), {})[seat.nozzle] = logical
        return [(self.sim.fp(node, fp), nozzles) for (node, fp), nozzles in found.items()]

    def summary(self) -> str:
        nodes = ", ".join(f"node {n} on 127.0.0.1:{self.sim.port(n)}" for n in self.sim.nodes)
        return (f"IFSF LAN: {nodes}; heartbeats to {HEARTBEAT_TO}:"
                f"{self._line_keys['udp_port']}")

    def line_keys(self) -> dict[str, object]:
        return dict(self._line_keys)

    def pump_keys(self, pump: int) -> dict[str, object]:
        return dict(self._keys[pump])

    def decimals(self, pump: int) -> Decimals:
        fp, _ = self._points(pump)[0]
        d = fp.decimals
        return Decimals(volume=d.volume, amount=d.amount, price=d.price)

    def nozzles(self, pump: int) -> Sequence[int]:
        return sorted(self._seats[pump])

    def lift(self, pump: int, logical: int) -> None:
        seat = self._seat(pump, logical)
        up = self.nozzle_out(pump)
        if up is not None:
            raise SimulationError(f"nozzle {up} of pump {pump} is already up")
        self.sim.lift(seat.node, seat.fp, seat.nozzle)

    def hang(self, pump: int, logical: int) -> None:
        seat = self._seat(pump, logical)
        self.sim.hang(seat.node, seat.fp, seat.nozzle)

    def nozzle_out(self, pump: int) -> int | None:
        for fp, nozzles in self._points(pump):
            if fp.lifted is not None:
                return nozzles.get(fp.lifted)
        return None

    def dispensing(self, pump: int) -> Decimal | None:
        self.sim.tick()
        for fp, _ in self._points(pump):
            if fp.filling is not None:
                return raw_to_decimal(fp.filling.volume, fp.decimals.volume)
        return None

    def fills(self, pump: int) -> list[Fill]:
        found: list[tuple[float, Fill]] = []
        for fp, nozzles in self._points(pump):
            d = fp.decimals
            for record in fp.history:
                found.append((record.ended_at, Fill(
                    pump, nozzles[record.nozzle], raw_to_decimal(record.volume, d.volume),
                    raw_to_decimal(record.amount, d.amount))))
        return [fill for _, fill in sorted(found, key=lambda pair: pair[0])]

    def meter(self, pump: int, logical: int) -> Decimal:
        seat = self._seat(pump, logical)
        self.sim.tick()
        fp = self.sim.fp(seat.node, seat.fp)
        raw = fp.totals[seat.nozzle][0]
        if fp.filling is not None and fp.filling.nozzle == seat.nozzle:
            raw = (raw + fp.filling.volume) % TOTAL_MODULO
        return raw_to_decimal(raw, fp.decimals.volume)

    def clock(self) -> float:
        return self.sim.clock()


@dataclass
class _Plan:
    nodes: list[SimulatedNode]
    seats: dict[int, dict[int, Seat]]
    keys: dict[int, dict[str, object]]
    products: dict[str, int]


def plan_nodes(pumps: Sequence[SimPump], *, options: frozenset[str] = frozenset(),
               flow_lpm: Decimal = Decimal("40")) -> _Plan:
    """The nodes that carry ``pumps``, and where each pump's nozzles sit on them."""
    unknown = options - OPTIONS
    if unknown:
        raise ValueError(f"unknown IFSF line option(s) {', '.join(sorted(unknown))} "
                         f"(known: {', '.join(sorted(OPTIONS))})")
    products = grade_numbers([n.grade for p in pumps for n in p.nozzles], high=MAX_PRODUCT)
    form = NozzleForm.BITMASK if "bitmask" in options else NozzleForm.NUMBER

    def node(number: int, fps: Mapping[int, Mapping[int, int]], prices: Mapping[int, Decimal],
             d: MeterDecimals) -> SimulatedNode:
        return SimulatedNode(number, fps, prices, decimals=d, nozzle_form=form,
                             flow_lpm=flow_lpm,
                             release_needs_preset="release-without-preset" not in options)

    boards: list[tuple[MeterDecimals, dict[int, dict[int, int]], dict[int, Decimal]]] = []
    seats: dict[int, dict[int, Seat]] = {}
    keys: dict[int, dict[str, object]] = {}
    dit: list[SimPump] = []
    for pump in pumps:
        layout = pump.profile or "tqc"
        if layout not in LAYOUTS:
            raise ValueError(f"pump {pump.number}: unknown IFSF layout {layout!r} "
                             f"(known: {', '.join(LAYOUTS)})")
        if layout == "dit":
            dit.append(pump)
            continue
        d = MeterDecimals(pump.decimals.volume, pump.decimals.amount, pump.decimals.price)
        if not boards or len(boards[-1][1]) == FPS_PER_BOARD or boards[-1][0] != d:
            boards.append((d, {}, {}))
        _, fps, prices = boards[-1]
        fp = len(fps) + 1
        fps[fp] = {n.logical: products[n.grade] for n in pump.nozzles}
        prices.update({products[n.grade]: n.price for n in pump.nozzles})
        seats[pump.number] = {n.logical: Seat(len(boards), fp, n.logical) for n in pump.nozzles}
        keys[pump.number] = {"node": len(boards), "fuelling_point": fp}
    nodes = [node(number, fps, prices, d)
             for number, (d, fps, prices) in enumerate(boards, start=1)]
    next_node = max(FIRST_DIT_NODE, len(boards) + 1)
    for pump in dit:
        d = MeterDecimals(pump.decimals.volume, pump.decimals.amount, pump.decimals.price)
        seats[pump.number] = {}
        numbers: list[int] = []
        for nozzle in sorted(pump.nozzles, key=lambda n: n.logical):
            if nozzle.logical != len(numbers) + 1:
                raise ValueError(f"pump {pump.number}: a DIT pump's nozzles are 1, 2, ...")
            if next_node > 255:
                raise ValueError("more nozzles than an IFSF subnet has nodes")
            product = products[nozzle.grade]
            nodes.append(node(next_node, {1: {1: product}}, {product: nozzle.price}, d))
            seats[pump.number][nozzle.logical] = Seat(next_node, 1, 1)
            numbers.append(next_node)
            next_node += 1
        keys[pump.number] = {"nodes": numbers}
    by_number = {n.lna.node: n for n in nodes}
    for pump in pumps:
        for nozzle in pump.nozzles:
            seat = seats[pump.number][nozzle.logical]
            point = by_number[seat.node].fp(seat.fp)
            volume, amount = nozzle.totals
            point.totals[seat.nozzle] = [int(volume.scaleb(point.decimals.volume)),
                                         int(amount.scaleb(point.decimals.amount))]
    return _Plan(nodes, seats, keys, products)


class IfsfSimulation:
    name = "ifsf"
    title = "IFSF over TCP/IP"

    def profiles(self) -> Mapping[str, str]:
        return dict(LAYOUTS)

    @asynccontextmanager
    async def run(self, pumps: Sequence[SimPump], *, options: str = "",
                  flow_lpm: Decimal = Decimal("40"), seed: int | None = None,
                  control_port: int | None = None) -> AsyncIterator[IfsfLine]:
        chosen = frozenset(o for o in options.split("+") if o)
        plan = plan_nodes(pumps, options=chosen, flow_lpm=flow_lpm)
        udp_port = _free_udp_port()
        line_keys: dict[str, object] = {
            "node": 1, "udp_port": udp_port, "heartbeat_interval_seconds": HEARTBEAT_SECONDS,
            "heartbeat_to": HEARTBEAT_TO, "listen": "127.0.0.1:0",
            "nozzle_form": "bitmask" if "bitmask" in chosen else "number",
            "products": [{"grade": g, "number": n} for g, n in plan.products.items()]}
        if "release-without-preset" in chosen:
            line_keys["full"] = "release"
        async with run_ifsf_simulator(
                plan.nodes, udp_port=udp_port, heartbeat_interval=HEARTBEAT_SECONDS,
                heartbeat_destination=HEARTBEAT_TO,
                one_message_per_read="many-messages-per-read" not in chosen,
                control_port=control_port) as sim:
            yield IfsfLine(sim, plan.seats, plan.keys, line_keys)

    def main(self, argv: Sequence[str]) -> int:
        from simulator.ifsf.cli import main

        return main(list(argv))


SIMULATION = IfsfSimulation()
