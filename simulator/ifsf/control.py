"""The in-process control interface of the IFSF simulator: the forecourt seen from the
customer's and the technician's side.

``IfsfSimulator`` holds the nodes and their network; tests and the HTTP control API
(``simulator.ifsf.app``) drive it here: lift and hang nozzles, change the flow, cut the power,
break the network, refuse commands, refuse a price with a Chinese result code, switch a
fuelling point to stand-alone, and read back every filling. ``run_ifsf_simulator`` serves it
in the running event loop. ``make_nodes`` builds either layout: a Censtar TQC board (one node,
up to 4 fuelling points) or DIT boards (a node per nozzle).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from drivers.ifsf.address import Lna
from drivers.ifsf.heartbeat import DEFAULT_UDP_PORT
from drivers.ifsf.ids import DISPENSER_SUBNET, ErrorCode, ItemCode
from simulator.metering import Decimals, raw_to_decimal
from simulator.records import SimulationError

from .fuelling_point import BufferedTransaction, SimulatedFp
from .node import SimulatedNode
from .server import IfsfServer, NodeLinkStats

__all__ = [
    "DEFAULT_PRICES",
    "DEFAULT_PRODUCTS",
    "IfsfSimulator",
    "Layout",
    "make_nodes",
    "run_ifsf_simulator",
]

DEFAULT_PRODUCTS = (92, 95, 98)  # product numbers given to nozzles 1, 2, 3... in turn
DEFAULT_PRICES = {92: Decimal("7.50"), 95: Decimal("8.00"), 98: Decimal("8.80")}
PRICE_RESULTS = frozenset({ErrorCode.UNKNOWN_PRODUCT, ErrorCode.BOARD_NO_ANSWER,
                           ErrorCode.PRICE_REFUSED, ErrorCode.PRICE_CHANGED})


class Layout(StrEnum):
    TQC = "tqc"  # one node, up to 4 fuelling points (Censtar 中油TQC)
    DIT = "dit"  # a node per nozzle (中油DIT boards)


def make_nodes(
    layout: Layout = Layout.TQC,
    *,
    nodes: int = 1,
    fps: int = 2,
    nozzles: int = 2,
    first_node: int = 1,
    products: Sequence[int] = DEFAULT_PRODUCTS,
    prices: Mapping[int, Decimal] | None = None,
    **options: Any,
) -> list[SimulatedNode]:
    """TQC: ``nodes`` boards with ``fps`` fuelling points of ``nozzles`` nozzles each.
    DIT: ``nodes`` boards of one fuelling point with one nozzle (a node per nozzle), the
    products in turn. ``options`` go to every ``SimulatedNode``."""
    if first_node < 1 or first_node + nodes - 1 > 255 or nodes < 1:
        raise ValueError("node numbers are 1..255")
    price_list = dict(DEFAULT_PRICES if prices is None else prices)
    made = []
    for index in range(nodes):
        if layout is Layout.TQC:
            if not 1 <= fps <= 4 or not 1 <= nozzles <= 8:
                raise ValueError("a TQC node has 1..4 fuelling points of 1..8 nozzles")
            layout_fps = {fp: {n: products[(n - 1) % len(products)]
                               for n in range(1, nozzles + 1)} for fp in range(1, fps + 1)}
        else:
            layout_fps = {1: {1: products[index % len(products)]}}
        made.append(SimulatedNode(first_node + index, layout_fps, price_list, **options))
    return made


def _code(value: int) -> str:
    return f"0x{value:02X}"


class IfsfSimulator:
    """The simulated nodes, their network and the clock they live by."""

    def __init__(self, server: IfsfServer, clock: Callable[[], float] = time.monotonic) -> None:
        self.server = server
        self.clock = clock
        self.control_url: str | None = None
        self._epoch = time.time() - clock()

    @property
    def nodes(self) -> dict[int, SimulatedNode]:
        return {lna.node: net.node for lna, net in self.server.nets.items()}

    def node(self, node: int) -> SimulatedNode:
        try:
            return self.server.nets[Lna(DISPENSER_SUBNET, node)].node
        except (KeyError, ValueError):
            raise SimulationError(f"no node {node}") from None

    def fp(self, node: int, fp: int) -> SimulatedFp:
        return self.node(node).fp(fp)

    def port(self, node: int) -> int:
        self.node(node)
        return self.server.port(Lna(DISPENSER_SUBNET, node))

    # ---- the customer -------------------------------------------------------------------------

    def lift(self, node: int, fp: int, nozzle: int) -> None:
        self.fp(node, fp).lift(nozzle, self.clock())
        self._changed(node)

    def hang(self, node: int, fp: int, nozzle: int) -> None:
        self.fp(node, fp).hang(nozzle, self.clock())
        self._changed(node)

    def set_flow(self, node: int, fp: int, flow_lpm: Decimal) -> None:
        self.fp(node, fp).set_flow(Decimal(flow_lpm), self.clock())

    def stand_alone(self, node: int, on: bool, fp: int | None = None) -> None:
        """Sell without a release: a lifted nozzle fills and its transaction appears unasked."""
        points = [self.fp(node, fp)] if fp is not None else list(self.node(node).fps.values())
        for point in points:
            point.stand_alone = on

    # ---- the technician and the faults --------------------------------------------------------

    def power_cycle(self, node: int) -> None:
        self.node(node).power_cycle(self.clock())
        self.server.drop_links(Lna(DISPENSER_SUBNET, node))

    def drop_links(self, node: int) -> None:
        self.node(node)
        self.server.drop_links(Lna(DISPENSER_SUBNET, node))

    def set_fault(
        self,
        node: int,
        *,
        heartbeat: bool | None = None,
        mute: bool | None = None,
        refuse: Mapping[int, int] | None = None,
        price_result: Mapping[int, int] | None = None,
    ) -> dict[str, Any]:
        """Change some faults of a node: heartbeats off, no answers, data ids refused with an
        item code, price changes answered with a result code per fuelling point."""
        target = self.node(node)
        net = self.server.nets[target.lna]
        for item_id, code in (refuse or {}).items():
            if not 0 <= item_id <= 255 or code not in set(ItemCode) - {ItemCode.ACCEPTED}:
                raise SimulationError(f"refuse data id 0..255 with an item code 1..6, not "
                                      f"{item_id}: {code}")
        for fp, result in (price_result or {}).items():
            target.fp(fp)
            if result not in PRICE_RESULTS:
                raise SimulationError(f"a price result is 0x35, 0x36, 0x37 or 0x99, not "
                                      f"{_code(result)}")
        if heartbeat is not None:
            net.faults.heartbeat = heartbeat
        if mute is not None:
            net.faults.mute = mute
        if refuse is not None:
            target.faults.refuse = dict(refuse)
        if price_result is not None:
            target.faults.price_result = dict(price_result)
        return self.faults_json(node)

    def clear_faults(self, node: int) -> dict[str, Any]:
        return self.set_fault(node, heartbeat=True, mute=False, refuse={}, price_result={})

    def faults_json(self, node: int) -> dict[str, Any]:
        target = self.node(node)
        net = self.server.nets[target.lna]
        return {
            "heartbeat": net.faults.heartbeat,
            "mute": net.faults.mute,
            "refuse": {str(k): v for k, v in target.faults.refuse.items()},
            "price_result": {str(k): _code(v) for k, v in target.faults.price_result.items()},
        }

    # ---- what happened ------------------------------------------------------------------------

    def tick(self) -> None:
        now = self.clock()
        for node in self.nodes.values():
            node.tick(now)

    def fills(self) -> list[tuple[int, int, BufferedTransaction]]:
        """Every filling of every node as (node, fp, transaction), in the order they ended."""
        self.tick()
        records = [(n, fp.number, t) for n, node in self.nodes.items()
                   for fp in node.fps.values() for t in fp.history]
        return sorted(records, key=lambda r: (r[2].ended_at, r[0], r[1]))

    def fill_json(self, node: int, fp: int, record: BufferedTransaction) -> dict[str, Any]:
        d = self.node(node).decimals
        return {
            "node": node,
            "fp": fp,
            "sequence": f"{record.sequence:04d}",
            "nozzle": record.nozzle,
            "product": record.product,
            "volume": str(raw_to_decimal(record.volume, d.volume)),
            "amount": str(raw_to_decimal(record.amount, d.amount)),
            "price": str(raw_to_decimal(record.price, d.price)),
            "state": record.state.name.lower(),
            "released_by": None if record.controller is None else str(record.controller),
            "volume_total_before": str(raw_to_decimal(record.volume_total_before, d.volume)),
            "volume_total_after": str(raw_to_decimal(record.volume_total_after, d.volume)),
            "started_at": self.wall_time(record.started_at),
            "ended_at": self.wall_time(record.ended_at),
            "end": record.end.value,
        }

    def wall_time(self, now: float) -> str:
        return datetime.fromtimestamp(self._epoch + now, tz=UTC).astimezone().isoformat()

    def state(self) -> dict[str, Any]:
        self.tick()
        return {"nodes": [self.node_json(n) for n in self.nodes]}

    def node_json(self, number: int) -> dict[str, Any]:
        node = self.node(number)
        d = node.decimals
        net = self.server.nets[node.lna]

        def money(raw: int | None, places: int) -> str | None:
            return None if raw is None else str(raw_to_decimal(raw, places))

        stats: NodeLinkStats = net.stats
        return {
            "node": str(node.lna),
            "port": net.port,
            "configuration_needed": node.configuration_needed,
            "controller": None if node.controller is None else str(node.controller),
            "linked": {"in": net.inbound is not None, "out": net.outbound is not None},
            "nozzle_form": node.nozzle_form.value,
            "products": {str(slot): p for slot, p in node.slots.items()},
            "prices": {str(p): money(raw, d.price) for p, raw in node.prices.items()},
            "pending_prices": {str(p): money(raw, d.price)
                               for p, raw in node.pending_prices.items()},
            "price_results": [{"product": p, "fp": fp, "result": _code(c)}
                              for p, fp, c in node.price_results[-20:]],
            "fps": [self._fp_json(fp, d) for fp in node.fps.values()],
            "faults": self.faults_json(number),
            "stats": vars(stats).copy(),
        }

    @staticmethod
    def _fp_json(fp: SimulatedFp, d: Decimals) -> dict[str, Any]:
        volume, amount, _, price = fp.current()
        return {
            "fp": fp.number,
            "state": fp.state.name.lower(),
            "state_code": int(fp.state),
            "stand_alone": fp.stand_alone,
            "lifted": fp.lifted,
            "filling_nozzle": None if fp.filling is None else fp.filling.nozzle,
            "volume": str(raw_to_decimal(volume, d.volume)),
            "amount": str(raw_to_decimal(amount, d.amount)),
            "price": str(raw_to_decimal(price, d.price)),
            "nozzles": {str(n): {"product": p,
                                 "totals": {"volume": str(raw_to_decimal(fp.totals[n][0],
                                                                         d.volume)),
                                            "amount": str(raw_to_decimal(fp.totals[n][1],
                                                                         d.amount))}}
                        for n, p in fp.nozzles.items()},
            "unpaid": [f"{t.sequence:04d}" for t in fp.unpaid],
            "next_sequence": f"{fp.next_sequence:04d}",
            "refused": fp.refused[-20:],
        }

    def _changed(self, node: int) -> None:
        self.node(node).after_customer()
        self.server.poke(Lna(DISPENSER_SUBNET, node))


@asynccontextmanager
async def run_ifsf_simulator(
    nodes: Sequence[SimulatedNode],
    *,
    host: str = "127.0.0.1",
    ports: Sequence[int] = (),
    udp_port: int = DEFAULT_UDP_PORT,
    heartbeat_interval: float = 10.0,
    heartbeat_destination: str = "255.255.255.255",
    controller: tuple[str, int] | None = None,
    one_message_per_read: bool = True,
    control_port: int | None = None,
    control_host: str = "127.0.0.1",
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[IfsfSimulator]:
    """Serve ``nodes`` in the running loop: ``async with run_ifsf_simulator(nodes) as sim:``.

    Each node listens on a TCP port (``ports`` in order, free ones for the rest:
    ``sim.port(node)``) and heartbeats to ``heartbeat_destination``:``udp_port`` every
    ``heartbeat_interval`` (127.255.255.255 reaches every program on this machine). With
    ``control_port`` (0: a free one) the HTTP control API is served too.
    """
    server = IfsfServer(
        nodes, host=host, ports=ports, udp_port=udp_port,
        heartbeat_interval=heartbeat_interval, heartbeat_destination=heartbeat_destination,
        controller=controller, one_message_per_read=one_message_per_read, clock=clock)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(server)
        sim = IfsfSimulator(server, clock)
        if control_port is not None:
            # Imported here: FastAPI and uvicorn are only needed when the HTTP API is served.
            from .app import ControlServer

            control = await stack.enter_async_context(
                ControlServer(sim, control_host, control_port))
            sim.control_url = control.url
        try:
            yield sim
        finally:
            sim.control_url = None
