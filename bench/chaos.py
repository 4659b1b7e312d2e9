"""The chaos run: a busy station under every fault it will meet, then a count of what was lost.

    python bench/chaos.py                   # the long run: 200 daemon kills, about 30 minutes
    python bench/chaos.py --kills 5 --json  # the short one the test suite runs

What runs: the pump simulator (four pumps, two of them authorized by an attendant through the
API, two in auto mode) with simulated customers, the station daemon (`forecourt run`, a real
process), a real Mosquitto and the cloud peer acknowledging events. What happens to them, in
rounds chosen by a seeded dice (`--seed` replays a run):

- the daemon is SIGKILLed at a random moment, often while fuel is flowing, and started again;
- the broker is SIGKILLed and restarted;
- the line corrupts answers (flipped bits, garbage) or loses their bytes for a few seconds;
- a pump loses power, mid-fill when one is fuelling;
- the disk fills: the daemon's file size limit drops to 0 (RLIMIT_FSIZE, as a full disk every
  write fails), an attendant tries to authorize, then the space comes back;
- the daemon's wall clock is stepped forwards or backwards (bench/clockshift, LD_PRELOAD), as an
  NTP step or a dead RTC battery does; its monotonic clock stays true, as on a real machine.

Then the customers go home, the faults are healed, and bench/chaos_checks.py judges: every fill
exactly one sale in SQLite and at the cloud, the totals chain per nozzle, the seq gapless at both
ends, nothing authorized while the disk was full and authorizations again after. It prints the
counts (kills, restarts, faults, sales, lost, doubled) and exits 1 when any check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

# bench/ holds a sync.py of its own: the packages come first, bench/ after them.
BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(BENCH.parent))
sys.path.append(str(BENCH))

from chaos_checks import CloudSale, Fill, Verdict, Window, judge  # noqa: E402
from chaos_station import Attendant, StationProcess, build_clockshift  # noqa: E402
from harness import BenchError, free_port, machine, revision, run_and_report  # noqa: E402

from simulator.cloud import CloudPeer  # noqa: E402
from simulator.control import Simulator, make_pumps, run_simulator  # noqa: E402
from simulator.lines.dart import DartLine  # noqa: E402
from simulator.metering import raw_to_decimal  # noqa: E402
from simulator.states import FUEL_STATES  # noqa: E402
from simulator.traffic import CustomerTraffic, TrafficSettings  # noqa: E402
from tests.mosquitto import Mosquitto  # noqa: E402

STATION_ID = "CHAOS-0001"
PUMPS = 4  # 0x50, 0x51 attendant; 0x52, 0x53 auto
FAULTS = ("broker", "corrupt", "drop", "power_cycle", "disk_full", "clock_jump")
CLOCK_STEPS = (3600, -3600, 86_400, -600, 180, -90_000)  # seconds; NTP steps and RTC resets


@dataclass
class Counts:
    rounds: int = 0
    kills: int = 0
    kills_mid_fill: int = 0
    daemon_restarts: int = 0
    crashes: int = 0  # the daemon exited without being killed
    broker_restarts: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    customers: int = 0
    clock_offset_s: int = 0


class ChaosRun:
    def __init__(self, folder: Path, *, kills: int, seed: int, fault_share: float) -> None:
        self.folder = folder
        self.kills = kills
        self.rng = random.Random(seed)
        self.seed = seed
        self.fault_share = fault_share
        self.counts = Counts()
        self.windows: list[tuple[float, float]] = []

    async def run(self) -> dict[str, Any]:
        started = time.monotonic()
        shifter = build_clockshift(self.folder)
        broker = Mosquitto(self.folder / "broker", extra="set_tcp_nodelay true")
        broker.start()
        pumps = make_pumps(PUMPS, nozzles_per_pump=2, flow_lpm=Decimal("150"))
        try:
            async with run_simulator(pumps, line_faithful=True, seed=self.seed) as sim:
                totals_at_start = _totals(sim)
                station = StationProcess(self.folder, sim.url, broker.url, STATION_ID,
                                         free_port(), shifter=shifter, pumps=PUMPS)
                station.prepare()
                await station.start()
                async with (CloudPeer(broker.url, STATION_ID, client_id="chaos-cloud") as cloud,
                            Attendant(station, attendant_pumps=(1, 2)) as attendant):
                    async with _customers(sim, self.seed) as traffic:
                        await self._rounds(sim, station, broker, attendant)
                    self.counts.customers = traffic.visits
                    verdict = await self._settle(sim, station, cloud, attendant, totals_at_start)
                    answers = attendant.answers()
                await station.stop()
        finally:
            broker.stop()
        report = {
            "bench": "chaos", "seed": self.seed, "revision": revision(), "machine": machine(),
            "seconds": round(time.monotonic() - started, 1),
            "counts": {**asdict(self.counts), "faults": dict(self.counts.faults)},
            "authorizations": answers,
            "verdict": {k: v for k, v in asdict(verdict).items() if k != "problems"},
            "problems": verdict.problems, "ok": verdict.ok,
        }
        (self.folder / "report.json").write_text(json.dumps(report, indent=2), "utf-8")
        return report

    # ---- the rounds ----------------------------------------------------------------------------

    async def _rounds(self, sim: Simulator, station: StationProcess, broker: Mosquitto,
                      attendant: Attendant) -> None:
        # Every kind of fault at least once, then the dice; most rounds end with a kill.
        planned = list(FAULTS)
        self.rng.shuffle(planned)
        for round_ in range(1, self.kills + 1):
            self.counts.rounds = round_
            if round_ == 1 or round_ % 10 == 0:
                print(f"chaos: round {round_}/{self.kills}, {len(sim.fills())} fills so far, "
                      f"{self.counts.kills} kills, faults {dict(self.counts.faults)}",
                      file=sys.stderr, flush=True)
            await self._watch(station, self.rng.uniform(1.5, 5.0))
            if planned:
                await self._fault(planned.pop(), sim, station, broker, attendant)
            elif self.rng.random() < self.fault_share:
                await self._fault(self.rng.choice(FAULTS), sim, station, broker, attendant)
            await self._kill(sim, station)
        while planned:  # a run shorter than the list of faults still has each once
            await self._fault(planned.pop(), sim, station, broker, attendant)
        await self._watch(station, 5.0)  # a calm stretch: the station must work after it all

    async def _watch(self, station: StationProcess, seconds: float) -> None:
        """Let the station run; a daemon that died by itself is counted and started again."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if station.exited():
                self.counts.crashes += 1
                print(f"chaos: the daemon exited by itself:\n{station.log_tail()}",
                      file=sys.stderr)
                await station.start()
                self.counts.daemon_restarts += 1
            await asyncio.sleep(0.1)

    async def _kill(self, sim: Simulator, station: StationProcess) -> None:
        if self.rng.random() < 0.6:
            # Aim for the worst moment: fuel flowing, the sale not yet written.
            deadline = time.monotonic() + 6.0
            while time.monotonic() < deadline and not _fuelling(sim):
                await asyncio.sleep(0.05)
            await asyncio.sleep(self.rng.uniform(0.0, 0.8))
            self.counts.kills_mid_fill += _fuelling(sim)
        await station.kill()
        self.counts.kills += 1
        await asyncio.sleep(self.rng.uniform(0.0, 2.0))  # customers keep coming meanwhile
        await station.start()
        self.counts.daemon_restarts += 1

    async def _fault(self, kind: str, sim: Simulator, station: StationProcess,
                     broker: Mosquitto, attendant: Attendant) -> None:
        self.counts.faults[kind] += 1
        if kind == "broker":
            broker.kill()
            await self._watch(station, self.rng.uniform(0.5, 4.0))
            broker.start()
            self.counts.broker_restarts += 1
        elif kind in ("corrupt", "drop"):
            share = self.rng.uniform(0.05, 0.3)
            if kind == "corrupt":
                sim.set_fault(None, corrupt=share)
            else:
                sim.set_fault(None, drop=share)
            await self._watch(station, self.rng.uniform(1.0, 4.0))
            sim.clear_faults()
        elif kind == "power_cycle":
            busy = [a for a in sim.pumps if sim.pump(a).status in FUEL_STATES]
            sim.power_cycle(self.rng.choice(busy or list(sim.pumps)))
        elif kind == "disk_full":
            await self._disk_full(station, attendant)
        elif kind == "clock_jump":
            step = self.rng.choice(CLOCK_STEPS)
            self.counts.clock_offset_s += step
            station.shift_clock(self.counts.clock_offset_s)
            await self._watch(station, 2.5)  # the station runs on the new time for a while

    async def _disk_full(self, station: StationProcess, attendant: Attendant) -> None:
        start = time.monotonic()
        station.fill_disk()
        try:
            await asyncio.sleep(0.3)
            # The attendant tries to authorize a customer: this must be refused.
            await attendant.until_refused(3.0)
            await self._watch(station, self.rng.uniform(1.0, 3.0))
        finally:
            end = time.monotonic()
            station.free_disk()
        self.windows.append((start, end))
        # The attendant keeps asking: the station must authorize again once it can write (its
        # store probe notices within seconds); the verdict checks that it did.
        await attendant.until_accepted(30.0)

    # ---- the end ---------------------------------------------------------------------------------

    async def _settle(self, sim: Simulator, station: StationProcess, cloud: CloudPeer,
                      attendant: Attendant, totals_at_start: dict[tuple[int, int], Decimal]
                      ) -> Verdict:
        """Customers leave, faults heal; wait for the station and the cloud to catch up."""
        sim.clear_faults()
        for address, pump in sim.pumps.items():
            if pump.nozzle_out is not None:
                sim.hang(address, pump.nozzle_out)
        await _until(lambda: not _fuelling(sim), 30, "the pumps to stop")
        fills = _fills(sim)
        await _until(lambda: station.sale_count() >= sum(f.volume > 0 for f in fills), 90,
                     f"the station to record {len(fills)} fills", quiet=True)
        high = station.event_count()
        await _until(lambda: cloud.contiguous() >= high, 90,
                     f"the cloud to receive events up to {high}", quiet=True)
        await asyncio.sleep(1.0)  # anything late (a doubled event) has time to show
        sales = station.sales()
        return judge(
            fills=fills, sales=sales, event_seqs=station.event_seqs(),
            cloud_contiguous=cloud.contiguous(), cloud_gaps=cloud.gaps(),
            cloud_sales=[CloudSale(seq, env["data"]["id"]) for seq, env
                         in sorted(cloud.received.items()) if env["type"] == "sale.completed"],
            totals_at_start=totals_at_start, totals_at_end=_totals(sim),
            windows=[Window(s, e) for s, e in self.windows], attempts=attendant.attempts,
            clock_steps=self.counts.faults["clock_jump"],
            clock_steps_noticed=station.log_count("wall clock stepped by"))


def _fuelling(sim: Simulator) -> bool:
    sim.tick()
    return any(pump.status in FUEL_STATES for pump in sim.pumps.values())


def _totals(sim: Simulator) -> dict[tuple[int, int], Decimal]:
    sim.tick()
    return {(address, nozzle): raw_to_decimal(pump.totals(nozzle)[0], pump.decimals.volume)
            for address, pump in sim.pumps.items() for nozzle in pump.nozzles}


def _fills(sim: Simulator) -> list[Fill]:
    return [Fill(f.pump, f.nozzle, f.volume_decimal, f.amount_decimal,
                 raw_to_decimal(f.volume_total_before, f.decimals.volume),
                 raw_to_decimal(f.volume_total_after, f.decimals.volume), f.started_at)
            for f in sim.fills()]


async def _until(check: Callable[[], bool], timeout: float, what: str, *,
                 quiet: bool = False) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            if quiet:  # the verdict names what is missing, with more detail than a timeout
                return
            raise BenchError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


@asynccontextmanager
async def _customers(sim: Simulator, seed: int) -> AsyncIterator[CustomerTraffic]:
    settings = TrafficSettings(mean_interval=2.0, patience=6.0, min_litres=Decimal("1"),
                               max_litres=Decimal("6"), min_leave=0.2, max_leave=1.0)
    # Customers act through the line's neutral control (pumps numbered 1.. in address order,
    # as the chaos station numbers them).
    traffic = CustomerTraffic(DartLine.wrap(sim), seed=seed, settings=settings)
    task = asyncio.create_task(traffic.run(), name="customers")
    try:
        yield traffic
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def render(report: dict[str, Any]) -> str:
    c, v = report["counts"], report["verdict"]
    faults = ", ".join(f"{k} {n}" for k, n in sorted(c["faults"].items())) or "none"
    lines = [
        f"chaos run, seed {report['seed']}, {report['seconds']} s, revision {report['revision']}",
        f"  daemon kills {c['kills']} ({c['kills_mid_fill']} mid-fill), restarts "
        f"{c['daemon_restarts']}, crashes {c['crashes']}; broker restarts {c['broker_restarts']}",
        f"  faults: {faults}; wall clock ends {c['clock_offset_s']:+d} s off",
        f"  customers {c['customers']}, fills {v['fills']}, sales {v['sales']}, "
        f"at the cloud {v['cloud_sales']}",
        f"  lost {v['lost']}, doubled {v['doubled']}, phantom {v['phantom']}, "
        f"mismatched {v['mismatched']}, cloud lost {v['cloud_lost']}, "
        f"totals breaks {v['totals_breaks']}",
        f"  events {v['events']}, at the cloud up to {v['cloud_contiguous']} without a gap",
        f"  wall clock stepped {v['clock_steps']} times, the daemon noticed "
        f"{v['clock_steps_noticed']}",
        f"  disk full {v['windows']} times: refused {v['refused_while_full']}, accepted "
        f"{v['accepted_while_full']}, fuel started {v['fuel_started_while_full']}, "
        f"recovered {v['windows_recovered']}",
        "  authorizations asked: " + ", ".join(
            f"{k}: {n}" for k, n in sorted(report["authorizations"].items())),
        "  verdict: " + ("PASS" if report["ok"] else "FAIL"),
        *(f"  - {p}" for p in report["problems"]),
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=200, help="daemon SIGKILLs (200)")
    parser.add_argument("--seed", type=int, default=None, help="replay a run (default: random)")
    parser.add_argument("--fault-share", type=float, default=0.7,
                        help="share of rounds with a fault besides the kill (0.7)")
    parser.add_argument("--keep", metavar="DIR", help="run in DIR and keep it (logs, database)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)

    verdicts: list[bool] = []

    async def bench() -> dict[str, Any]:
        with contextlib.ExitStack() as stack:
            if args.keep:
                folder = Path(args.keep)
                folder.mkdir(parents=True, exist_ok=True)
            else:
                folder = Path(stack.enter_context(
                    tempfile.TemporaryDirectory(prefix="forecourt-chaos-")))
            report = await ChaosRun(folder, kills=args.kills, seed=seed,
                                    fault_share=args.fault_share).run()
        verdicts.append(report["ok"])
        return report

    status = run_and_report("chaos", bench, render, args.json)
    # A run that finished but failed a check is a failed command, like a failed test.
    return status if status != 0 else (0 if all(verdicts) else 1)


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        raise SystemExit(main())
