"""Bench of the console API: forecourt read latency under load, event fan-out to many consoles.

    .venv/bin/python bench/api.py [--seconds N] [--clients 50] [--pumps 32] [--consoles 20] [--json]

Both parts run ``forecourt simulate`` and ``forecourt run`` as child processes (bench/harness.py);
the load comes from this process. Every figure has a baseline measured in the same run:

1. Read: ``--clients`` concurrent HTTP clients, each with its own connection, send
   ``GET /api/v1/forecourt`` back to back for ``--seconds`` against a daemon driving ``--pumps``
   pumps; p50/p99 latency and requests per second. Baseline: the same clients on the same
   server's ``GET /api/v1/health`` (session check and a few counters, no forecourt to render).
2. Fan-out: ``--consoles`` logged-in WebSocket consoles; a nozzle is lifted and hung up over the
   simulator's control API and each console's time from that request to the ``pump.state``
   message showing it is taken (median/p99 across consoles and lifts). Baseline: one console.
   The simulator is unpaced so that the poll cycle is short beside what is measured.

The clients share this process's event loop, so their own work is in the figures; on a machine
with few cores they compete with the daemon for CPU. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
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
from websockets.asyncio.client import ClientConnection, connect

USER, PIN = "bench", "2468"
BAUDRATE = 9600
# Pause between a nozzle action and the next: longer than the daemon's live-state pacing
# (0.2 s between publications of one pump), so that each action is published on its own.
QUIET = 0.3

Report = dict[str, Any]


def _summary(values: list[float]) -> Report:
    return {"count": len(values), "p50_ms": statistics.median(values) * 1e3,
            "p99_ms": percentile(values, 0.99) * 1e3, "max_ms": max(values) * 1e3}


async def _station(folder: Path, sim: SimulatorProcess, pumps: int, name: str
                   ) -> tuple[Path, int]:
    # Imported here: the store is only needed to create the bench's user before the start.
    from domain.model import Role
    from edge.store import Store

    db, api_port = folder / f"{name}.db", free_port()
    with Store.open(db) as store:
        store.upsert_user(USER, role=Role.ATTENDANT, pin=PIN)
    config = folder / f"{name}.toml"
    config.write_text(station_toml(line_url=sim.url, db=db, api_port=api_port, pumps=pumps,
                                   baudrate=BAUDRATE), "utf-8")
    return config, api_port


async def _login(client: httpx.AsyncClient, running: Daemon) -> str:
    response = await client.post(f"{running.base_url}/api/v1/session",
                                 json={"user": USER, "pin": PIN})
    if response.status_code != 200:
        raise BenchError(f"login refused: {response.status_code} {response.text}")
    token: str = response.json()["token"]
    return token


# ---------------------------------------------------------------- 1. forecourt read under load


async def _hammer(url: str, headers: dict[str, str], clients: int, seconds: float
                  ) -> tuple[list[float], int]:
    """``clients`` loops of back-to-back GETs for ``seconds``: latencies and non-200 count."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def one() -> None:
        nonlocal errors
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(headers=headers, timeout=10.0, limits=limits) as client:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                response = await client.get(url)
                latencies.append(time.perf_counter() - start)
                if response.status_code != 200:
                    errors += 1

    await asyncio.gather(*(one() for _ in range(clients)))
    return latencies, errors


async def bench_read(folder: Path, args: argparse.Namespace) -> Report:
    async with simulator(folder, args.pumps, line_faithful=False, baudrate=BAUDRATE) as sim:
        config, api_port = await _station(folder, sim, args.pumps, "read")
        async with (daemon(config, api_port, args.pumps) as running,
                    httpx.AsyncClient(timeout=5.0) as client):
            headers = {"Authorization": f"Bearer {await _login(client, running)}"}
            # A short warm-up: connections, first renders, the daemon's caches.
            await _hammer(f"{running.base_url}/api/v1/forecourt", headers, args.clients, 1.0)
            phases = {}
            for name, path in (("baseline", "/api/v1/health"), ("forecourt", "/api/v1/forecourt")):
                cpu, own = running.child.cpu_seconds(), time.process_time()
                latencies, errors = await _hammer(f"{running.base_url}{path}", headers,
                                                  args.clients, args.seconds)
                if errors:
                    raise BenchError(f"{errors} of {len(latencies)} GET {path} did not answer 200")
                phases[name] = {**_summary(latencies), "path": path,
                                "per_second": len(latencies) / args.seconds,
                                "daemon_cpu_share": (running.child.cpu_seconds() - cpu)
                                / args.seconds,
                                # The clients' side: near 1.0 means the load is what limits.
                                "clients_cpu_share": (time.process_time() - own)
                                / args.seconds}
            running.child.check_alive()
    base, read = phases["baseline"], phases["forecourt"]
    return {"pumps": args.pumps, "clients": args.clients, "seconds": args.seconds, **phases,
            "p50_ratio": read["p50_ms"] / base["p50_ms"],
            "p99_ratio": read["p99_ms"] / base["p99_ms"],
            "throughput_ratio": read["per_second"] / base["per_second"]}


# ---------------------------------------------------------------- 2. event fan-out


async def _lifts(watches: list[ForecourtWatch], sim: SimulatorProcess, client: httpx.AsyncClient,
                 pumps: int, lifts: int, rng: random.Random) -> list[float]:
    """Lift and hang nozzles; every console's delay from each lift request to its message."""
    delays: list[float] = []
    for i in range(lifts):
        pump = 1 + i % pumps
        nozzle, address = 2 * pump - 1, 0x50 + pump - 1
        base = f"{sim.control_url}/pumps/{address:#x}/nozzles/1"
        for action, condition in (("lift", partial(ForecourtWatch.nozzle_is, pump=pump,
                                                   nozzle=nozzle, state="calling")),
                                  ("hang", partial(ForecourtWatch.pump_is, pump=pump,
                                                   state="idle"))):
            await asyncio.sleep(rng.uniform(QUIET, 2 * QUIET))
            seen = _watch_all(watches, condition, f"pump {pump} after {action}")
            start = time.perf_counter()
            (await client.post(f"{base}/{action}")).raise_for_status()
            arrivals = await seen
            if action == "lift":
                delays.extend(arrived - start for arrived in arrivals)
    return delays


def _watch_all(watches: list[ForecourtWatch],
               condition: Callable[[ForecourtWatch], Callable[[], bool]],
               what: str) -> asyncio.Future[list[float]]:
    # Started before the action so that every console is already reading when it happens.
    return asyncio.gather(*(w.until(condition(w), 10.0, what) for w in watches))


def _all_idle(watch: ForecourtWatch, pumps: int) -> Callable[[], bool]:
    def check() -> bool:
        return len(watch.pumps) == pumps and all(
            v["state"] == "idle" for v in watch.pumps.values())
    return check


async def _consoles(url: str, count: int) -> list[ClientConnection]:
    return [await connect(url, open_timeout=10.0, max_queue=None) for _ in range(count)]


async def bench_fanout(folder: Path, args: argparse.Namespace) -> Report:
    pumps = args.fanout_pumps
    rng = random.Random(args.seed)
    results: Report = {"pumps": pumps, "lifts": args.lifts}
    async with simulator(folder, pumps, line_faithful=False, baudrate=BAUDRATE) as sim:
        config, api_port = await _station(folder, sim, pumps, "fanout")
        async with (daemon(config, api_port, pumps) as running,
                    httpx.AsyncClient(timeout=5.0) as client):
            token = await _login(client, running)
            url = f"ws://127.0.0.1:{api_port}/api/v1/events?token={token}"
            for name, count in (("one", 1), ("many", args.consoles)):
                sockets = await _consoles(url, count)
                try:
                    watches = [ForecourtWatch(s) for s in sockets]
                    await asyncio.gather(*(w.until(_all_idle(w, pumps), 30.0, "every pump idle")
                                           for w in watches))
                    delays = await _lifts(watches, sim, client, pumps, args.lifts, rng)
                finally:
                    await asyncio.gather(*(s.close() for s in sockets))
                results[name] = {"consoles": count, **_summary(delays)}
            running.child.check_alive()
    results["p50_ratio"] = results["many"]["p50_ms"] / results["one"]["p50_ms"]
    results["p99_ratio"] = results["many"]["p99_ms"] / results["one"]["p99_ms"]
    return results


# ---------------------------------------------------------------- command line


def render(report: Report) -> str:
    out = [f"bench/api.py, {report['date']}, revision {report['revision']}, "
           f"{report['machine']['cpus']} CPUs ({report['machine']['processor']}), "
           f"load {report['machine']['load_before']:.2f} -> {report['machine']['load_after']:.2f}"]
    if "read" in report:
        r = report["read"]
        out.append(f"\nGET under load: {r['clients']} clients, {r['seconds']:.0f} s, "
                   f"{r['pumps']} pumps")
        for name in ("baseline", "forecourt"):
            p = r[name]
            out.append(f"  {p['path']:<20} p50 {p['p50_ms']:7.2f} ms  p99 {p['p99_ms']:7.2f} ms  "
                       f"{p['per_second']:7.0f} req/s  CPU daemon {p['daemon_cpu_share']:.2f}, "
                       f"clients {p['clients_cpu_share']:.2f}")
        out.append(f"  forecourt / health: p50 x{r['p50_ratio']:.2f}, p99 x{r['p99_ratio']:.2f}, "
                   f"throughput x{r['throughput_ratio']:.2f}")
    if "fanout" in report:
        f = report["fanout"]
        out.append(f"\nlift -> pump.state: {f['lifts']} lifts, {f['pumps']} pumps (unpaced line)")
        for name in ("one", "many"):
            p = f[name]
            out.append(f"  {p['consoles']:>3} console(s)  p50 {p['p50_ms']:7.2f} ms  "
                       f"p99 {p['p99_ms']:7.2f} ms  max {p['max_ms']:7.2f} ms  ({p['count']})")
        out.append(f"  many / one: p50 x{f['p50_ratio']:.2f}, p99 x{f['p99_ratio']:.2f}")
    return "\n".join(out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench/api.py", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, metavar="N",
                        help="length of each load window (default 10)")
    parser.add_argument("--clients", type=int, default=50, metavar="N",
                        help="concurrent HTTP clients (default 50)")
    parser.add_argument("--pumps", type=int, default=32, choices=range(1, 33), metavar="N",
                        help="pumps behind the read part (default 32)")
    parser.add_argument("--consoles", type=int, default=20, metavar="N",
                        help="WebSocket consoles in the fan-out part (default 20)")
    parser.add_argument("--fanout-pumps", type=int, default=8, choices=range(1, 33),
                        metavar="N", help="pumps behind the fan-out part (default 8)")
    parser.add_argument("--lifts", type=int, default=20, metavar="K",
                        help="nozzle lifts per console count (default 20)")
    parser.add_argument("--parts", default="read,fanout", metavar="P,Q",
                        help="among read,fanout (default both)")
    parser.add_argument("--seed", type=int, default=1, metavar="N")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


async def run(args: argparse.Namespace) -> Report:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    parts = set(args.parts.split(","))
    report: Report = {"date": datetime.now().astimezone().isoformat(timespec="seconds"),
                      "machine": machine(), "revision": revision()}
    report["machine"]["load_before"] = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="forecourt-bench-") as name:
        folder = Path(name)
        if "read" in parts:
            report["read"] = await bench_read(folder, args)
        if "fanout" in parts:
            report["fanout"] = await bench_fanout(folder, args)
    report["machine"]["load_after"] = os.getloadavg()[0]
    return report


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_and_report("api.py", lambda: run(args), render, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
