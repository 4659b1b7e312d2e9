"""Bench of one DART line: poll exchange rate, controller CPU and memory, nozzle-lift latency.

    .venv/bin/python bench/bus.py [--seconds N] [--pumps 32] [--lifts K] [--json]

Figures are ratios to a baseline derived in the same run from the line's own speed: one poll
exchange on the wire is a POLL and an EOT, 6 characters of 11 bits (8O1), 6.875 ms at 9600 baud.
Targets are printed beside the figures; nothing here asserts a time.

1. ``DartLine`` in this process, unpaced, against ``forecourt simulate`` in another process (so
   the pumps' CPU is not counted): exchanges per second and this process's CPU per exchange
   (event loop and line thread: what the controller pays to run a line).
2. The same line inside the whole daemon (``forecourt run``): its CPU per exchange and its memory.
3. Line-faithful simulator, daemon, a logged-in WebSocket client: time from a nozzle lift (over
   the simulator's control API) to the ``pump.state`` message showing that nozzle "calling", in
   units of the line's poll cycle (a lift is only seen on the next poll of that pump).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import signal
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from bus_report import render
from harness import (
    BenchError,
    Daemon,
    ForecourtWatch,
    SimulatorProcess,
    daemon,
    free_port,
    machine,
    percentile,
    revision,
    run_and_report,
    simulator,
    station_toml,
)
from websockets.asyncio.client import connect

from drivers.dart import MIN_ADDRESS, Control, ControlFrame, DartLine
from drivers.dart.bus import BITS_PER_CHARACTER

TARGET_CPU_RATIO = 0.02  # controller CPU per exchange, as a share of the exchange's wire time
TARGET_RSS_MB = 80.0  # resident memory of the daemon driving 32 pumps
EXCHANGES_METRIC = "forecourt_line_exchanges_total"
TIMEOUTS_METRIC = "forecourt_line_timeouts_total"
# A lift is made after a quiet spell longer than the daemon's live-state pacing (0.2 s between
# publications), plus a random part of a poll cycle so that lifts fall at every phase of it.
QUIET = 0.3
USER, PIN = "bench", "2468"
PARTS = ("line", "daemon", "latency")

Report = dict[str, Any]


def exchange_wire_time(baudrate: int) -> float:
    """Seconds one idle poll exchange (POLL, then EOT) occupies the wire at ``baudrate``."""
    poll = ControlFrame(MIN_ADDRESS, Control.POLL).to_bytes()
    eot = ControlFrame(MIN_ADDRESS, Control.EOT).to_bytes()
    return (len(poll) + len(eot)) * BITS_PER_CHARACTER / baudrate


# ---------------------------------------------------------------- 1. the line alone


async def bench_line(folder: Path, args: argparse.Namespace, wire: float) -> Report:
    addresses = [MIN_ADDRESS + i for i in range(args.pumps)]
    async with simulator(folder, args.pumps, line_faithful=False, baudrate=args.baudrate) as sim:
        events = 0

        async def drain(line: DartLine) -> None:
            nonlocal events  # read like a controller reads them, so the queue never overflows
            async for _ in line.events():
                events += 1

        # The group outlives the line: the reader ends when the closed line says so.
        async with (asyncio.TaskGroup() as group,
                    DartLine(sim.url, addresses, baudrate=args.baudrate, poll_interval=0.0,
                             name="bench") as line):
            group.create_task(drain(line), name="bench-line-events")
            deadline = time.monotonic() + 10.0
            while not all(line.online.values()):
                sim.child.check_alive()
                if time.monotonic() > deadline:
                    raise BenchError(f"pumps online: {sum(line.online.values())} of "
                                     f"{len(addresses)} after 10 s")
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # past the first status blocks of every pump
            before = line.stats.bus
            cpu, sim_cpu = time.process_time(), sim.child.cpu_seconds()
            wall = time.perf_counter()
            await asyncio.sleep(args.seconds)
            wall = time.perf_counter() - wall
            cpu = time.process_time() - cpu
            sim_cpu = sim.child.cpu_seconds() - sim_cpu
            after = line.stats.bus
    exchanges = after.exchanges - before.exchanges
    if exchanges <= 0:
        raise BenchError("the line made no exchange")
    return {
        "seconds": wall,
        "exchanges": exchanges,
        "exchanges_per_second": exchanges / wall,
        "exchange_time_ms": wall / exchanges * 1e3,
        "exchange_time_ratio": wall / exchanges / wire,
        "cpu_seconds": cpu,
        "cpu_per_exchange_ms": cpu / exchanges * 1e3,
        "cpu_ratio": cpu / exchanges / wire,
        "timeouts": after.timeouts - before.timeouts,
        "events": events,
        "simulator_cpu_share": sim_cpu / wall,
    }


# ---------------------------------------------------------------- 2. the whole daemon


@dataclass(frozen=True)
class Sample:
    """Counters of a running daemon and its simulator at one moment."""

    cpu: float  # daemon CPU seconds
    exchanges: int  # the daemon's own count (metrics)
    timeouts: int  # the daemon's own count (metrics)
    frames: int  # frames received by the simulated pumps
    wall: float

    @classmethod
    async def take(cls, running: Daemon, sim: SimulatorProcess,
                   client: httpx.AsyncClient) -> Sample:
        exchanges = await running.metric(client, EXCHANGES_METRIC)
        timeouts = await running.metric(client, TIMEOUTS_METRIC)
        frames = await sim.frames(client)
        return cls(running.child.cpu_seconds(), int(exchanges), int(timeouts), frames,
                   time.perf_counter())


async def bench_daemon(folder: Path, args: argparse.Namespace, wire: float) -> Report:
    async with simulator(folder, args.pumps, line_faithful=False, baudrate=args.baudrate) as sim:
        api_port = free_port()
        config = folder / "daemon.toml"
        config.write_text(station_toml(line_url=sim.url, db=folder / "daemon.db",
                                       api_port=api_port, pumps=args.pumps,
                                       baudrate=args.baudrate), "utf-8")
        async with (daemon(config, api_port, args.pumps) as running,
                    httpx.AsyncClient(timeout=5.0) as client):
            await asyncio.sleep(args.settle)
            running.child.check_alive()
            first = await Sample.take(running, sim, client)
            await asyncio.sleep(args.seconds)
            last = await Sample.take(running, sim, client)
            memory = running.child.memory_kb()
            threads = len(os.listdir(f"/proc/{running.child.pid}/task"))
    wall, cpu = last.wall - first.wall, last.cpu - first.cpu
    by_metric, by_simulator = last.exchanges - first.exchanges, last.frames - first.frames
    # The daemon's own count is preferred; the simulator's count of frames received (one per
    # idle exchange) stands in when the metric does not move.
    exchanges, source = (by_metric, "metrics") if by_metric > 0 else (by_simulator, "simulator")
    if exchanges <= 0:
        raise BenchError("the daemon made no exchange")
    rss_mb = memory.get("VmRSS", 0) / 1024
    return {
        "seconds": wall,
        "exchanges": exchanges,
        "exchanges_source": source,
        "exchanges_metric": by_metric,
        "frames_at_simulator": by_simulator,
        "exchanges_per_second": exchanges / wall,
        "exchange_time_ms": wall / exchanges * 1e3,
        "exchange_time_ratio": wall / exchanges / wire,
        "cpu_seconds": cpu,
        "cpu_per_exchange_ms": cpu / exchanges * 1e3,
        "cpu_ratio": cpu / exchanges / wire,
        "cpu_share": cpu / wall,
        "timeouts": last.timeouts - first.timeouts,
        "rss_mb": rss_mb,
        "peak_rss_mb": memory.get("VmHWM", 0) / 1024,
        "threads": threads,
    }


# ---------------------------------------------------------------- 3. lift -> WebSocket


def _summary(values: list[float], cycle: float) -> Report:
    median, p95, worst = statistics.median(values), percentile(values, 0.95), max(values)
    return {"median_ms": median * 1e3, "p95_ms": p95 * 1e3, "max_ms": worst * 1e3,
            "median_ratio": median / cycle, "p95_ratio": p95 / cycle, "max_ratio": worst / cycle}


async def bench_latency(folder: Path, args: argparse.Namespace, wire: float,
                        pumps: int) -> Report:
    # Imported here: only this part writes to the station's database before the daemon starts.
    from domain.model import Role
    from edge.store import Store

    cycle = pumps * wire
    rng = random.Random(args.seed)
    lifts: list[float] = []
    hangs: list[float] = []
    requests: list[float] = []
    async with simulator(folder, pumps, line_faithful=True, baudrate=args.baudrate) as sim:
        db, api_port = folder / f"latency-{pumps}.db", free_port()
        with Store.open(db) as store:
            store.upsert_user(USER, role=Role.ATTENDANT, pin=PIN)
        config = folder / f"latency-{pumps}.toml"
        config.write_text(station_toml(line_url=sim.url, db=db, api_port=api_port,
                                       pumps=pumps, baudrate=args.baudrate), "utf-8")
        async with (daemon(config, api_port, pumps) as running,
                    httpx.AsyncClient(timeout=5.0) as client):
            response = await client.post(f"{running.base_url}/api/v1/session",
                                         json={"user": USER, "pin": PIN})
            if response.status_code != 200:
                raise BenchError(f"login refused: {response.status_code} {response.text}")
            token = response.json()["token"]
            ws_url = f"ws://127.0.0.1:{api_port}/api/v1/events?token={token}"
            async with connect(ws_url, open_timeout=5.0, max_queue=None) as socket:
                watch = ForecourtWatch(socket)
                await watch.until(lambda: len(watch.pumps) == pumps and all(
                    v["state"] == "idle" for v in watch.pumps.values()), 30.0, "every pump idle")
                first = await Sample.take(running, sim, client)
                await asyncio.sleep(min(2.0, args.seconds))
                quiet = await Sample.take(running, sim, client)
                timeout = 5.0 + 4 * cycle
                for i in range(args.lifts):
                    pump = 1 + i % pumps
                    nozzle, address = 2 * pump - 1, MIN_ADDRESS + pump - 1
                    base = f"{sim.control_url}/pumps/{address:#x}/nozzles/1"
                    await asyncio.sleep(rng.uniform(QUIET, QUIET + cycle))
                    start = time.perf_counter()
                    (await client.post(f"{base}/lift")).raise_for_status()
                    requests.append(time.perf_counter() - start)
                    seen = await watch.until(watch.nozzle_is(pump, nozzle, "calling"),
                                             timeout, f"nozzle {nozzle} calling")
                    lifts.append(seen - start)
                    await asyncio.sleep(rng.uniform(QUIET, QUIET + cycle))
                    start = time.perf_counter()
                    (await client.post(f"{base}/hang")).raise_for_status()
                    seen = await watch.until(watch.pump_is(pump, "idle"), timeout,
                                             f"pump {pump} idle")
                    hangs.append(seen - start)
                last = await Sample.take(running, sim, client)
    exchanges = quiet.exchanges - first.exchanges
    return {
        "pumps": pumps,
        "lifts": len(lifts),
        "poll_cycle_wire_ms": cycle * 1e3,
        "exchange_time_ms": (quiet.wall - first.wall) / exchanges * 1e3 if exchanges else None,
        "timeouts": last.timeouts - first.timeouts,
        "control_request_median_ms": statistics.median(requests) * 1e3,
        "lift_to_calling": _summary(lifts, cycle),
        "hang_to_idle": _summary(hangs, cycle),
    }


# ---------------------------------------------------------------- command line


def _pump_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 8,32: {text!r}") from None
    if any(not 1 <= n <= 32 for n in counts):
        raise argparse.ArgumentTypeError("1..32 pumps on one line")
    return counts


def _positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
        return value
    return parse


def _parts(text: str) -> set[str]:
    parts = {p.strip() for p in text.split(",") if p.strip()}
    unknown = parts - set(PARTS)
    if unknown or not parts:
        raise argparse.ArgumentTypeError(f"parts are among {','.join(PARTS)}: {text!r}")
    return parts


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench/bus.py", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=_positive(float), default=10.0, metavar="N",
                        help="length of each measuring window (10)")
    parser.add_argument("--pumps", type=int, default=32, choices=range(1, 33), metavar="N",
                        help="pumps on the line for the rate and CPU parts (32)")
    parser.add_argument("--settle", type=_positive(float), default=5.0, metavar="S",
                        help="seconds the daemon runs before it is measured (5)")
    parser.add_argument("--lifts", type=_positive(int), default=20, metavar="K",
                        help="nozzle lifts per station (20)")
    parser.add_argument("--latency-pumps", type=_pump_counts, default=[8], metavar="N,M",
                        help="station sizes for the lift latency, comma separated (8; "
                        "8,32 adds about 35 s)")
    parser.add_argument("--baudrate", type=int, default=9600, choices=(9600, 19200))
    parser.add_argument("--parts", type=_parts, default=set(PARTS), metavar="P,Q",
                        help="which parts to run, comma separated (line,daemon,latency)")
    parser.add_argument("--seed", type=int, default=1, metavar="N",
                        help="seed of the pauses between lifts (1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("-v", "--verbose", action="store_true", help="log the line's events")
    return parser


async def run(args: argparse.Namespace) -> Report:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)  # stop children as on Ctrl-C
    parts = args.parts
    wire = exchange_wire_time(args.baudrate)
    report: Report = {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(), "revision": revision(), "pumps": args.pumps,
        "baudrate": args.baudrate,
        "wire_time_per_exchange_ms": wire * 1e3,
        "targets": {"cpu_ratio": TARGET_CPU_RATIO, "rss_mb": TARGET_RSS_MB},
    }
    # Other work on the machine skews every figure: the load average is kept beside them.
    report["machine"]["load_before"] = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="forecourt-bench-") as name:
        folder = Path(name)
        if "line" in parts:
            report["line"] = await bench_line(folder, args, wire)
        if "daemon" in parts:
            report["daemon"] = await bench_daemon(folder, args, wire)
        if "latency" in parts:
            report["latency"] = [await bench_latency(folder, args, wire, n)
                                 for n in args.latency_pumps]
    report["machine"]["load_after"] = os.getloadavg()[0]
    return report


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_and_report("bus.py", lambda: run(args), render, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
