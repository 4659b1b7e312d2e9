"""Bench of five-year retention: how the database grows at a busy station, and how fast the
console's and the cloud's reads stay on five years of sales.

    .venv/bin/python bench/retention.py [--sales-per-day 1200] [--years 5] [--json]

1. ledger: ``--ledger-sales`` sales written the way the daemon writes them (retention_data.py),
   each write its own transaction through ``Store``: the authorization and its states, the sale
   (its totalizer reading and ``sale.completed`` event), the payment(s), an audit entry for the
   authorize and each payment, the tank readings its litres cause (a gauge reports a tank each
   ``--noise`` litres, with a ``tank.reading`` event), app orders (``--orders`` of the sales:
   four ``order.updated`` events and a command audit entry, paid in the app), three shift closes
   and the tanks' day closes per ``--sales-per-day``, the cloud's acks. Bytes per sale: the
   growth of the pages in use after a checkpoint, divided by the sales; by table (``dbstat``).
2. year: ``--seed-days`` days of the same traffic, through the same store code with one
   transaction per day, copied (keys, totalizers and times shifted in SQL) into 365 days: the
   size of a year, to confirm the extrapolation of part 1.
3. latency: the copies go on to ``--years`` years; then each read a console page or a cloud
   pull makes, ``--repeat`` times, against ``SELECT * FROM sales WHERE rowid = ?`` on random rows
   measured in the same run; last, ``archive`` of the oldest month: its time, and how long its
   one delete transaction held the write lock (what the daemon's writes wait for).

The copies' event data and audit hashes are the seed's (same sizes; not a valid chain): sizes and
the shape of the reads are what is measured here. Nothing asserts a time.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from harness import machine, revision, run_and_report
from retention_data import NOZZLES, START, ZONE, Clock, Traffic, build_seed, clone

from edge.reports import daily_report, day_span
from edge.store import Store
from edge.store.archive import archive

Report = dict[str, Any]
TABLES = ("sales", "events", "payments", "authorizations", "totals", "tank_readings", "audit",
          "orders", "shifts", "shift_totals", "tank_reconciliations", "outbox")


def used_bytes(conn: sqlite3.Connection) -> tuple[int, dict[str, int]]:
    """Bytes in use (pages in use x page size) and by table, indexes counted with their table."""
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    owner = dict(conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type IN "
                              "('table', 'index')").fetchall())  # fmt: skip
    by_table: dict[str, int] = {}
    for name, used in conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
        table = owner.get(name, name)
        by_table[table] = by_table.get(table, 0) + used
    return (pages - free) * size, by_table


def row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}


def bench_ledger(folder: Path, args: argparse.Namespace) -> Report:
    clock = Clock(START)
    with Store.open(folder / "ledger.db", clock=clock, zone=ZONE) as store:
        traffic = Traffic(store, clock, args)
        conn = store._db._connection()
        for _ in range(args.sales_per_day // 3):  # the first pages of each table are not growth
            traffic.sale()
        bytes0, tables0 = used_bytes(conn)
        rows0 = row_counts(conn)
        started = time.perf_counter()
        for _ in range(args.ledger_sales):
            traffic.sale()
        seconds = time.perf_counter() - started
        bytes1, tables1 = used_bytes(conn)
        rows1 = row_counts(conn)
    n = args.ledger_sales
    return {"sales": n, "bytes_per_sale": (bytes1 - bytes0) / n,
            "ms_per_sale": seconds * 1000 / n,
            "rows_per_sale": {t: (rows1[t] - rows0[t]) / n for t in TABLES},
            "bytes_per_sale_by_table": {t: (tables1.get(t, 0) - tables0.get(t, 0)) / n
                                        for t in TABLES}}  # fmt: skip


def measure_year(path: Path) -> Report:
    conn = sqlite3.connect(path)
    try:
        used, by_table = used_bytes(conn)
        rows = row_counts(conn)
    finally:
        conn.close()
    sales = rows["sales"]
    return {"sales": sales, "bytes": used, "file_bytes": path.stat().st_size,
            "bytes_per_sale": used / sales, "rows": rows,
            "bytes_per_sale_by_table": {t: by_table.get(t, 0) / sales for t in TABLES}}


def timed(call: Callable[[], Any], repeat: int) -> float:
    """Median seconds of `call`, after one unmeasured call (the pages it reads, cached)."""
    call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def bench_latency(path: Path, args: argparse.Namespace) -> Report:
    rng = random.Random(args.seed)
    with Store.open(path, zone=ZONE) as store:
        conn = store._db._connection()
        last = store.last_seq()
        rows = conn.execute("SELECT MAX(rowid) FROM sales").fetchone()[0]
        baseline = timed(lambda: conn.execute("SELECT * FROM sales WHERE rowid = ?",
                                              (rng.randint(1, rows),)).fetchall(), 2000)
        some = store.sales(since_seq=last // 2, limit=1)[0]
        grades = {n: g for n, _, g in NOZZLES}
        day = (some.ended_at.astimezone(ZONE)).date()
        reads: dict[str, Callable[[], Any]] = {
            "sales page (middle)": lambda: store.sales(since_seq=rng.randint(1, last), limit=100),
            "sales page (newest)": lambda: store.sales(since_seq=last - 300, limit=100),
            "unpaid list": lambda: store.sales(unpaid=True, limit=200),
            "sale by id": lambda: store.get_sale(some.id),
            "daily report": lambda: daily_report(store.sales_ended_between(*day_span(day, ZONE)),
                                                 day=day, zone=ZONE),
            "open shift report": lambda: store.shift_report(None, grades=grades),
            "totals pull": store.latest_totals,
            "sales pull (500)": lambda: store.sales(since_seq=rng.randint(1, last), limit=500),
            "outbox": lambda: store.outbox_pending(limit=500),
            "audit page": lambda: store.audit_entries(rng.randint(1, last), 100),
            "tank readings, one day": lambda: store.tank_readings(
                1, since=datetime.combine(day, datetime.min.time(), ZONE),
                until=datetime.combine(day + timedelta(days=1), datetime.min.time(), ZONE)),
        }
        found = {}
        for name, call in reads.items():
            seconds = timed(call, args.repeat)
            found[name] = {"ms": seconds * 1000, "ratio": seconds / baseline}
        oldest = store.sales(since_seq=0, limit=1)[0].ended_at.astimezone(ZONE).date()
        month = oldest + timedelta(days=30)
        held: list[float] = []
        store_write = store._db.write

        @contextmanager
        def measured_write() -> Iterator[sqlite3.Connection]:
            with store_write() as conn:
                started = time.perf_counter()
                yield conn
            held.append(time.perf_counter() - started)

        store._db.write = measured_write  # type: ignore[method-assign]
        started = time.perf_counter()
        made = archive(store, month, zone=ZONE, directory=path.parent / "archives")
        total = time.perf_counter() - started
    assert made is not None
    return {"sales": rows, "baseline_ms": baseline * 1000, "reads": found,
            "archive": {"name": made.name, "sales": made.rows("sales"),
                        "rows": sum(f.rows for f in made.files),
                        "bytes": sum(f.bytes for f in made.files), "seconds": total,
                        "delete_ms": held[-1] * 1000}}


def render(report: Report) -> str:
    m = report["machine"]
    out = [f"bench/retention.py, {report['date']}, revision {report['revision']}, "
           f"{m['cpus']} CPUs ({m['processor']}), load {m['load_before']:.2f} -> "
           f"{m['load_after']:.2f}"]
    if "ledger" in report:
        r = report["ledger"]
        out.append(f"\nledger: {r['sales']} sales as the daemon writes them "
                   f"({r['ms_per_sale']:.1f} ms of writes each)")
        out.append(f"  {r['bytes_per_sale']:.0f} bytes per sale; rows per sale: " + ", ".join(
            f"{t} {v:.2f}" for t, v in r["rows_per_sale"].items() if v >= 0.005))
        year = r["bytes_per_sale"] * int(report["settings"]["sales_per_day"]) * 365
        out.append(f"  at {report['settings']['sales_per_day']} sales a day: "
                   f"{year / 1e9:.2f} GB a year, {5 * year / 1e9:.1f} GB in five years")
    if "year" in report:
        r = report["year"]
        out.append(f"\none year: {r['sales']:,} sales ({report['seed_seconds']:.0f} s for the "
                   f"seed days, {report['clone_seconds']:.0f} s of copies in all)")
        out.append(f"  {r['bytes'] / 1e6:,.0f} MB used ({r['file_bytes'] / 1e6:,.0f} MB file), "
                   f"{r['bytes_per_sale']:.0f} bytes per sale; five years: "
                   f"{5 * r['bytes'] / 1e9:.1f} GB")
        out.append("  by table, bytes per sale: " + ", ".join(
            f"{t} {v:.0f}" for t, v in r["bytes_per_sale_by_table"].items() if v >= 1))
    if "latency" in report:
        r = report["latency"]
        out.append(f"\nreads on {r['sales']:,} sales; baseline SELECT * FROM sales WHERE rowid = ?"
                   f" {r['baseline_ms'] * 1000:.1f} us (median)")
        for name, t in r["reads"].items():
            out.append(f"  {name:<24} {t['ms']:9.3f} ms  x{t['ratio']:,.0f}")
        a = r["archive"]
        out.append(f"  archive {a['name']}: {a['sales']:,} sales, {a['rows']:,} rows, "
                   f"{a['bytes'] / 1e6:.1f} MB of files in {a['seconds']:.1f} s; the delete "
                   f"transaction held the write lock {a['delete_ms']:.0f} ms")
    return "\n".join(out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench/retention.py",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--sales-per-day", type=int, default=1200, metavar="N")
    parser.add_argument("--seed-days", type=int, default=5, metavar="N",
                        help="days written through the store; the years are copies of them")
    parser.add_argument("--years", type=int, default=5, metavar="N",
                        help="years of sales the reads are timed on (default 5)")
    parser.add_argument("--ledger-sales", type=int, default=300, metavar="N")
    parser.add_argument("--orders", type=float, default=0.05, help="share of app orders")
    parser.add_argument("--split", type=float, default=0.05,
                        help="share of sales paid in two parts")
    parser.add_argument("--noise", type=Decimal, default=Decimal(20),
                        help="litres a tank moves before the gauge reports it (wetstock.noise)")
    parser.add_argument("--repeat", type=int, default=50, metavar="N",
                        help="timed calls per read (median)")
    parser.add_argument("--parts", default="ledger,year,latency", metavar="P,Q")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="build in DIR and keep the databases (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _terminated(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # unwinds through the temporary folder's cleanup


async def run(args: argparse.Namespace) -> Report:
    signal.signal(signal.SIGTERM, _terminated)
    parts = set(args.parts.split(","))
    report: Report = {"date": datetime.now().astimezone().isoformat(timespec="seconds"),
                      "machine": machine(), "revision": revision(), "settings": {
                          k: str(v) for k, v in vars(args).items() if k not in ("json", "keep")}}
    report["machine"]["load_before"] = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="forecourt-retention-") as name:
        folder = args.keep or Path(name)
        folder.mkdir(parents=True, exist_ok=True)
        if "ledger" in parts:
            report["ledger"] = bench_ledger(folder, args)
        if parts & {"year", "latency"}:
            seed, station = folder / "seed.db", folder / "station.db"
            report["seed_seconds"] = build_seed(seed, args)
            shutil.copyfile(seed, station)
            per_year = 365 // args.seed_days
            report["clone_seconds"] = clone(seed, station, range(1, per_year), args.seed_days)
            report["year"] = measure_year(station)
            if "latency" in parts:
                report["clone_seconds"] += clone(seed, station, range(per_year,
                                                 per_year * args.years), args.seed_days)
                report["latency"] = bench_latency(station, args)
    report["machine"]["load_after"] = os.getloadavg()[0]
    return report


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_and_report("retention.py", lambda: run(args), render, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
