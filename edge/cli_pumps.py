"""`forecourt pump ...` and `forecourt scan`: pumps from the station PC's command line.

- `forecourt pump release N --reason TEXT --config FILE`: back in service a pump taken out of
  service for impossible figures (audited; a running daemon sees it within seconds).
- `forecourt pump list --config FILE`: pumps out of service and recoveries waiting for review.
- `forecourt scan --line ID --config FILE` (or `--port URL --protocol dart`): which pumps answer
  on a line, with identity, capabilities, decimals and totals, for commissioning. It opens the
  line itself, so the daemon must not be driving it (stop the service first).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edge.cli_users import os_user

if TYPE_CHECKING:
    from edge.config import StationConfig

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

Loader = Callable[..., "StationConfig"]


def cmd_pump_release(args: argparse.Namespace, load: Loader) -> int:
    from edge.audit import CLI
    from edge.store import Store

    config = load(args.config, check_files=False)
    if not any(p.number == args.number for p in config.pumps):
        print(f"there is no pump {args.number} in {args.config}", file=sys.stderr)
        return EXIT_USAGE
    user = args.user or os_user()
    with Store.open(config.storage.path) as store:
        was = store.release_pump(args.number, user=f"cli:{user}", reason=args.reason)
        if was is None:
            print(f"pump {args.number} is not out of service", file=sys.stderr)
            return EXIT_FAILED
        store.audit_append(actor=CLI, action="pump.release", outcome="ok",
                           target=str(args.number),
                           details={"os_user": os_user(), "reason": args.reason,
                                    "was": was.reason})
    print(f"pump {args.number} is back in service (it was out for {was.reason} since "
          f"{was.since:%Y-%m-%d %H:%M} UTC)")
    return EXIT_OK


def cmd_pump_list(args: argparse.Namespace, load: Loader) -> int:
    from edge.store import Store

    config = load(args.config, check_files=False)
    with Store.open(config.storage.path) as store:
        stopped = store.pumps_out_of_service()
        reviews = store.list_reviews(status="open")
    for number, service in sorted(stopped.items()):
        print(f"pump {number}: out of service since {service.since:%Y-%m-%d %H:%M} UTC "
              f"({service.reason})")
    for review in reviews:
        print(f"review {review.id}: pump {review.pump} nozzle {review.nozzle}: totals moved "
              f"{review.volume_delta} L ({review.kind})")
    if not stopped and not reviews:
        print("every pump is in service; no recovery waits for review")
    return EXIT_OK


def cmd_scan(args: argparse.Namespace, load: Loader) -> int:
    from domain.equipment import LineConfig, NozzleConfig, PumpConfig
    from drivers import registry

    config = load(args.config, check_files=False)
    try:
        line = config.line(args.line)
    except KeyError:
        print(f"there is no line {args.line!r} in {args.config}", file=sys.stderr)
        return EXIT_USAGE
    driver = registry.driver(line.protocol)
    pumps = list(config.pumps_on(line.id))
    if args.port is not None:
        settings = line.settings
        with contextlib.suppress(TypeError, ValueError):
            settings = type(settings)(**{**vars(settings), "port": args.port})
        line = LineConfig(line.id, line.protocol, settings, line.where)
    if not pumps:
        print(f"line {line.id} has no pumps in the config to ask", file=sys.stderr)
        return EXIT_USAGE
    # Ask every configured pump for every nozzle it might have (1..8), whatever the config
    # says of its nozzles: commissioning is when the config is not trusted yet.
    probe = [PumpConfig(p.number, p.line, tuple(NozzleConfig(n, n, "?") for n in range(1, 9)),
                        p.authorize, p.decimals, p.settings, p.where) for p in pumps]
    found = asyncio.run(_scan(driver.open_line(line, probe), args.seconds))
    for row in found:
        print(row)
    return EXIT_OK if found else EXIT_FAILED


async def _scan(line: Any, seconds: float) -> list[str]:
    from domain.fuelling import PointOnline

    rows: list[str] = []
    async with line:
        waiting = set(line.points)

        async def until_all_answered() -> None:
            async for event in line.events():
                if isinstance(event, PointOnline):
                    waiting.discard(event.pump)
                    if not waiting:
                        return

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await until_all_answered()
        for number, point in sorted(line.points.items()):
            if not point.online:
                rows.append(f"pump {number}: no answer")
                continue
            identity = await point.identity()
            caps = point.capabilities
            totals = []
            for logical in sorted(caps.nozzles):
                try:
                    reading = await point.read_totals(logical)
                except Exception:  # a nozzle the pump does not have: skipped
                    continue
                totals.append(f"{logical}: {reading.volume} L")
            decimals = caps.decimals
            rows.append(
                f"pump {number}: {identity.protocol} {identity.address}, identity "
                f"{identity.serial or '-'}; prices checked by {', '.join(caps.checks)}; "
                f"suspend {'yes' if caps.suspend else 'no'}; decimals "
                + (f"{decimals.volume}/{decimals.amount}/{decimals.price}" if decimals else
                   "not reported")
                + f"; state {point.state.value if point.state else '?'}; totals "
                + (", ".join(totals) or "none"))
    return rows


def add_parsers(sub: Any, load: Loader) -> None:
    pump = sub.add_parser("pump", help="pumps out of service and recovery reviews")
    pump_sub = pump.add_subparsers(dest="pump_command", required=True, metavar="ACTION")
    release = pump_sub.add_parser("release", help="put a pump taken out of service back")
    release.add_argument("number", type=int)
    release.add_argument("--reason", required=True, help="what was checked, for the audit log")
    release.add_argument("--user", help="who releases it (default: the OS user)")
    release.add_argument("--config", required=True)
    release.set_defaults(func=lambda args: cmd_pump_release(args, load))
    listing = pump_sub.add_parser("list", help="pumps out of service, reviews waiting")
    listing.add_argument("--config", required=True)
    listing.set_defaults(func=lambda args: cmd_pump_list(args, load))
    scan = sub.add_parser("scan", help="which pumps answer on a line, for commissioning (stop "
                                       "the daemon first: it opens the line itself)")
    scan.add_argument("--line", required=True, help="a line id of the config")
    scan.add_argument("--port", help="another port URL for that line (a converter on a laptop)")
    scan.add_argument("--seconds", type=float, default=10.0,
                      help="how long to wait for the pumps to answer")
    scan.add_argument("--config", required=True)
    scan.set_defaults(func=lambda args: cmd_scan(args, load))
