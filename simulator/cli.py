"""`forecourt simulate`: DART pumps on a TCP port or a pty, for a controller to drive.

    forecourt simulate --pumps 4 --listen 127.0.0.1:4001 --control 127.0.0.1:8090
    forecourt simulate --config station.toml --line line1 --pty --line-faithful
    forecourt simulate --pumps 3 --firmware legacy --firmware 0x52=milli

The controller's config then points its line at `socket://127.0.0.1:4001` (or the printed pty
path, parity N). SIGINT or SIGTERM stops the simulator cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from decimal import Decimal, InvalidOperation

from simulator.control import make_pumps, pumps_from_config, run_simulator
from simulator.firmware import PROFILES, QUIRKS, FirmwarePlan
from simulator.lines.dart import DartLine
from simulator.pump import SimulatedPump
from simulator.traffic import CustomerTraffic, TrafficSettings

__all__ = ["build_parser", "main", "protocol_of", "run_dart"]

DEFAULT_LISTEN = "127.0.0.1:4001"


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


def _epilog() -> str:
    profiles = "\n".join(f"  {p.name:8} {p.summary}" for p in PROFILES.values())
    quirks = "\n".join(f"  {q.value:25} {what}" for q, what in QUIRKS.items())
    return f"firmware profiles:\n{profiles}\n\nquirks (NAME+QUIRK+...):\n{quirks}"


def build_parser() -> argparse.ArgumentParser:
    from simulator.registry import names

    parser = argparse.ArgumentParser(
        prog="forecourt simulate",
        description="Simulated Wayne DART pumps on one line, over TCP or a pty.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--protocol",
        choices=names(),
        default="dart",
        help="the pumps' protocol (dart); --protocol gilbarco --help lists Gilbarco's options, "
        "--protocol ifsf --help IFSF's",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--listen",
        type=_endpoint,
        metavar="HOST:PORT",
        help=f"serve the line over TCP (default {DEFAULT_LISTEN}; port 0 picks a free one)",
    )
    where.add_argument("--pty", action="store_true", help="serve the line on a new pty (parity N)")
    pumps = parser.add_mutually_exclusive_group()
    pumps.add_argument("--pumps", type=int, default=2, metavar="N", help="pumps at 0x50.. (2)")
    pumps.add_argument("--config", metavar="FILE", help="take the pumps from a station config")
    parser.add_argument("--line", metavar="ID", help="with --config: only the pumps of this line")
    parser.add_argument("--nozzles-per-pump", type=int, default=2, metavar="N", help="(2)")
    parser.add_argument(
        "--firmware",
        action="append",
        default=[],
        metavar="[ADDRESS=]NAME[+QUIRK...]",
        help="firmware of every pump, or of the pump at ADDRESS (repeat for several); "
        "rev211 by default",
    )
    parser.add_argument(
        "--flow",
        type=_decimal,
        default=Decimal("40"),
        metavar="LPM",
        help="flow rate in litres per minute (40)",
    )
    parser.add_argument(
        "--programming-delay",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds from prices to 'filling completed' (0)",
    )
    parser.add_argument(
        "--line-faithful",
        action="store_true",
        help="pace answers at the line's baud rate (default: as fast as possible)",
    )
    parser.add_argument("--baudrate", type=int, choices=(9600, 19200), default=9600)
    parser.add_argument(
        "--control", type=_endpoint, metavar="HOST:PORT", help="serve the HTTP control API there"
    )
    parser.add_argument("--seed", type=int, help="seed for faults and traffic (replayable runs)")
    parser.add_argument("--traffic", action="store_true", help="simulated customers at the pumps")
    parser.add_argument(
        "--traffic-interval",
        type=float,
        default=30.0,
        metavar="S",
        help="mean seconds between customers at one pump (30)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log the line's events")
    return parser


def _pumps(args: argparse.Namespace) -> list[SimulatedPump]:
    firmware = FirmwarePlan.parse(args.firmware)
    if args.config:
        pumps = pumps_from_config(
            args.config,
            line=args.line,
            flow_lpm=args.flow,
            programming_delay=args.programming_delay,
            firmware=firmware,
        )
        if not pumps:
            where = f" on line {args.line!r}" if args.line else ""
            raise ValueError(f"{args.config}: no [[pumps]]{where}")
        addresses = [p.address for p in pumps]
        if len(set(addresses)) < len(addresses):
            raise ValueError(
                f"{args.config}: pumps of several lines share addresses; choose one with --line"
            )
        return pumps
    return make_pumps(
        args.pumps,
        nozzles_per_pump=args.nozzles_per_pump,
        flow_lpm=args.flow,
        programming_delay=args.programming_delay,
        firmware=firmware,
    )


async def _serve(args: argparse.Namespace, pumps: Sequence[SimulatedPump]) -> None:
    host, port = args.listen or _endpoint(DEFAULT_LISTEN)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with AsyncExitStack() as stack:
            sim = await stack.enter_async_context(
                run_simulator(
                    pumps,
                    host=host,
                    port=port,
                    pty=args.pty,
                    line_faithful=args.line_faithful,
                    baudrate=args.baudrate,
                    control_port=args.control[1] if args.control else None,
                    control_host=args.control[0] if args.control else "127.0.0.1",
                    seed=args.seed,
                )
            )
            addresses = ", ".join(f"{p.address:#04x} ({p.firmware.spec})" for p in pumps)
            mode = "line-faithful" if args.line_faithful else "unpaced"
            print(f"DART line on {sim.url} ({args.baudrate} baud, {mode}); pumps {addresses}")
            if sim.control_url:
                print(f"control API on {sim.control_url}")
            sys.stdout.flush()
            async with asyncio.TaskGroup() as group:
                customers: asyncio.Task[None] | None = None
                if args.traffic:
                    settings = TrafficSettings(mean_interval=args.traffic_interval)
                    traffic = CustomerTraffic(DartLine.wrap(sim), seed=args.seed, settings=settings)
                    customers = group.create_task(traffic.run(), name="customer-traffic")
                await stop.wait()
                if customers is not None:
                    customers.cancel()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def protocol_of(argv: Sequence[str]) -> str:
    """The ``--protocol`` asked for (``dart`` when none)."""
    for i, arg in enumerate(argv):
        if arg == "--protocol" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--protocol="):
            return arg.partition("=")[2]
    return "dart"


def main(argv: list[str]) -> int:
    """Run `forecourt simulate` with `argv` (the arguments after `simulate`): the simulator of
    the protocol asked for, from the registry; the exit status."""
    from simulator.registry import SIMULATIONS

    name = protocol_of(argv)
    if name not in SIMULATIONS:
        known = ", ".join(SIMULATIONS)
        print(f"forecourt simulate: no simulator for protocol {name!r} (known: {known})",
              file=sys.stderr)
        return 2
    return SIMULATIONS[name].main(argv)


def run_dart(argv: list[str]) -> int:
    """`forecourt simulate [--protocol dart] ...`: the DART simulator; the exit status."""
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
        pumps = _pumps(args)
    except (OSError, ValueError, KeyError, TypeError) as error:  # TOMLDecodeError is a ValueError
        print(f"forecourt simulate: {error}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(args, pumps))
    except OSError as error:  # the port is taken, the pty cannot be made...
        print(f"forecourt simulate: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
