"""``forecourt simulate --protocol ifsf``: IFSF dispenser nodes on the network, for a
controller to drive.

    forecourt simulate --protocol ifsf --nodes 2 --fps 2 --control 127.0.0.1:8091
    forecourt simulate --protocol ifsf --layout dit --nodes 4 --first-node 11
    forecourt simulate --protocol ifsf --heartbeat-to 127.255.255.255 --udp-port 3485
    forecourt simulate --protocol ifsf --config station.toml --line lan1

Each node listens on its own TCP port (printed) and heartbeats to the broadcast address; the
controller's config names the same UDP port, our node number and the nodes. SIGINT or SIGTERM
stops the simulator cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from drivers.ifsf.heartbeat import DEFAULT_UDP_PORT
from drivers.ifsf.messages import NozzleForm
from simulator.metering import Decimals

from .control import DEFAULT_PRICES, Layout, make_nodes, run_ifsf_simulator
from .station import StationNodes, nodes_from_config

__all__ = ["build_parser", "main", "wants_ifsf"]


def wants_ifsf(argv: Sequence[str]) -> bool:
    """Whether ``forecourt simulate`` was asked for the IFSF protocol."""
    for i, arg in enumerate(argv):
        if arg == "--protocol" and i + 1 < len(argv):
            return argv[i + 1] == "ifsf"
        if arg.startswith("--protocol="):
            return arg.partition("=")[2] == "ifsf"
    return False


def _endpoint(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0: {text!r}")
    return value


def _prices(text: str) -> dict[int, Decimal]:
    prices = {}
    for part in text.split(","):
        product, sep, price = part.partition("=")
        if not sep or not product.strip().isdigit():
            raise argparse.ArgumentTypeError(f"expected PRODUCT=PRICE,..., got {text!r}")
        prices[int(product)] = _decimal(price.strip())
    return prices


def _decimals(text: str) -> Decimals:
    parts = text.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"expected VOLUME,AMOUNT,PRICE decimals, got {text!r}")
    try:
        return Decimals(*(int(p) for p in parts))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="forecourt simulate --protocol ifsf",
        description="Simulated IFSF dispenser nodes (Censtar TQC or DIT boards) over TCP/IP.",
    )
    parser.add_argument("--protocol", choices=("ifsf",), default="ifsf")
    parser.add_argument("--config", metavar="FILE",
                        help="take the nodes from a station config's IFSF line (its port, "
                        "interval, nozzle form, products and pumps)")
    parser.add_argument("--line", metavar="ID", help="with --config: which IFSF line")
    parser.add_argument("--layout", choices=[m.value for m in Layout], default="tqc",
                        help="tqc: a node with up to 4 fuelling points; dit: a node per "
                        "nozzle (tqc)")
    parser.add_argument("--nodes", type=int, default=1, metavar="N",
                        help="TQC boards, or DIT nozzles (1)")
    parser.add_argument("--first-node", type=int, default=1, metavar="N",
                        help="node number of the first node, subnet 1 (1)")
    parser.add_argument("--fps", type=int, default=2, metavar="N",
                        help="TQC: fuelling points per node, 1..4 (2)")
    parser.add_argument("--nozzles", type=int, default=2, metavar="N",
                        help="TQC: logical nozzles per fuelling point, 1..8 (2)")
    parser.add_argument("--prices", type=_prices, metavar="PRODUCT=PRICE,...",
                        help="initial prices by product number (92=7.50,95=8.00,98=8.80)")
    parser.add_argument("--decimals", type=_decimals, default=Decimals(),
                        metavar="V,A,P", help="volume, amount and price decimals (2,2,2)")
    parser.add_argument("--host", default="127.0.0.1", help="address the nodes listen on")
    parser.add_argument("--port", type=int, default=0, metavar="PORT",
                        help="TCP port of the first node, the next ones follow (0: free ports)")
    parser.add_argument("--udp-port", type=int, metavar="PORT",
                        help=f"heartbeat port ({DEFAULT_UDP_PORT}; PetroChina boards use 3485)")
    parser.add_argument("--heartbeat-interval", type=float, metavar="S",
                        help="seconds between heartbeats (10)")
    parser.add_argument("--heartbeat-to", metavar="ADDRESS",
                        help="broadcast address of the heartbeats (255.255.255.255; "
                        "127.255.255.255 on one machine)")
    parser.add_argument("--controller", type=_endpoint, metavar="HOST:PORT",
                        help="the controller's listening port, for networks without "
                        "broadcasts (default: learnt from its heartbeat)")
    parser.add_argument("--nozzle-form", choices=[m.value for m in NozzleForm],
                        help="Current_Log_Noz as a number or a bitmask (number)")
    parser.add_argument("--max-unpaid", type=int, default=2, metavar="N",
                        help="unpaid transactions a fuelling point holds (2)")
    parser.add_argument("--release-without-preset", action="store_true",
                        help="take a release without a preset with the nozzle in")
    parser.add_argument("--stand-alone", action="store_true",
                        help="sell without a release (transactions nobody authorized)")
    parser.add_argument("--first-sequence", type=int, default=1, metavar="N",
                        help="first transaction number, 1..9999 (1)")
    parser.add_argument("--flow", type=_decimal, default=Decimal("40"), metavar="LPM",
                        help="flow rate in litres per minute (40)")
    parser.add_argument("--many-messages-per-read", action="store_true",
                        help="take every message of a TCP read (default: the first only, "
                        "as some firmware does)")
    parser.add_argument("--control", type=_endpoint, metavar="HOST:PORT",
                        help="serve the HTTP control API there")
    parser.add_argument("-v", "--verbose", action="store_true", help="log the network's events")
    return parser


def nodes_from_args(args: argparse.Namespace) -> StationNodes:
    """The nodes to serve, and the network settings: from ``--config`` or the options."""
    options: dict[str, Any] = {
        "flow_lpm": args.flow, "max_unpaid": args.max_unpaid,
        "release_needs_preset": not args.release_without_preset,
        "first_sequence": args.first_sequence}
    if args.config:
        station = nodes_from_config(args.config, args.line, **options)
    else:
        if args.line:
            raise ValueError("--line goes with --config")
        nodes = make_nodes(
            Layout(args.layout), nodes=args.nodes, fps=args.fps, nozzles=args.nozzles,
            first_node=args.first_node, prices=args.prices or DEFAULT_PRICES,
            products=tuple(args.prices) if args.prices else (92, 95, 98),
            decimals=args.decimals,
            nozzle_form=NozzleForm(args.nozzle_form or NozzleForm.NUMBER.value), **options)
        station = StationNodes(nodes)
    if args.udp_port is not None:
        station.udp_port = args.udp_port
    if args.heartbeat_interval is not None:
        station.heartbeat_interval = args.heartbeat_interval
    if args.heartbeat_to is not None:
        station.heartbeat_to = args.heartbeat_to
    for node in station.nodes:
        if args.nozzle_form is not None:
            node.nozzle_form = NozzleForm(args.nozzle_form)
        for fp in node.fps.values():
            fp.stand_alone = args.stand_alone
    return station


async def _serve(args: argparse.Namespace, station: StationNodes) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    nodes = station.nodes
    ports = [args.port + i if args.port else station.ports.get(node.lna.node, 0)
             for i, node in enumerate(nodes)]
    try:
        async with run_ifsf_simulator(
            nodes, host=args.host, ports=ports, udp_port=station.udp_port,
            heartbeat_interval=station.heartbeat_interval,
            heartbeat_destination=station.heartbeat_to,
            controller=args.controller, one_message_per_read=not args.many_messages_per_read,
            control_port=args.control[1] if args.control else None,
            control_host=args.control[0] if args.control else "127.0.0.1",
        ) as sim:
            for number, node in sim.nodes.items():
                fps = ", ".join(f"FP{fp.number} nozzles {sorted(fp.nozzles)}"
                                for fp in node.fps.values())
                print(f"IFSF node {node.lna} on {args.host}:{sim.port(number)}: {fps}")
            print(f"heartbeats to {station.heartbeat_to}:{station.udp_port} every "
                  f"{station.heartbeat_interval:g} s")
            if sim.control_url:
                print(f"control API on {sim.control_url}")
            sys.stdout.flush()
            await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def main(argv: list[str]) -> int:
    """Run ``forecourt simulate --protocol ifsf`` with ``argv``; the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        station = nodes_from_args(args)
    except (OSError, ValueError, KeyError, TypeError) as error:  # TOMLDecodeError: ValueError
        print(f"forecourt simulate: {error}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(args, station))
    except OSError as error:  # a port is taken...
        print(f"forecourt simulate: {error}", file=sys.stderr)
        return 1
    return 0
