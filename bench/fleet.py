"""Bench of a fleet's ingest: many stations' outboxes into shared-subscription consumers.

    .venv/bin/python bench/fleet.py [--stations 50] [--events 200] [--consumers 4]
                                    [--window 512] [--ack-every 16] [--json]

What the cloud sees when a region's broker comes back after an outage: every station drains its
backlog at once. One Mosquitto (tests/mosquitto.py config plus ``set_tcp_nodelay true``, as in
config/mosquitto/mosquitto.conf), in this one process:

- S stations, each a ``CloudLink`` over its own SQLite outbox (a copy of one store filled with M
  ``sale.completed`` events: the same event ids at every station, which is harmless since the
  cloud keys on (station, seq)) and the daemon's ``Ledger``;
- K consumers on the shared subscription ``$share/ingest/fcc/v1/+/events``. Mosquitto hands each
  message to one member of the group, round robin, so one station's events are spread over all
  K consumers and arrive out of order between them. They share one ``StationStream`` per station
  (the cloud's database, keyed by (station, seq)): duplicates are dropped, and the ack sent to
  ``fcc/v1/{station}/acks`` is always the station's contiguous prefix, whichever consumer sends it.

Reported: ingest events/s until every outbox is empty, duplicates, events that arrived before
a lower seq of their station (what a per-station ordering assumption would have got wrong),
and gaps per station (must be 0). Baseline: S bare aiomqtt publishers sending the same messages
(windowed the same way, no outbox, no acks) to the same K consumers. Ratio target: >= 0.8.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))  # tests.mosquitto

import aiomqtt  # noqa: E402
from harness import machine, mosquitto_child, run_and_report  # noqa: E402

from domain.model import Event  # noqa: E402
from edge.hub import EventHub  # noqa: E402
from edge.ledger import Ledger  # noqa: E402
from edge.outbox import LedgerOutbox  # noqa: E402
from edge.store import Store  # noqa: E402
from simulator.cloud import NO_DELAY, StationStream, parse_envelope  # noqa: E402
from sync.envelope import event_envelope  # noqa: E402
from sync.link import CloudLink  # noqa: E402
from sync.topics import encode  # noqa: E402
from tests.mosquitto import Mosquitto  # noqa: E402

TARGET_RATIO = 0.8
START_TIMEOUT = 10.0
SHARED = "$share/ingest/fcc/v1/+/events"
SWEEP = 0.05  # seconds between the consumers' looks for acks that are due on their timer
Report = dict[str, Any]


@asynccontextmanager
async def broker(folder: Path) -> AsyncIterator[Mosquitto]:
    """A fresh Mosquitto as a child that dies with the bench."""
    async with mosquitto_child(folder, START_TIMEOUT) as config:
        yield config


def fill(path: Path, events: int) -> None:
    with Store.open(path) as store:
        for seq in range(1, events + 1):
            store.append_event("sale.completed", {
                "id": f"sale-{seq:06d}", "seq": seq, "pump": 1 + seq % 8, "nozzle": 1 + seq % 16,
                "grade": "92", "volume": "13.33", "amount": "100.00", "price": "7.50",
                "started_at": "2026-11-22T09:15:00+08:00",
                "ended_at": "2026-11-22T09:16:02+08:00", "order_id": None, "paid": False,
                "payments": [], "recovered": False, "authorization_id": f"auth-{seq:06d}",
                "price_set_id": "config",
                "totals": {"volume_before": "1000.00", "volume_after": "1013.33",
                           "amount_before": "7500.00", "amount_after": "7600.00"}})


class Ingest:
    """The cloud's ingest service: K consumers sharing one stream per station."""

    def __init__(self, port: int, stations: list[str], consumers: int, *, ack: bool,
                 ack_every: int) -> None:
        self.port = port
        self.ack = ack
        self.streams = {sid: StationStream(ack_every=ack_every) for sid in stations}
        self.clients = [aiomqtt.Client("127.0.0.1", port, identifier=f"ingest-{n}",
                                       socket_options=NO_DELAY) for n in range(consumers)]
        self.messages = 0
        self.malformed = 0
        self.early = 0  # events that arrived before a lower seq of their own station
        self.acks = 0
        self.done = asyncio.Event()
        self._expected = 0

    def expect(self, events_per_station: int) -> None:
        self._expected = events_per_station

    def complete(self) -> bool:
        return all(s.contiguous() >= self._expected for s in self.streams.values())

    async def consume(self, client: aiomqtt.Client, acks: asyncio.Queue[tuple[str, int]]) -> None:
        loop = asyncio.get_running_loop()
        async for message in client.messages:
            self.messages += 1
            sid = message.topic.value.split("/")[2]
            stream = self.streams.get(sid)
            payload = message.payload
            envelope = (parse_envelope(payload, sid, event=True)
                        if stream is not None and isinstance(payload, bytes | str) else None)
            if stream is None or envelope is None:
                self.malformed += 1
                continue
            if envelope["seq"] < stream.highest():
                self.early += 1
            stream.add(envelope, loop.time())
            if self.ack:
                upto = stream.take_ack(loop.time())
                if upto is not None:
                    acks.put_nowait((sid, upto))
            if stream.contiguous() >= self._expected and self.complete():
                self.done.set()

    async def send_acks(self, client: aiomqtt.Client,
                        acks: asyncio.Queue[tuple[str, int]]) -> None:
        """Acks leave from a queue so that receiving never waits for a PUBACK."""
        while True:
            sid, upto = await acks.get()
            await client.publish(f"fcc/v1/{sid}/acks", json.dumps({"upto_seq": upto}), qos=1)
            self.acks += 1

    async def sweep(self, acks: asyncio.Queue[tuple[str, int]]) -> None:
        """Acks that are due on the timer (fewer than ack_every new events since the last)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SWEEP)
            for sid, stream in self.streams.items():
                upto = stream.take_ack(loop.time())
                if upto is not None:
                    acks.put_nowait((sid, upto))

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Ingest]:
        async with AsyncExitStack() as stack:
            for client in self.clients:
                await stack.enter_async_context(client)
                await client.subscribe(SHARED, qos=1)
            group = await stack.enter_async_context(asyncio.TaskGroup())
            tasks = []
            for number, client in enumerate(self.clients):
                queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
                tasks.append(group.create_task(self.consume(client, queue),
                                               name=f"ingest {number}"))
                if self.ack:
                    tasks.append(group.create_task(self.send_acks(client, queue),
                                                   name=f"ingest {number} acks"))
                    tasks.append(group.create_task(self.sweep(queue),
                                                   name=f"ingest {number} sweep"))
            try:
                yield self
            finally:
                for task in tasks:
                    task.cancel()

    def summary(self) -> Report:
        gaps = {sid: s.gaps() for sid, s in self.streams.items() if s.gaps()}
        short = {sid: s.contiguous() for sid, s in self.streams.items()
                 if s.contiguous() < self._expected}
        return {"messages": self.messages, "duplicates": sum(
                    s.duplicates for s in self.streams.values()),
                "conflicts": sum(len(s.conflicts) for s in self.streams.values()),
                "arrived_before_a_lower_seq": self.early, "malformed": self.malformed,
                "acks": self.acks, "stations_with_gaps": len(gaps),
                "stations_incomplete": len(short), "gaps": dict(list(gaps.items())[:5])}


def station_ids(count: int) -> list[str]:
    return [f"FLEET-{n:04d}" for n in range(1, count + 1)]


async def raw_station(port: int, sid: str, payloads: list[bytes], window: int) -> None:
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"raw-{sid}") as client:
        for first in range(0, len(payloads), window):
            async with asyncio.TaskGroup() as batch:
                for payload in payloads[first:first + window]:
                    batch.create_task(client.publish(f"fcc/v1/{sid}/events", payload, qos=1))


async def baseline(folder: Path, args: argparse.Namespace, events: list[Event]) -> Report:
    sids = station_ids(args.stations)
    async with broker(folder / "broker-baseline") as mqtt:
        ingest = Ingest(mqtt.port, sids, args.consumers, ack=False, ack_every=args.ack_every)
        ingest.expect(args.events)
        async with ingest.running():
            started = time.perf_counter()
            async with asyncio.timeout(args.timeout), asyncio.TaskGroup() as group:
                for sid in sids:
                    payloads = [encode(event_envelope(sid, event)) for event in events]
                    group.create_task(raw_station(mqtt.port, sid, payloads, args.window),
                                      name=f"raw {sid}")
                await ingest.done.wait()
            elapsed = time.perf_counter() - started
        total = args.stations * args.events
        return {"events_per_s": total / elapsed, "seconds": elapsed, **ingest.summary()}


async def ignore_command(payload: bytes) -> None:
    return None


async def fleet(folder: Path, args: argparse.Namespace, template: Path) -> Report:
    sids = station_ids(args.stations)
    async with broker(folder / "broker-fleet") as mqtt, AsyncExitStack() as stack:
        ingest = Ingest(mqtt.port, sids, args.consumers, ack=True, ack_every=args.ack_every)
        ingest.expect(args.events)
        await stack.enter_async_context(ingest.running())
        links = []
        for sid in sids:
            db = folder / f"{sid}.db"
            shutil.copyfile(template, db)
            store = stack.enter_context(Store.open(db))
            ledger = Ledger(store, EventHub())
            stack.callback(ledger.close)  # runs before the store closes: exits go in reverse
            links.append(CloudLink(
                station_id=sid, broker=mqtt.url, outbox=LedgerOutbox(ledger),
                envelope=partial(event_envelope, sid), on_command=ignore_command,
                live=lambda: {"pumps": []}, boot_id="bench", version="bench",
                clock=lambda: datetime.now(UTC), window=args.window))
        started = time.perf_counter()
        for link in links:
            await stack.enter_async_context(link)
        async with asyncio.timeout(args.timeout):
            while any(link.acked_upto < args.events for link in links):
                await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
        total = args.stations * args.events
        return {"events_per_s": total / elapsed, "seconds": elapsed,
                "resent": sum(link.resent for link in links), **ingest.summary()}


async def run(args: argparse.Namespace) -> Report:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    report: Report = {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(), "stations": args.stations, "events_per_station": args.events,
        "consumers": args.consumers, "window": args.window, "ack_every": args.ack_every,
        "target_ratio": TARGET_RATIO,
    }
    with tempfile.TemporaryDirectory(prefix="forecourt-bench-fleet-") as name:
        folder = Path(name)
        template = folder / "template.db"
        await asyncio.to_thread(fill, template, args.events)
        with Store.open(template) as store:
            events = store.outbox_pending(after_seq=0, limit=args.events)
        report["baseline"] = await baseline(folder, args, events)
        report["fleet"] = await fleet(folder, args, template)
    report["ratio"] = report["fleet"]["events_per_s"] / report["baseline"]["events_per_s"]
    return report


def render(report: Report) -> str:
    base, got = report["baseline"], report["fleet"]
    verdict = "meets" if report["ratio"] >= report["target_ratio"] else "BELOW"
    return "\n".join([
        f"fleet ingest bench: {report['stations']} stations x {report['events_per_station']} "
        f"events, {report['consumers']} consumers on {SHARED}, window {report['window']}, "
        f"ack every {report['ack_every']} ({report['machine']['cpus']} CPUs, "
        f"{report['machine']['processor']})",
        f"  baseline, bare publishers: {base['events_per_s']:,.0f} events/s "
        f"({base['seconds']:.2f} s; arrived before a lower seq: "
        f"{base['arrived_before_a_lower_seq']})",
        f"  CloudLinks with outboxes:  {got['events_per_s']:,.0f} events/s "
        f"({got['seconds']:.2f} s; duplicates {got['duplicates']}, resent {got['resent']}, "
        f"acks {got['acks']}, arrived before a lower seq {got['arrived_before_a_lower_seq']})",
        f"  stations with gaps: {got['stations_with_gaps']}, incomplete: "
        f"{got['stations_incomplete']}, conflicting seqs: {got['conflicts']}",
        f"  ratio {report['ratio']:.2f} (target >= {report['target_ratio']}: {verdict})",
    ])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stations", type=int, default=50, help="stations (50)")
    parser.add_argument("--events", type=int, default=200, help="events queued per station (200)")
    parser.add_argument("--consumers", type=int, default=4,
                        help="shared-subscription consumers (4)")
    parser.add_argument("--window", type=int, default=512,
                        help="each link's window (512, the link's default)")
    parser.add_argument("--ack-every", type=int, default=16,
                        help="a station's events per ack, or after 0.1 s (16)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per half (300)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("-v", "--verbose", action="store_true", help="log the links")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if min(args.stations, args.events, args.consumers, args.window, args.ack_every) < 1:
        print("bench/fleet.py: counts must be >= 1", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("mqtt").setLevel(logging.ERROR)  # "pending publish calls": by design
    return run_and_report("fleet.py", lambda: run(args), render, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
