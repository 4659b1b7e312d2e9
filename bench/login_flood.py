"""Bench of a login flood beside sales: authorizations, sale recording and payments, quiet and
under a flood of logins with unknown names from many LAN addresses.

    .venv/bin/python bench/login_flood.py [--cycles 20] [--clients 60] [--addresses 20] [--json]

``forecourt simulate`` (2 pumps, unpaced) and ``forecourt run`` are child processes
(bench/harness.py); the consoles come from this process, the flood from one of its own. One
sale cycle, on pumps 1 and 2 in turn:

1. **authorize**: ``POST /api/v1/nozzles/N/authorize`` with a 5.00 L preset, until its 202 (the
   pump confirmed the authorization);
2. the nozzle is lifted and fuel flows (the simulator's 40 L/min) until the console shows some
   volume, not timed;
3. **sale recorded**: from the hang-up in the middle of the fill (the simulator's control API)
   to the ``sale.completed`` event on the console's WebSocket (the pump read, the sale
   committed and published);
4. **payment**: ``POST /api/v1/sales/{id}/payments`` in cash, until its 201 (a write on the
   ledger's one writer thread, as a sale is).

First ``--cycles`` cycles on a quiet station (the baseline), then as many while ``--clients``
loops send ``POST /api/v1/session`` with names nobody has, back to back, from ``--addresses``
source addresses (127.0.0.100 and up: the throttle counts per address), never waiting out a
``Retry-After``. The flood is a process of its own (this script with ``--flood URL``), so that
its own work does not slow the bench's consoles: what is measured is the daemon. Median and p99
of each under the flood are given as ratios to the quiet run of the same daemon in the same
bench run. **Target: at most 10x the quiet median.** The flood's answers are counted by status
(401: a PIN was checked, 429: throttled, 503: no PIN-checking place free) with the daemon's CPU
while it ran. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from harness import (
    BenchError,
    Child,
    Daemon,
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

ATTENDANT, CASHIER = ("bench-att", "2468"), ("bench-cash", "1357")
PUMPS = 2
PRESET = "5.00"  # litres: 7.5 s at the simulator's 40 L/min, hung up long before
BAUDRATE = 9600
WAIT = 30.0  # seconds any one step may take before the bench gives up

Report = dict[str, Any]


def _summary(values: list[float]) -> Report:
    return {"count": len(values), "p50_ms": statistics.median(values) * 1e3,
            "p99_ms": percentile(values, 0.99) * 1e3, "max_ms": max(values) * 1e3}


async def _station(folder: Path, sim: SimulatorProcess) -> tuple[Path, int]:
    # Imported here: the store is only needed to create the bench's users before the start.
    from domain.model import Role
    from edge.store import Store

    db, api_port = folder / "station.db", free_port()
    with Store.open(db) as store:
        store.upsert_user(ATTENDANT[0], role=Role.ATTENDANT, pin=ATTENDANT[1])
        store.upsert_user(CASHIER[0], role=Role.CASHIER, pin=CASHIER[1])
    config = folder / "station.toml"
    config.write_text(station_toml(line_url=sim.url, db=db, api_port=api_port, pumps=PUMPS,
                                   baudrate=BAUDRATE), "utf-8")
    return config, api_port


async def _login(running: Daemon, user: tuple[str, str]) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=running.base_url, timeout=WAIT)
    response = await client.post("/api/v1/session", json={"user": user[0], "pin": user[1]})
    if response.status_code != 200:
        raise BenchError(f"login of {user[0]} refused: {response.status_code} {response.text}")
    client.headers["Authorization"] = f"Bearer {response.json()['token']}"
    return client


# ---------------------------------------------------------------- the console's sale events


class SaleWatch:
    """``sale.completed`` events from the console's WebSocket, with their arrival times, and
    the pumps as the console shows them."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.sales: list[tuple[float, dict[str, Any]]] = []
        self.pumps: dict[int, dict[str, Any]] = {}
        self._new = asyncio.Event()

    async def read(self) -> None:
        async for raw in self.socket:
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "sale.completed":
                self.sales.append((time.perf_counter(), message["data"]))
                self._new.set()
            elif kind == "forecourt.snapshot":
                self.pumps = {p["number"]: p for p in message["data"]["pumps"]}
            elif kind == "pump.state":
                self.pumps[message["data"]["number"]] = message["data"]

    def flowing(self, pump: int) -> bool:
        view = self.pumps.get(pump)
        return view is not None and view["state"] == "fuelling" and any(
            Decimal(n.get("volume") or "0") > 0 for n in view["nozzles"])

    async def next_after(self, count: int) -> tuple[float, dict[str, Any]]:
        async with asyncio.timeout(WAIT):
            while len(self.sales) <= count:
                self._new.clear()
                await self._new.wait()
        return self.sales[count]


# ---------------------------------------------------------------- one sale


@dataclass
class Timings:
    authorize: list[float] = field(default_factory=list)
    sale: list[float] = field(default_factory=list)
    payment: list[float] = field(default_factory=list)

    def report(self) -> Report:
        return {"authorize": _summary(self.authorize), "sale": _summary(self.sale),
                "payment": _summary(self.payment)}


async def _until(check: Any, what: str, interval: float = 0.02) -> None:
    deadline = time.monotonic() + WAIT
    while not await check():
        if time.monotonic() > deadline:
            raise BenchError(f"no {what} within {WAIT:.0f} s")
        await asyncio.sleep(interval)


async def _cycle(pump: int, att: httpx.AsyncClient, cash: httpx.AsyncClient,
                 control: httpx.AsyncClient, sim: SimulatorProcess, watch: SaleWatch,
                 timings: Timings) -> None:
    nozzle, address = 2 * pump - 1, 0x50 + pump - 1
    base = f"{sim.control_url}/pumps/{address:#x}"

    async def idle() -> bool:
        view = (await att.get("/api/v1/forecourt")).json()
        return any(p["number"] == pump and p["state"] == "idle" for p in view["pumps"])
    await _until(idle, f"pump {pump} idle")

    start = time.perf_counter()
    response = await att.post(f"/api/v1/nozzles/{nozzle}/authorize",
                              json={"preset": {"volume": PRESET}})
    timings.authorize.append(time.perf_counter() - start)
    if response.status_code != 202:
        raise BenchError(f"authorize of nozzle {nozzle}: {response.status_code} {response.text}")
    (await control.post(f"{base}/nozzles/1/lift")).raise_for_status()

    async def flowing() -> bool:
        return watch.flowing(pump)
    await _until(flowing, f"fuel flowing at pump {pump}")

    seen = len(watch.sales)
    start = time.perf_counter()
    (await control.post(f"{base}/nozzles/1/hang")).raise_for_status()
    arrived, sale = await watch.next_after(seen)
    timings.sale.append(arrived - start)

    start = time.perf_counter()
    paid = await cash.post(f"/api/v1/sales/{sale['id']}/payments",
                           json={"method": "cash", "amount": sale["amount"]})
    timings.payment.append(time.perf_counter() - start)
    if paid.status_code != 201:
        raise BenchError(f"payment of sale {sale['id']}: {paid.status_code} {paid.text}")


# ---------------------------------------------------------------- the flood


@dataclass
class Flood:
    base_url: str
    clients: int
    addresses: list[str]
    answers: Counter[int] = field(default_factory=Counter)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    errors: int = 0

    async def _worker(self, client: httpx.AsyncClient, worker: int) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            try:
                response = await client.post("/api/v1/session", json={
                    "user": f"intruder-{worker}-{n}", "pin": "000000"})
            except httpx.HTTPError:
                self.errors += 1
                continue
            self.answers[response.status_code] += 1

    def counts(self) -> Report:
        return {"answers": {str(k): v for k, v in sorted(self.answers.items())},
                "transport_errors": self.errors}

    async def run(self) -> None:
        per_address = [httpx.AsyncClient(
            base_url=self.base_url, timeout=WAIT,
            transport=httpx.AsyncHTTPTransport(local_address=address))
            for address in self.addresses]
        try:
            async with asyncio.TaskGroup() as group:
                for worker in range(self.clients):
                    client = per_address[worker % len(per_address)]
                    group.create_task(self._worker(client, worker), name=f"flood {worker}")
        finally:
            for client in per_address:
                await client.aclose()


# ---------------------------------------------------------------- the run


async def bench(folder: Path, args: argparse.Namespace) -> Report:
    async with simulator(folder, PUMPS, line_faithful=False, baudrate=BAUDRATE) as sim:
        config, api_port = await _station(folder, sim)
        async with daemon(config, api_port, PUMPS) as running, \
                httpx.AsyncClient(timeout=WAIT) as control:
            att, cash = await _login(running, ATTENDANT), await _login(running, CASHIER)
            token = att.headers["Authorization"].removeprefix("Bearer ")
            ws_url = running.base_url.replace("http", "ws", 1) + f"/api/v1/events?token={token}"
            async with connect(ws_url, max_size=None) as socket:
                watch = SaleWatch(socket)
                reader = asyncio.create_task(watch.read(), name="sale watch")
                try:
                    report = await _phases(folder, args, running, sim, att, cash, control, watch)
                finally:
                    reader.cancel()
            await att.aclose()
            await cash.aclose()
            running.child.check_alive()
    return report


async def _phases(folder: Path, args: argparse.Namespace, running: Daemon, sim: SimulatorProcess,
                  att: httpx.AsyncClient, cash: httpx.AsyncClient, control: httpx.AsyncClient,
                  watch: SaleWatch) -> Report:
    warm = Timings()
    for index in range(2):  # the first sales warm the daemon's caches: not counted
        await _cycle(1 + index % PUMPS, att, cash, control, sim, watch, warm)
    quiet = Timings()
    for index in range(args.cycles):
        await _cycle(1 + index % PUMPS, att, cash, control, sim, watch, quiet)

    stats = folder / "flood.json"
    argv = [sys.executable, str(Path(__file__).resolve()), "--flood", running.base_url,
            "--clients", str(args.clients), "--addresses", str(args.addresses),
            "--stats", str(stats)]
    under = Timings()
    with Child("login flood", argv, folder / "flood.log") as flood:
        with flood.explained():
            await _until(_flooding(stats, flood), "flood under way", interval=0.1)
        cpu_before, started = running.child.cpu_seconds(), time.perf_counter()
        sent_before = _sent(stats)
        for index in range(args.cycles):
            await _cycle(1 + index % PUMPS, att, cash, control, sim, watch, under)
        seconds = time.perf_counter() - started
        cpu = running.child.cpu_seconds() - cpu_before
        sent = _sent(stats) - sent_before
        flood.check_alive()
    counts = json.loads(stats.read_text("utf-8"))

    quiet_report, under_report = quiet.report(), under.report()
    ratios = {what: {"p50": under_report[what]["p50_ms"] / quiet_report[what]["p50_ms"],
                     "p99": under_report[what]["p99_ms"] / quiet_report[what]["p99_ms"]}
              for what in ("authorize", "sale", "payment")}
    return {"cycles": args.cycles, "quiet": quiet_report, "flood": under_report,
            "ratios": ratios,
            "flood_load": {"clients": args.clients, "addresses": args.addresses,
                           "seconds": seconds, "requests_per_second": sent / seconds,
                           **counts, "daemon_cpu_share": cpu / seconds}}


def _sent(stats: Path) -> int:
    try:
        return sum(json.loads(stats.read_text("utf-8"))["answers"].values())
    except (OSError, ValueError):  # not written yet, or being replaced
        return 0


def _flooding(stats: Path, flood: Child) -> Any:
    async def check() -> bool:
        flood.check_alive()
        return _sent(stats) >= 200
    return check


async def flood_main(args: argparse.Namespace) -> None:
    """The flood's own process: until SIGTERM, its counts in ``--stats`` every 0.2 s."""
    stats = Path(args.stats)
    addresses = [f"127.0.0.{100 + n}" for n in range(args.addresses)]
    flood = Flood(args.flood, args.clients, addresses)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, flood.stop.set)

    def save() -> None:
        partial = stats.with_suffix(".tmp")
        partial.write_text(json.dumps(flood.counts()), "utf-8")
        partial.replace(stats)

    async def keep_saving() -> None:
        while not flood.stop.is_set():
            save()
            await asyncio.sleep(0.2)

    saver = asyncio.create_task(keep_saving(), name="flood stats")
    await flood.run()
    await saver
    save()


# ---------------------------------------------------------------- command line


def render(report: Report) -> str:
    out = [f"bench/login_flood.py, {report['date']}, revision {report['revision']}, "
           f"{report['machine']['cpus']} CPUs ({report['machine']['processor']}), "
           f"load {report['machine']['load_before']:.2f} -> {report['machine']['load_after']:.2f}"]
    r = report["run"]
    load = r["flood_load"]
    out.append(f"\n{r['cycles']} sale cycles quiet, {r['cycles']} under a flood of "
               f"{load['clients']} login loops from {load['addresses']} addresses "
               f"({load['requests_per_second']:.0f} req/s, answers {load['answers']}, "
               f"daemon CPU {load['daemon_cpu_share']:.2f} of a core)")
    for what, label in (("authorize", "authorize (202)"), ("sale", "hang-up -> sale event"),
                        ("payment", "payment (201)")):
        q, f, ratio = r["quiet"][what], r["flood"][what], r["ratios"][what]
        out.append(f"  {label:<22} quiet p50 {q['p50_ms']:7.1f} ms p99 {q['p99_ms']:7.1f} ms | "
                   f"flood p50 {f['p50_ms']:7.1f} ms p99 {f['p99_ms']:7.1f} ms | "
                   f"x{ratio['p50']:.2f} (p50), x{ratio['p99']:.2f} (p99)")
    return "\n".join(out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench/login_flood.py",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=20, metavar="N",
                        help="sale cycles quiet, and as many under the flood (default 20)")
    parser.add_argument("--clients", type=int, default=60, metavar="N",
                        help="login loops in the flood (default 60)")
    parser.add_argument("--addresses", type=int, default=20, choices=range(1, 151), metavar="N",
                        help="source addresses of the flood, 127.0.0.100 and up (default 20)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--flood", metavar="URL", help=argparse.SUPPRESS)  # the flood's process
    parser.add_argument("--stats", metavar="FILE", help=argparse.SUPPRESS)
    return parser


async def run(args: argparse.Namespace) -> Report:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    report: Report = {"date": datetime.now().astimezone().isoformat(timespec="seconds"),
                      "machine": machine(), "revision": revision()}
    report["machine"]["load_before"] = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="forecourt-bench-") as name:
        report["run"] = await bench(Path(name), args)
    report["machine"]["load_after"] = os.getloadavg()[0]
    return report


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.flood:
        asyncio.run(flood_main(args))
        return 0
    return run_and_report("login_flood.py", lambda: run(args), render, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
