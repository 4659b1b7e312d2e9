"""``forecourt simulate --protocol gilbarco``: Gilbarco two-wire pumps on a TCP port or a pty.

    forecourt simulate --protocol gilbarco --pumps 4 --echo --control 127.0.0.1:8091
    forecourt simulate --protocol gilbarco --config station.toml --line line2 --pty
    forecourt simulate --protocol gilbarco --pumps 2 --mode 8-digit --no-config-answer

The controller's line then points at ``socket://127.0.0.1:4001`` (or the printed pty path, parity
N). SIGINT or SIGTERM stops it cleanly.
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
from typing import Any

from simulator.gilbarco.control import make_pumps, pumps_from_config, run_gilbarco_simulator
from simulator.gilbarco.pump import EndProfile, GilbarcoPump
from simulator.metering import Decimals

__all__ = ["build_parser", "main", "wants_gilbarco"]

DEFAULT_LISTEN = "127.0.0.1:4001"


def wants_gilbarco(argv: Sequence[str]) -> bool:
    """Whether ``forecourt simulate`` was asked for the Gilbarco protocol."""
    for i, arg in enumerate(argv):
        if arg == "--protocol" and i + 1 < len(argv):
            return argv[i + 1] == "gilbarco"
        if arg.startswith("--protocol="):
            return arg.partition("=")[2] == "gilbarco"
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


def _decimals(text: str) -> Decimals:
    try:
        volume, amount, price = (int(part) for part in text.split(","))
        return Decimals(volume, amount, price)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected VOLUME,AMOUNT,PRICE decimals 0..3, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="forecourt simulate --protocol gilbarco",
        description="Simulated Gilbarco two-wire pumps on one line, over TCP or a pty.",
    )
    parser.add_argument("--protocol", choices=("gilbarco",), default="gilbarco")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--listen", type=_endpoint, metavar="HOST:PORT",
                       help=f"serve the line over TCP (default {DEFAULT_LISTEN}; port 0: any)")
    where.add_argument("--pty", action="store_true", help="serve the line on a new pty (parity N)")
    pumps = parser.add_mutually_exclusive_group()
    pumps.add_argument("--pumps", type=int, default=2, metavar="N", help="pumps 1..N (2)")
    pumps.add_argument("--config", metavar="FILE",
                       help="the pumps of a station config's Gilbarco lines")
    parser.add_argument("--line", metavar="ID", help="with --config: only the pumps of this line")
    parser.add_argument("--hoses-per-pump", type=int, default=2, metavar="N", help="(2)")
    parser.add_argument("--mode", choices=("standard", "8-digit"), default="standard",
                        help="the pumps' digits mode (standard)")
    parser.add_argument("--decimals", type=_decimals, metavar="V,A,P",
                        help="volume, money and price decimals of every pump (2,2,2)")
    parser.add_argument("--echo", action="store_true",
                        help="echo the master's bytes, as a current-loop converter does")
    parser.add_argument("--flow", type=_decimal, default=Decimal("40"), metavar="LPM",
                        help="flow rate in litres per minute (40)")
    parser.add_argument("--no-config-answer", action="store_true",
                        help="the pumps do not answer the configuration special function")
    parser.add_argument("--config-function", type=int, default=1, metavar="NNN",
                        help="the special function that tells the configuration (001)")
    parser.add_argument("--end-without-read", type=float, metavar="S",
                        help="end of sale returns to idle S seconds after the end, read or not")
    parser.add_argument("--end-without-hangup", action="store_true",
                        help="end of sale returns to idle with the nozzle still up")
    parser.add_argument("--no-length-check", action="store_true",
                        help="accept master blocks whose data-length word is wrong")
    parser.add_argument("--line-faithful", action="store_true",
                        help="pace bytes at the line's baud rate (default: as fast as possible)")
    parser.add_argument("--baudrate", type=int, choices=(5760, 5787, 9600), default=5787)
    parser.add_argument("--control", type=_endpoint, metavar="HOST:PORT",
                        help="serve the HTTP control API there")
    parser.add_argument("--seed", type=int, help="seed for the fault dice (replayable runs)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log the line's events")
    return parser


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    end = EndProfile(
        needs_read=args.end_without_read is None,
        needs_hangup=not args.end_without_hangup,
        hold=args.end_without_read if args.end_without_read is not None else 2.0,
    )
    settings: dict[str, Any] = {
        "flow_lpm": args.flow,
        "eight_digits": args.mode == "8-digit",
        "answers_config": not args.no_config_answer,
        "config_function": args.config_function,
        "check_length": not args.no_length_check,
        "end": end,
    }
    if args.decimals is not None and not args.config:
        settings["decimals"] = args.decimals
    return settings


def _pumps(args: argparse.Namespace) -> list[GilbarcoPump]:
    if not 0 <= args.config_function <= 999:
        raise ValueError(f"a special function is 000..999, not {args.config_function}")
    settings = _settings(args)
    if args.config:
        pumps = pumps_from_config(args.config, line=args.line, **settings)
        if not pumps:
            where = f"line {args.line!r}" if args.line else 'a line with protocol = "gilbarco"'
            raise ValueError(f"{args.config}: no [[pumps]] on {where}")
        numbers = [p.number for p in pumps]
        if len(set(numbers)) < len(numbers):
            raise ValueError(f"{args.config}: pumps of several lines share addresses; "
                             "choose one with --line")
        return pumps
    return make_pumps(args.pumps, hoses_per_pump=args.hoses_per_pump, **settings)


async def _serve(args: argparse.Namespace, pumps: Sequence[GilbarcoPump]) -> None:
    host, port = args.listen or _endpoint(DEFAULT_LISTEN)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with AsyncExitStack() as stack:
            sim = await stack.enter_async_context(run_gilbarco_simulator(
                pumps,
                host=host,
                port=port,
                pty=args.pty,
                echo=args.echo,
                line_faithful=args.line_faithful,
                baudrate=args.baudrate,
                control_port=args.control[1] if args.control else None,
                control_host=args.control[0] if args.control else "127.0.0.1",
                seed=args.seed,
            ))
            numbers = ", ".join(str(p.number) for p in pumps)
            pacing = "line-faithful" if args.line_faithful else "unpaced"
            echo = ", echo" if args.echo else ""
            print(f"Gilbarco line on {sim.url} ({args.baudrate} baud, {args.mode} mode, "
                  f"{pacing}{echo}); pumps {numbers}")
            if sim.control_url:
                print(f"control API on {sim.control_url}")
            sys.stdout.flush()
            await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def main(argv: Sequence[str]) -> int:
    """Run ``forecourt simulate --protocol gilbarco`` with ``argv``; the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exit_:
        return int(exit_.code or 0)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        pumps = _pumps(args)
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"forecourt simulate: {error}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(args, pumps))
    except OSError as error:
        print(f"forecourt simulate: {error}", file=sys.stderr)
        return 1
    return 0
