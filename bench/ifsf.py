"""IFSF beside DART on 8 fuelling points: daemon CPU per message, memory, lift latency.

    .venv/bin/python bench/ifsf.py [--seconds N] [--lifts K] [--json]

In one run, one after the other, the same daemon (``forecourt run``, a real process) drives

1. **IFSF**: 8 fuelling points on 2 simulated Censtar TQC nodes of 4 (``forecourt simulate
   --protocol ifsf`` in its own process, heartbeats broadcast to 127.255.255.255 on a free UDP
   port), and
2. **DART**, the baseline: 8 pumps on a line-faithful DART line (``forecourt simulate --pumps 8
   --line-faithful``: answers paced at 9600 baud, 8O1).

Each gets the same treatment: a console logged in on the WebSocket, a window with every pump
idle, a window with 8 fills running (authorized through the API, a nozzle lifted on each), the
daemon's resident memory, and K nozzle lifts (and hang-ups) timed from the simulator's control
API to the ``pump.state`` message that shows them. The report puts IFSF beside DART as ratios;
nothing here asserts a time.

Messages: IFSF counts every message between controller and nodes, from the simulator's own
counters (TCP messages the nodes received and sent) plus the heartbeats (UDP, counted by this
bench listening on the heartbeat port as a LAN does); the daemon's own request count
(``forecourt_line_exchanges_total``) is printed beside it. DART counts poll exchanges (a request
and its answer) as bench/bus.py does: the daemon's ``forecourt_line_exchanges_total``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import random
import signal
import socket
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from harness import (
    BenchError,
    Daemon,
    ForecourtWatch,
    daemon,
    free_port,
    free_udp_port,
    ifsf_simulator,
    ifsf_station_toml,
    machine,
    percentile,
    revision,
    run_and_report,
    simulator,
    station_toml,
)
from ifsf_report import render
from websockets.asyncio.client import connect

from drivers.dart import MIN_ADDRESS
from drivers.ifsf.heartbeat import HEARTBEAT_SIZE
from drivers.ifsf.ids import CONTROLLER_SUBNET

NODES, FPS = 2, 4  # Censtar TQC boards of 4 fuelling points
PUMPS = NODES * FPS
FLOW_LPM = 40  # both simulators' default
TOP_PRICE = 8.02  # the dearer grade: a preset's litres are at most amount / this
BAUDRATE = 9600
EXCHANGES_METRIC = "forecourt_line_exchanges_total"
TIMEOUTS_METRIC = "forecourt_line_timeouts_total"
FUELLING_METRIC = "forecourt_pump_fuelling"
QUIET = 0.3  # pause before a lift or hang-up: past the daemon's 0.2 s live-state pacing
JITTER = 0.1  # plus a random part, so that lifts fall at every phase of a DART poll cycle
USER, PIN = "bench", "2468"

log = logging.getLogger("bench.ifsf")

Report = dict[str, Any]
Counters = dict[str, float]


# ---------------------------------------------------------------- the two stations


class HeartbeatCount(asyncio.DatagramProtocol):
    """Heartbeats heard on the LAN's UDP port, the controller's and the nodes' apart."""

    def __init__(self) -> None:
        self.controller = 0
        self.nodes = 0

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if len(data) == HEARTBEAT_SIZE:
            if data[6] == CONTROLLER_SUBNET:
                self.controller += 1
            else:
                self.nodes += 1


@asynccontextmanager
async def heartbeat_count(udp_port: int) -> AsyncIterator[HeartbeatCount]:
    # SO_REUSEADDR as the controller and the simulator bind it: a broadcast reaches all three.
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", udp_port))
    transport, count = await asyncio.get_running_loop().create_datagram_endpoint(
        HeartbeatCount, sock=sock)
    try:
        yield count
    finally:
        transport.close()


@dataclass
class Rig:
    """A running station of one protocol: its daemon, how to count its messages, and where
    the simulator's control API lifts pump N's nozzle 1."""

    name: str
    daemon: Daemon
    counters: Callable[[httpx.AsyncClient], Awaitable[Counters]]
    messages: Callable[[Counters, Counters], tuple[int, str, Report]]
    nozzle_url: Callable[[int], str]


async def _metrics(running: Daemon, client: httpx.AsyncClient) -> Counters:
    return {"exchanges": await running.metric(client, EXCHANGES_METRIC),
            "timeouts": await running.metric(client, TIMEOUTS_METRIC),
            "fuelling": await running.metric(client, FUELLING_METRIC)}


def _delta(first: Counters, last: Counters, key: str) -> int:
    return int(last[key] - first[key])


def _prepare(folder: Path) -> tuple[Path, int]:
    # Imported here: only the bench's setup writes to a station's database before it starts.
    from domain.model import Role
    from edge.store import Store

    folder.mkdir()
    db = folder / "station.db"
    with Store.open(db) as store:
        store.upsert_user(USER, role=Role.ATTENDANT, pin=PIN)
    return db, free_port()


@asynccontextmanager
async def ifsf_rig(folder: Path, args: argparse.Namespace) -> AsyncIterator[Rig]:
    db, api_port = _prepare(folder)
    udp_port = free_udp_port()
    async with (heartbeat_count(udp_port) as heard,
                ifsf_simulator(folder, nodes=NODES, fps=FPS, udp_port=udp_port,
                               heartbeat_interval=args.heartbeat_interval,
                               flow_lpm=FLOW_LPM) as sim):
        config = folder / "station.toml"
        config.write_text(ifsf_station_toml(db=db, api_port=api_port, nodes=NODES, fps=FPS,
                                            udp_port=udp_port,
                                            heartbeat_interval=args.heartbeat_interval),
                          "utf-8")
        async with daemon(config, api_port, PUMPS) as running:
            async def counters(client: httpx.AsyncClient) -> Counters:
                found = await _metrics(running, client)
                found.update(await sim.counters(client))
                found.update(heartbeats_controller=heard.controller,
                             heartbeats_nodes=heard.nodes)
                return found

            def messages(first: Counters, last: Counters) -> tuple[int, str, Report]:
                parts = {key: _delta(first, last, key) for key in (
                    "received", "sent", "heartbeats_controller", "heartbeats_nodes",
                    "exchanges", "timeouts", "lost", "undelivered", "errors")}
                total = sum(parts[k] for k in ("received", "sent", "heartbeats_controller",
                                               "heartbeats_nodes"))
                return total, "simulator counters + heartbeats heard", parts

            def nozzle_url(pump: int) -> str:
                node, fp = 1 + (pump - 1) // FPS, 1 + (pump - 1) % FPS
                return f"{sim.control_url}/nodes/{node}/fps/{fp}/nozzles/1"

            yield Rig("IFSF", running, counters, messages, nozzle_url)


@asynccontextmanager
async def dart_rig(folder: Path, args: argparse.Namespace) -> AsyncIterator[Rig]:
    db, api_port = _prepare(folder)
    async with simulator(folder, PUMPS, line_faithful=True, baudrate=BAUDRATE) as sim:
        config = folder / "station.toml"
        config.write_text(station_toml(line_url=sim.url, db=db, api_port=api_port,
                                       pumps=PUMPS, baudrate=BAUDRATE), "utf-8")
        async with daemon(config, api_port, PUMPS) as running:
            async def counters(client: httpx.AsyncClient) -> Counters:
                found = await _metrics(running, client)
                found["frames"] = await sim.frames(client)
                return found

            def messages(first: Counters, last: Counters) -> tuple[int, str, Report]:
                parts = {key: _delta(first, last, key)
                         for key in ("exchanges", "frames", "timeouts")}
                # As bus.py: the daemon's count; the pumps' frames received stand in for it
                # when the metric does not move.
                if parts["exchanges"] > 0:
                    return parts["exchanges"], "metrics", parts
                return parts["frames"], "simulator frames", parts

            def nozzle_url(pump: int) -> str:
                return f"{sim.control_url}/pumps/{MIN_ADDRESS + pump - 1:#x}/nozzles/1"

            yield Rig("DART", running, counters, messages, nozzle_url)


# ---------------------------------------------------------------- what is measured


async def window(rig: Rig, client: httpx.AsyncClient, seconds: float) -> Report:
    """The daemon's CPU and the protocol's messages over ``seconds``."""
    rig.daemon.child.check_alive()
    first = await rig.counters(client)
    cpu, wall = rig.daemon.child.cpu_seconds(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu, wall = rig.daemon.child.cpu_seconds() - cpu, time.perf_counter() - wall
    last = await rig.counters(client)
    messages, source, parts = rig.messages(first, last)
    return {
        "seconds": wall,
        "messages": messages,
        "messages_counted_by": source,
        "counts": parts,
        "messages_per_second": messages / wall,
        "cpu_seconds": cpu,
        "cpu_share": cpu / wall,
        "cpu_per_message_ms": cpu / messages * 1e3 if messages else None,
        "fuelling_at_start": int(first["fuelling"]),
        "fuelling_at_end": int(last["fuelling"]),
    }


def _all(watch: ForecourtWatch, state: str) -> Callable[[], bool]:
    return lambda: len(watch.pumps) == PUMPS and all(
        v["state"] == state for v in watch.pumps.values())


async def fills(rig: Rig, client: httpx.AsyncClient, api: httpx.AsyncClient,
                watch: ForecourtWatch, args: argparse.Namespace) -> Report:
    """Nozzle 1 of every pump authorized and lifted; the window once all 8 fuel; hung up."""
    # Enough money that no fill reaches its preset before the window ends.
    litres = FLOW_LPM / 60 * (args.seconds + 60)
    preset = f"{math.ceil(litres * TOP_PRICE)}.00"
    for pump in range(1, PUMPS + 1):
        response = await api.post(
            f"{rig.daemon.base_url}/api/v1/nozzles/{2 * pump - 1}/authorize",
            json={"preset": {"amount": preset}})
        if response.status_code != 202:
            raise BenchError(f"{rig.name}: pump {pump} not authorized: "
                             f"{response.status_code} {response.text}")
        (await client.post(f"{rig.nozzle_url(pump)}/lift")).raise_for_status()
    await watch.until(_all(watch, "fuelling"), 30.0, "every pump fuelling")
    log.info("%s: %d pumps fuelling", rig.name, PUMPS)
    measured = await window(rig, client, args.seconds)
    for pump in range(1, PUMPS + 1):
        (await client.post(f"{rig.nozzle_url(pump)}/hang")).raise_for_status()
    await watch.until(_all(watch, "idle"), 30.0, "every pump idle after its fill")
    measured["preset_amount"] = preset
    return measured


def _summary(values: list[float]) -> Report:
    return {"median_ms": statistics.median(values) * 1e3,
            "p95_ms": percentile(values, 0.95) * 1e3, "max_ms": max(values) * 1e3}


async def _timed(client: httpx.AsyncClient, url: str, requests: list[float],
                 until: Coroutine[Any, Any, float]) -> tuple[float, float]:
    """POST ``url`` while ``until`` reads the WebSocket: a message is timed when it arrives,
    even before the control API has answered. (start, seen) in ``perf_counter()`` time."""
    waiter = asyncio.ensure_future(until)
    try:
        start = time.perf_counter()
        (await client.post(url)).raise_for_status()
        requests.append(time.perf_counter() - start)
        return start, await waiter
    finally:
        waiter.cancel()


async def latency(rig: Rig, client: httpx.AsyncClient, watch: ForecourtWatch,
                  args: argparse.Namespace, rng: random.Random) -> Report:
    """K lifts of nozzle 1, pump after pump: lift -> ``calling``, hang-up -> ``idle``."""
    lifts: list[float] = []
    hangs: list[float] = []
    requests: list[float] = []
    first = await rig.counters(client)
    for i in range(args.lifts):
        pump = 1 + i % PUMPS
        url = rig.nozzle_url(pump)
        await asyncio.sleep(rng.uniform(QUIET, QUIET + JITTER))
        start, seen = await _timed(client, f"{url}/lift", requests, watch.until(
            watch.nozzle_is(pump, 2 * pump - 1, "calling"), 10.0,
            f"{rig.name} nozzle {2 * pump - 1} calling"))
        lifts.append(seen - start)
        await asyncio.sleep(rng.uniform(QUIET, QUIET + JITTER))
        start, seen = await _timed(client, f"{url}/hang", requests, watch.until(
            watch.pump_is(pump, "idle"), 10.0, f"{rig.name} pump {pump} idle"))
        hangs.append(seen - start)
    last = await rig.counters(client)
    return {"lifts": len(lifts), "timeouts": _delta(first, last, "timeouts"),
            "control_request_median_ms": statistics.median(requests) * 1e3,
            "lift_to_calling": _summary(lifts), "hang_to_idle": _summary(hangs)}


async def measure(rig: Rig, args: argparse.Namespace) -> Report:
    running = rig.daemon
    # Two clients: the attendant's session for the API, none for /metrics (open to
    # anonymous scrapes, not to an attendant's session) and the simulators.
    async with (httpx.AsyncClient(timeout=10.0) as client,
                httpx.AsyncClient(timeout=10.0) as api):
        response = await api.post(f"{running.base_url}/api/v1/session",
                                  json={"user": USER, "pin": PIN})
        if response.status_code != 200:
            raise BenchError(f"login refused: {response.status_code} {response.text}")
        token = response.json()["token"]
        api.headers["Authorization"] = f"Bearer {token}"
        ws_url = running.base_url.replace("http://", "ws://") + f"/api/v1/events?token={token}"
        async with connect(ws_url, open_timeout=5.0, max_queue=None) as ws:
            watch = ForecourtWatch(ws)
            await watch.until(_all(watch, "idle"), 30.0, "every pump idle")
            log.info("%s: every pump idle on the console", rig.name)
            await asyncio.sleep(args.settle)
            report: Report = {"idle": await window(rig, client, args.seconds)}
            log.info("%s: idle window done", rig.name)
            report["fills"] = await fills(rig, client, api, watch, args)
            log.info("%s: fills window done, every pump idle again", rig.name)
            report["latency"] = await latency(rig, client, watch, args,
                                              random.Random(args.seed))
    memory = running.child.memory_kb()
    report["rss_mb"] = memory.get("VmRSS", 0) / 1024
    report["peak_rss_mb"] = memory.get("VmHWM", 0) / 1024
    report["threads"] = len(os.listdir(f"/proc/{running.child.pid}/task"))
    return report


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def ratios(ifsf: Report, dart: Report) -> Report:
    """IFSF / DART for every figure both have."""
    out: Report = {}
    for part in ("idle", "fills"):
        for key in ("cpu_share", "cpu_per_message_ms"):
            out[f"{part}.{key}"] = _ratio(ifsf[part][key], dart[part][key])
    out["rss_mb"] = _ratio(ifsf["rss_mb"], dart["rss_mb"])
    for key in ("lift_to_calling", "hang_to_idle"):
        for stat in ("median_ms", "p95_ms", "max_ms"):
            out[f"{key}.{stat}"] = _ratio(ifsf["latency"][key][stat],
                                          dart["latency"][key][stat])
    return out


# ---------------------------------------------------------------- command line


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench/ifsf.py", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=_positive(float), default=30.0, metavar="N",
                        help="length of the idle and the fills window (30: the kernel counts "
                        "CPU time in ticks of 10 ms, and an idle IFSF daemon uses a few a "
                        "second)")
    parser.add_argument("--settle", type=_positive(float), default=3.0, metavar="S",
                        help="seconds every pump is idle before the idle window (3)")
    parser.add_argument("--lifts", type=_positive(int), default=20, metavar="K",
                        help="nozzle lifts per protocol (20)")
    parser.add_argument("--heartbeat-interval", type=int, default=10, choices=range(1, 61),
                        metavar="S", help="IFSF heartbeat interval, nodes and controller "
                        "(10, as PetroChina sites)")
    parser.add_argument("--seed", type=int, default=1, metavar="N",
                        help="seed of the pauses between lifts (1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO")
    return parser


async def run(args: argparse.Namespace) -> Report:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    report: Report = {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(), "revision": revision(), "pumps": PUMPS,
        "ifsf_layout": f"{NODES} TQC nodes x {FPS} fuelling points",
        "dart_line": f"{PUMPS} pumps, line-faithful, {BAUDRATE} baud 8O1",
        "seconds": args.seconds, "heartbeat_interval_s": args.heartbeat_interval,
    }
    # Other work on the machine skews every figure: the load average is kept beside them.
    report["machine"]["load_before"] = os.getloadavg()[0]
    report["machine"]["cpu_tick_ms"] = 1000 / os.sysconf("SC_CLK_TCK")  # /proc's CPU unit
    with tempfile.TemporaryDirectory(prefix="forecourt-bench-ifsf-") as name:
        folder = Path(name)
        log.info("starting the IFSF station")
        async with ifsf_rig(folder / "ifsf", args) as rig:
            report["ifsf"] = await measure(rig, args)
        log.info("starting the DART station")
        async with dart_rig(folder / "dart", args) as rig:
            report["dart"] = await measure(rig, args)
    log.info("done")
    report["machine"]["load_after"] = os.getloadavg()[0]
    report["ratios"] = ratios(report["ifsf"], report["dart"])
    return report


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_and_report("ifsf.py", lambda: run(args), render, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
