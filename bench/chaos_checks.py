"""The verdict of a chaos run: what the pumps did against what the station and the cloud hold.

Pure functions over plain records, so that each check is tested on its own with made-up runs
(tests/bench/test_chaos_checks.py) and the harness (bench/chaos.py) only gathers the records:

- every fill the simulator made with fuel in it is exactly one sale in SQLite, with the pump's
  volume and amount, and exactly one sale event at the cloud peer;
- no sale without a fill; the totals chain per nozzle: each sale's totals before are the previous
  sale's totals after, after - before = volume, the first starts at the pump's totals at the start
  of the run and the last ends at the pump's totals at the end;
- the event seq is gapless in SQLite (1..N) and at the cloud (everything up to N, no gap);
- every step of the daemon's wall clock was noticed and logged by the daemon;
- no healthy pump was taken out of service (an authorization refused as pump_out_of_service);
- while the disk was full nothing was authorized and no fuel started to flow, an authorization
  tried then was refused with storage_unavailable, and the station authorized again afterwards.

A fill is identified by its pump, its logical nozzle and the nozzle's volume totalizer after it,
exactly as the station's own `fill_key` does: two fills of one nozzle can never share it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

__all__ = ["Attempt", "CloudSale", "Fill", "StoredSale", "Verdict", "Window", "judge"]

# An authorization that was already written when the disk filled still reaches the pump a moment
# later; fuel that starts flowing this long after the disk filled was authorized while it was full.
AUTHORIZATION_IN_FLIGHT = 1.0


@dataclass(frozen=True)
class Fill:
    """What the simulated pump dispensed (monotonic `started_at`, litres and yuan)."""

    address: int
    logical: int
    volume: Decimal
    amount: Decimal
    totals_before: Decimal
    totals_after: Decimal
    started_at: float

    @property
    def key(self) -> tuple[int, int, Decimal]:
        return self.address, self.logical, self.totals_after


@dataclass(frozen=True)
class StoredSale:
    """A row of the station's `sales` table, its pump given as the DART address."""

    id: str
    address: int
    logical: int
    volume: Decimal
    amount: Decimal
    totals_before: Decimal | None
    totals_after: Decimal

    @property
    def key(self) -> tuple[int, int, Decimal]:
        return self.address, self.logical, self.totals_after


@dataclass(frozen=True)
class CloudSale:
    """A `sale.completed` event as the cloud peer received it (after its seq de-duplication)."""

    seq: int
    sale_id: str


@dataclass(frozen=True)
class Window:
    """A stretch of monotonic time in which the daemon could not write a byte."""

    start: float
    end: float


@dataclass(frozen=True)
class Attempt:
    """An authorization asked through the API: when it was sent and answered, and the answer."""

    sent: float
    answered: float
    status: int
    code: str | None = None


@dataclass
class Verdict:
    fills: int = 0
    sales: int = 0
    cloud_sales: int = 0
    lost: int = 0  # fills with no sale in SQLite
    doubled: int = 0  # extra sales for one fill, in SQLite or at the cloud
    phantom: int = 0  # sales with no fill behind them
    mismatched: int = 0  # sale figures that differ from the pump's
    cloud_lost: int = 0  # stored sales the cloud never got
    totals_breaks: int = 0
    events: int = 0
    cloud_contiguous: int = 0
    refused_while_full: int = 0
    accepted_while_full: int = 0
    fuel_started_while_full: int = 0
    windows: int = 0
    windows_recovered: int = 0
    clock_steps: int = 0
    clock_steps_noticed: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, text: str) -> None:
        if len(self.problems) < 50:  # enough to act on; the counts say how many in all
            self.problems.append(text)


def judge(
    *,
    fills: Sequence[Fill],
    sales: Sequence[StoredSale],
    event_seqs: Sequence[int],
    cloud_contiguous: int,
    cloud_gaps: Sequence[int],
    cloud_sales: Sequence[CloudSale],
    totals_at_start: Mapping[tuple[int, int], Decimal],
    totals_at_end: Mapping[tuple[int, int], Decimal],
    windows: Sequence[Window] = (),
    attempts: Sequence[Attempt] = (),
    clock_steps: int = 0,
    clock_steps_noticed: int = 0,
) -> Verdict:
    verdict = Verdict()
    dispensed = [f for f in fills if f.volume > 0]  # a lift with no fuel is no sale
    verdict.fills, verdict.sales = len(dispensed), len(sales)
    _match_fills(verdict, dispensed, sales)
    _check_totals(verdict, sales, totals_at_start, totals_at_end)
    _check_seq(verdict, event_seqs, cloud_contiguous, cloud_gaps)
    _check_cloud(verdict, sales, cloud_sales)
    _check_full_disk(verdict, windows, attempts, dispensed)
    # The simulated pumps are healthy: none may be taken out of service for impossible figures
    # (a clock step, a restart or line noise must not look like a broken meter).
    out = [a for a in attempts if a.code == "pump_out_of_service"]
    if out:
        verdict.problem(f"{len(out)} authorization(s) refused because a healthy pump was taken "
                        "out of service")
    verdict.clock_steps, verdict.clock_steps_noticed = clock_steps, clock_steps_noticed
    if clock_steps_noticed != clock_steps:
        verdict.problem(f"the wall clock was stepped {clock_steps} times, the daemon logged "
                        f"{clock_steps_noticed} steps")
    return verdict


def _match_fills(verdict: Verdict, fills: Sequence[Fill], sales: Sequence[StoredSale]) -> None:
    by_key: dict[tuple[int, int, Decimal], list[StoredSale]] = defaultdict(list)
    for sale in sales:
        by_key[sale.key].append(sale)
    fill_keys = Counter(f.key for f in fills)
    for fill in fills:
        found = by_key.get(fill.key, [])
        if not found:
            verdict.lost += 1
            verdict.problem(f"lost: pump {fill.address:#x} nozzle {fill.logical} dispensed "
                            f"{fill.volume} L ({fill.amount}), totals {fill.totals_after}; "
                            "no sale")
            continue
        if len(found) > 1:
            verdict.doubled += len(found) - 1
            verdict.problem(f"doubled: {len(found)} sales {[s.id for s in found]} for one fill "
                            f"of pump {fill.address:#x} nozzle {fill.logical}")
        sale = found[0]
        if (sale.volume, sale.amount) != (fill.volume, fill.amount):
            verdict.mismatched += 1
            verdict.problem(f"mismatch: sale {sale.id} says {sale.volume} L {sale.amount}, "
                            f"the pump {fill.volume} L {fill.amount}")
    for sale in sales:
        if fill_keys[sale.key] == 0:
            verdict.phantom += 1
            verdict.problem(f"phantom: sale {sale.id} ({sale.volume} L on pump "
                            f"{sale.address:#x} nozzle {sale.logical}) matches no fill")


def _check_totals(verdict: Verdict, sales: Iterable[StoredSale],
                  start: Mapping[tuple[int, int], Decimal],
                  end: Mapping[tuple[int, int], Decimal]) -> None:
    per_nozzle: dict[tuple[int, int], list[StoredSale]] = defaultdict(list)
    for sale in sales:
        per_nozzle[(sale.address, sale.logical)].append(sale)
    for nozzle in sorted(set(start) | set(end) | set(per_nozzle)):
        chain = sorted(per_nozzle.get(nozzle, []), key=lambda s: s.totals_after)
        expected = start.get(nozzle, Decimal(0))
        for sale in chain:
            if sale.totals_before != expected or sale.totals_after - expected != sale.volume:
                verdict.totals_breaks += 1
                verdict.problem(f"totals: sale {sale.id} on {nozzle[0]:#x}/{nozzle[1]} runs "
                                f"{sale.totals_before} -> {sale.totals_after} for {sale.volume} L; "
                                f"the previous sale ended at {expected}")
            expected = sale.totals_after
        final = end.get(nozzle, expected)
        if final != expected:
            verdict.totals_breaks += 1
            verdict.problem(f"totals: pump {nozzle[0]:#x} nozzle {nozzle[1]} ends at {final}, "
                            f"its sales account for {expected}: {final - expected} L unsold")


def _check_seq(verdict: Verdict, seqs: Sequence[int], contiguous: int,
               gaps: Sequence[int]) -> None:
    ordered = sorted(seqs)
    verdict.events, verdict.cloud_contiguous = len(ordered), contiguous
    if ordered != list(range(1, len(ordered) + 1)):
        missing = sorted(set(range(1, (ordered[-1] if ordered else 0) + 1)) - set(ordered))
        verdict.problem(f"seq: the station's events are not 1..N; missing {missing[:10]}")
    if contiguous != len(ordered):
        verdict.problem(f"seq: the cloud holds every event up to {contiguous}, "
                        f"the station has {len(ordered)}")
    if gaps:
        verdict.problem(f"seq: the cloud saw gaps at {list(gaps)[:10]}")


def _check_cloud(verdict: Verdict, sales: Sequence[StoredSale],
                 cloud: Sequence[CloudSale]) -> None:
    counts = Counter(c.sale_id for c in cloud)
    verdict.cloud_sales = len(counts)
    for sale_id, seen in counts.items():
        if seen > 1:
            verdict.doubled += seen - 1
            verdict.problem(f"doubled at the cloud: sale {sale_id} arrived as {seen} events")
    stored = {s.id for s in sales}
    for sale_id in sorted(stored - set(counts)):
        verdict.cloud_lost += 1
        verdict.problem(f"the cloud never got sale {sale_id}")
    for sale_id in sorted(set(counts) - stored):
        verdict.phantom += 1
        verdict.problem(f"the cloud got sale {sale_id}, which the station does not hold")


def _check_full_disk(verdict: Verdict, windows: Sequence[Window], attempts: Sequence[Attempt],
                     fills: Sequence[Fill]) -> None:
    verdict.windows = len(windows)
    for window in windows:
        inside = [a for a in attempts if window.start < a.sent and a.answered < window.end]
        accepted = [a for a in inside if a.status == 202]
        refused = [a for a in inside if a.status == 503 and a.code == "storage_unavailable"]
        verdict.accepted_while_full += len(accepted)
        verdict.refused_while_full += len(refused)
        if accepted:
            verdict.problem(f"authorized {len(accepted)} time(s) while the disk was full "
                            f"({window.end - window.start:.1f} s window)")
        if not refused:
            verdict.problem("no authorization was refused with storage_unavailable while the "
                            f"disk was full ({window.end - window.start:.1f} s window)")
        flowing = [f for f in fills
                   if window.start + AUTHORIZATION_IN_FLIGHT < f.started_at < window.end]
        verdict.fuel_started_while_full += len(flowing)
        if flowing:
            verdict.problem(f"{len(flowing)} fill(s) started while the disk was full")
        after = [a for a in attempts if a.sent >= window.end and a.status == 202]
        if after or any(f.started_at > window.end for f in fills):
            verdict.windows_recovered += 1
        else:
            verdict.problem("the station never authorized again after the disk was freed")
