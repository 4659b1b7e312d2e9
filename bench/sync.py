"""Bench of the cloud link: how close the outbox comes to a bare MQTT publisher.

    .venv/bin/python bench/sync.py [--events 10000] [--rounds 3] [--window 512] [--ack-every 1]
                                   [--json]

A station that was offline for a while has a backlog; once the broker is back, how fast does it
drain? Each round runs both halves against its own fresh Mosquitto (tests/mosquitto.py config:
loopback, ``max_queued_messages 0``):

1. Baseline: one plain aiomqtt client publishes the same N event messages (the very envelopes
   the link sends) at QoS 1 to ``fcc/v1/{sid}/events``, in batches of ``--window`` concurrent
   publishes each awaited for its PUBACK, as the link publishes a window; one plain subscriber
   receives them at QoS 1. Rate: messages received / s.
2. The link: a ``CloudLink`` drains an N-event outbox in a SQLite store (through the daemon's
   ``Ledger``: reads in threads, deletes in the writer thread) while a ``CloudPeer`` receives,
   deduplicates and acks ``{"upto_seq": contiguous}`` after every ``--ack-every`` events. Rate:
   events acked / s, the clock stopping when the link has applied the ack of the last event
   (so its outbox is empty).

The receiving side of both halves (the bare subscriber, the acking peer) runs in a child
process, as the cloud runs on another machine; the ratio is what the outbox, the acks and the
SQLite deletes cost the station. Target: >= 0.8.
Medians over the rounds (the halves alternate, so a noisy neighbour hits both alike).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

# This file has the name of the `sync` package it measures: its own folder must not shadow it.
BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(REPO))  # tests.mosquitto
sys.path.append(str(BENCH))  # harness, after every package

import aiomqtt  # noqa: E402
from harness import BenchError, machine, mosquitto_child, run_and_report  # noqa: E402

from edge.hub import EventHub  # noqa: E402
from edge.ledger import Ledger  # noqa: E402
from edge.outbox import LedgerOutbox  # noqa: E402
from edge.store import Store  # noqa: E402
from simulator.cloud import CloudPeer  # noqa: E402
from sync.envelope import event_envelope  # noqa: E402
from sync.link import CloudLink  # noqa: E402
from sync.topics import encode  # noqa: E402

SID = "BENCH-SYNC-0001"
THIS_FILE = str(Path(__file__).resolve())
TARGET_RATIO = 0.8
START_TIMEOUT = 10.0
Report = dict[str, Any]


@asynccontextmanager
async def broker(folder: Path) -> AsyncIterator[str]:
    """A fresh Mosquitto as a child that dies with the bench; its URL."""
    async with mosquitto_child(folder, START_TIMEOUT) as config:
        yield config.url


def sale_data(seq: int) -> dict[str, Any]:
    """A `sale.completed` as the API shows a sale (docs/api.md): the realistic message size."""
    return {"id": f"0190f0c2-7a1b-7c3d-8e4f-{seq:012d}", "seq": seq, "pump": 1 + seq % 8,
            "nozzle": 1 + seq % 16, "grade": "92", "volume": "13.33", "amount": "100.00",
            "price": "7.50", "started_at": "2026-11-22T09:15:00+08:00",
            "ended_at": "2026-11-22T09:16:02+08:00", "order_id": None, "paid": False,
            "payments": [], "recovered": False,
            "authorization_id": f"0190f0c2-7a1b-7c3d-8e4f-{seq + 1:012d}",
            "price_set_id": "config",
            "totals": {"volume_before": "1000.00", "volume_after": "1013.33",
                       "amount_before": "7500.00", "amount_after": "7600.00"}}


def fill(path: Path, events: int) -> float:
    """A fresh store with `events` unacknowledged events; returns events written per second."""
    started = time.perf_counter()
    with Store.open(path) as store:
        for seq in range(1, events + 1):
            store.append_event("sale.completed", sale_data(seq))
        assert store.outbox_backlog() == events
    return events / (time.perf_counter() - started)


def payloads_of(path: Path, events: int) -> list[bytes]:
    with Store.open(path) as store:
        stored = store.outbox_pending(after_seq=0, limit=events)
    return [encode(event_envelope(SID, event)) for event in stored]


NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)  # as the link's own client


@asynccontextmanager
async def consumer(kind: str, url: str, events: int, ack_every: int) -> AsyncIterator[
        asyncio.subprocess.Process]:
    """The cloud side in its own process (the cloud is another machine): a bare subscriber
    for the baseline, the acking ``CloudPeer`` for the link. Yields once it is subscribed."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, THIS_FILE, "--consumer", kind, "--url", url,
        "--events", str(events), "--ack-every", str(ack_every),
        stdout=asyncio.subprocess.PIPE)
    try:
        assert child.stdout is not None
        async with asyncio.timeout(START_TIMEOUT):
            line = await child.stdout.readline()
        if line.strip() != b"ready":
            raise BenchError(f"the {kind} consumer did not start: {line!r}")
        yield child
    finally:
        if child.returncode is None:
            child.terminate()
            await child.wait()


async def run_consumer(kind: str, url: str, events: int, ack_every: int) -> None:
    """The child's side of ``consumer``: prints "ready", then "done" once all has arrived."""
    host, port = url.removeprefix("mqtt://").split(":")
    if kind == "baseline":
        async with aiomqtt.Client(host, int(port), identifier="bench-subscriber",
                                  socket_options=NO_DELAY) as subscriber:
            await subscriber.subscribe(f"fcc/v1/{SID}/events", qos=1)
            print("ready", flush=True)
            received = 0
            async for _ in subscriber.messages:
                received += 1
                if received == events:
                    break
    else:
        async with CloudPeer(url, SID, ack_every=ack_every) as cloud:
            print("ready", flush=True)
            await cloud.wait_until(lambda: cloud.contiguous() == events
                                   and cloud.last_ack == events, 300, "every event acked")
            if cloud.gaps():
                raise BenchError(f"gaps at the cloud: {cloud.gaps()[:10]}")
            print(f"duplicates {cloud.duplicates}", flush=True)
    print("done", flush=True)


async def baseline(url: str, payloads: list[bytes], window: int) -> float:
    """Messages / s through the broker from a bare publisher to a bare subscriber."""
    host, port = url.removeprefix("mqtt://").split(":")
    topic = f"fcc/v1/{SID}/events"
    async with consumer("baseline", url, len(payloads), 1) as child:
        assert child.stdout is not None
        started = time.perf_counter()
        async with aiomqtt.Client(host, int(port), identifier="bench-publisher",
                                  socket_options=NO_DELAY) as publisher:
            for first in range(0, len(payloads), window):
                async with asyncio.TaskGroup() as batch:
                    for payload in payloads[first:first + window]:
                        batch.create_task(publisher.publish(topic, payload, qos=1))
            async with asyncio.timeout(120):
                while (await child.stdout.readline()).strip() != b"done":
                    pass
        elapsed = time.perf_counter() - started
    return len(payloads) / elapsed


async def ignore_command(payload: bytes) -> None:
    return None


async def link_run(url: str, db: Path, events: int, window: int, ack_every: int) -> Report:
    """The link draining the store's backlog to an acking peer in another process."""
    store = Store.open(db)
    ledger = Ledger(store, EventHub())
    outbox = LedgerOutbox(ledger)
    try:
        async with consumer("peer", url, events, ack_every) as child:
            assert child.stdout is not None
            started = time.perf_counter()
            async with CloudLink(station_id=SID, broker=url, outbox=outbox,
                                 envelope=partial(event_envelope, SID),
                                 on_command=ignore_command, live=lambda: {"pumps": []},
                                 boot_id="bench", version="bench",
                                 clock=lambda: datetime.now(UTC), window=window) as link:
                async with asyncio.timeout(300):
                    while link.acked_upto < events:
                        await asyncio.sleep(0.005)
                elapsed = time.perf_counter() - started
                resent = link.resent
            duplicates = -1
            async with asyncio.timeout(60):
                while (line := (await child.stdout.readline()).strip()) != b"done":
                    if line.startswith(b"duplicates "):
                        duplicates = int(line.split()[1])
                    elif not line:
                        raise BenchError("the peer ended before every event was acked")
            backlog = await outbox.backlog()
            if backlog:
                raise BenchError(f"link run incomplete: backlog {backlog}")
            return {"events_per_s": events / elapsed, "seconds": elapsed,
                    "duplicates": duplicates, "resent": resent}
    finally:
        ledger.close()
        store.close()


async def run(args: argparse.Namespace) -> Report:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    report: Report = {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(), "events": args.events, "window": args.window,
        "ack_every": args.ack_every, "rounds": args.rounds, "target_ratio": TARGET_RATIO,
        "baseline_msgs_per_s": [], "link": [],
    }
    with tempfile.TemporaryDirectory(prefix="forecourt-bench-sync-") as name:
        folder = Path(name)
        template = folder / "template.db"
        report["fill_events_per_s"] = await asyncio.to_thread(fill, template, args.events)
        payloads = payloads_of(template, args.events)
        report["message_bytes"] = statistics.median(len(p) for p in payloads)
        for number in range(1, args.rounds + 1):
            async with broker(folder / f"broker-{number}-baseline") as url:
                report["baseline_msgs_per_s"].append(
                    await baseline(url, payloads, args.window))
            db = folder / f"station-{number}.db"
            shutil.copyfile(template, db)  # closed cleanly: no WAL left beside it
            async with broker(folder / f"broker-{number}-link") as url:
                report["link"].append(
                    await link_run(url, db, args.events, args.window, args.ack_every))
    base = statistics.median(report["baseline_msgs_per_s"])
    link = statistics.median(r["events_per_s"] for r in report["link"])
    report.update(baseline_median=base, link_median=link, ratio=link / base)
    return report


def render(report: Report) -> str:
    runs = ", ".join(f"{r:,.0f}" for r in report["baseline_msgs_per_s"])
    links = ", ".join(f"{r['events_per_s']:,.0f}" for r in report["link"])
    dups = sum(r["duplicates"] for r in report["link"])
    resent = sum(r["resent"] for r in report["link"])
    verdict = "meets" if report["ratio"] >= report["target_ratio"] else "BELOW"
    return "\n".join([
        f"cloud link bench: {report['events']:,} events of ~{report['message_bytes']:.0f} B, "
        f"window {report['window']}, ack every {report['ack_every']}, "
        f"{report['rounds']} rounds ({report['machine']['cpus']} CPUs, "
        f"{report['machine']['processor']})",
        f"  store filled at {report['fill_events_per_s']:,.0f} events/s",
        f"  baseline, bare QoS 1 publisher:  {report['baseline_median']:,.0f} msgs/s"
        f"  (rounds: {runs})",
        f"  CloudLink, outbox drained+acked: {report['link_median']:,.0f} events/s"
        f"  (rounds: {links}; duplicates {dups}, resent {resent})",
        f"  ratio {report['ratio']:.2f} (target >= {report['target_ratio']}: {verdict})",
    ])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000, help="backlog size (10000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both halves (3)")
    parser.add_argument("--window", type=int, default=512,
                        help="events in flight, the link's default (512)")
    parser.add_argument("--ack-every", type=int, default=50,
                        help="the peer acks after this many new events (50): acks are cumulative, "
                             "a cloud acks a committed batch")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--consumer", choices=("baseline", "peer"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("-v", "--verbose", action="store_true", help="log the link")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.events < 1 or args.rounds < 1 or args.window < 1 or args.ack_every < 1:
        print("bench/sync.py: --events, --rounds, --window and --ack-every must be >= 1",
              file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # aiomqtt warns about every publish beyond 10 awaiting its PUBACK: a window is meant to.
    logging.getLogger("mqtt").setLevel(logging.ERROR)
    if args.consumer is not None:
        asyncio.run(run_consumer(args.consumer, args.url, args.events, args.ack_every))
        return 0
    return run_and_report("sync.py", lambda: run(args), render, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
