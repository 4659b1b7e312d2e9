"""``forecourt demo``: a complete simulated station in one command.

Each line of the demo's forecourt (``edge.demo_layout``: a DART line of mixed firmware, an IFSF
LAN with a TQC board and a DIT dispenser, a Gilbarco line) is served by its protocol's
simulator from ``simulator.registry`` on loopback, and the real daemon drives them exactly as
it would drive real dispensers. Simulated customers lift nozzles on every pump, whatever its
protocol; on the attendant pumps a simulated attendant authorizes each waiting customer with a
preset, as a person at the console would; the auto pumps authorize themselves on nozzle lift.
With ``--broker`` the demo cloud acks the station's events and sends app orders for any nozzle.
A simulated gauge console reports tanks that fall as the pumps dispense. The database persists
in the data folder between runs, and the simulated pumps start from the totals it last
recorded, as real dispensers keep their totalizers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sys
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from domain.equipment import NozzleConfig
from domain.errors import StationError
from domain.model import Preset, Role
from domain.states import FuellingPoint
from edge.config import load_config
from edge.demo_layout import PROTOCOLS, DemoLine, demo_config, layout, sim_pumps
from edge.station import Station
from edge.store import Store
from simulator.cloud import CloudPeer
from simulator.gauge import (
    GaugeSimulator,
    demo_tank_settings,
    pump_nozzle_tanks,
    run_gauge_simulator,
)
from simulator.records import SimulationError
from simulator.registry import SimulatedLine, simulation
from simulator.traffic import CustomerTraffic, TrafficSettings
from sync.keys import generate, load_private_key

__all__ = ["DEMO_USERS", "Demo", "DemoCloud", "run_demo"]

log = logging.getLogger(__name__)

DEMO_USERS = (("attendant", Role.ATTENDANT, "1111"), ("cashier", Role.CASHIER, "2222"),
              ("manager", Role.MANAGER, "3333"), ("finance", Role.FINANCE, "4444"),
              ("admin", Role.ADMIN, "9999"))
FLOW = Decimal("45")  # litres a minute at every simulated nozzle


def _ensure_users(db: Path) -> None:
    with Store.open(db) as store:
        for name, role, pin in DEMO_USERS:
            if store.get_user(name) is None:
                store.upsert_user(name, role=role, pin=pin)


def _demo_keys(folder: Path) -> tuple[Path, Path]:
    """The demo cloud's signing key pair, made once and kept with the demo's data."""
    private, public = folder / "cloud.key", folder / "cloud.pub"
    if not private.exists():
        private, public = generate(folder)
    return private, public


async def _attendant(station: Station, rng: random.Random) -> None:
    """Authorizes waiting customers on attendant pumps, like a person at the console."""
    presets = (Preset("amount", Decimal("100.00")), Preset("amount", Decimal("200.00")),
               Preset("amount", Decimal("300.00")), Preset("volume", Decimal("20.00")), None)
    while True:
        await asyncio.sleep(1.0)
        for pump in station.forecourt.pumps.values():
            if (pump.settings.authorize != "attendant" or pump.state is not FuellingPoint.CALLING
                    or pump.nozzle_out is None):
                continue
            nozzle = next(n.number for n in pump.settings.nozzles
                          if n.logical == pump.nozzle_out)
            await asyncio.sleep(rng.uniform(1.0, 4.0))  # the attendant walks over
            try:
                await station.forecourt.authorize(nozzle, rng.choice(presets), user="attendant")
            except StationError as exc:
                log.info("demo attendant could not authorize nozzle %d: %s", nozzle, exc.message)


class DemoCloud:
    """The cloud side of the demo: acks every event and sends app orders, for any nozzle of
    any protocol; the driver who ordered then fills up at the pump."""

    def __init__(self, station: Station, lines: Mapping[int, SimulatedLine], cloud: CloudPeer,
                 rng: random.Random) -> None:
        self.station = station
        self.lines = lines  # station pump number -> its simulated line
        self.cloud = cloud
        self.rng = rng
        self._number = 0

    def _nozzle(self, number: int) -> tuple[int, NozzleConfig]:
        for pump in self.station.config.pumps:
            for nozzle in pump.nozzles:
                if nozzle.number == number:
                    return pump.number, nozzle
        raise KeyError(f"no nozzle {number}")

    async def order(self, nozzle: int, amount: Decimal) -> tuple[str, dict[str, Any]]:
        """An app order, prepaid, for ``nozzle``: its order id and the station's reply."""
        _, config = self._nozzle(nozzle)
        price = self.station.forecourt.prices.prices[config.grade]
        self._number += 1
        order_id = f"APP-{datetime.now(UTC):%H%M%S}-{self._number}"
        expires = (datetime.now(UTC) + timedelta(minutes=2)).isoformat()
        reply = await self.cloud.command("order.create", {
            "order_id": order_id, "nozzle": nozzle, "grade": config.grade,
            "price": str(price), "preset": {"amount": f"{amount:.2f}"},
            "paid": f"{amount:.2f}", "expires_at": expires})
        return order_id, reply

    async def fill(self, nozzle: int) -> None:
        """The driver lifts the nozzle, fills until the pump stops, hangs up."""
        pump, config = self._nozzle(nozzle)
        line = self.lines[pump]
        try:
            line.lift(pump, config.logical)
        except SimulationError:
            return  # someone else is at that pump; the order will expire
        started = False
        for _ in range(1200):  # ten minutes at most
            flowing = line.dispensing(pump) is not None
            if started and not flowing:
                break
            started |= flowing
            await asyncio.sleep(0.5)
        await asyncio.sleep(self.rng.uniform(2.0, 5.0))
        with contextlib.suppress(SimulationError):
            line.hang(pump, config.logical)

    async def run(self, traffic: bool) -> None:
        """With traffic, an app order every 30 to 60 s on an idle pump."""
        while True:
            await asyncio.sleep(self.rng.uniform(30.0, 60.0))
            if not traffic:
                continue
            idle = [p for p in self.station.forecourt.pumps.values()
                    if p.state is FuellingPoint.IDLE and p.nozzle_out is None]
            if not idle:
                continue
            nozzle = self.rng.choice(self.rng.choice(idle).settings.nozzles).number
            order_id, reply = await self.order(nozzle, Decimal(self.rng.choice((100, 150, 200))))
            if not reply["data"]["ok"]:
                log.info("demo app order %s refused: %s", order_id, reply["data"]["error"])
                continue
            log.info("demo app order %s authorized on nozzle %d", order_id, nozzle)
            await asyncio.sleep(self.rng.uniform(3.0, 10.0))  # the driver walks to the pump
            await self.fill(nozzle)


class Demo:
    """The demo station, running while the block runs: ``async with Demo(...) as demo``.

    ``demo.lines`` holds the simulated lines by station pump number, ``demo.station`` the
    daemon, ``demo.cloud`` the demo cloud (with a broker). Leaving the block stops everything.
    """

    def __init__(self, *, data: Path, port: int, broker: str | None = None,
                 dart_pumps: int = 4, protocols: Sequence[str] = PROTOCOLS,
                 seed: int | None = None, traffic: bool = True,
                 install_signals: bool = True) -> None:
        self.layout: list[DemoLine] = layout(dart_pumps=dart_pumps, protocols=protocols)
        self.data = data
        self.port = port
        self.broker = broker
        self.seed = seed
        self.traffic = traffic
        self.install_signals = install_signals
        self.rng = random.Random(seed)
        self.simulated: list[SimulatedLine] = []
        self.lines: dict[int, SimulatedLine] = {}
        self.cloud: DemoCloud | None = None
        self.gauges: GaugeSimulator | None = None
        self.config_path = data / "station.toml"
        self._stack = AsyncExitStack()
        self._station: Station | None = None
        self._run: asyncio.Task[None] | None = None
        self._helpers: list[asyncio.Task[None]] = []

    @property
    def station(self) -> Station:
        assert self._station is not None, "the demo is not running"
        return self._station

    async def __aenter__(self) -> Self:
        try:
            await self._start()
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._stop()

    async def _start(self) -> None:
        await asyncio.to_thread(self.data.mkdir, parents=True, exist_ok=True)
        db = self.data / "station.db"
        private_key = public_key = None
        if self.broker is not None:
            private_key, public_key = await asyncio.to_thread(_demo_keys, self.data / "keys")
        stack = self._stack
        served = []
        for line in self.layout:
            pumps = await asyncio.to_thread(sim_pumps, line, db)
            simulated = await stack.enter_async_context(simulation(line.protocol).run(
                pumps, options=line.options, flow_lpm=FLOW, seed=self.seed, control_port=0))
            served.append((line, simulated))
            self.simulated.append(simulated)
            self.lines.update({pump: simulated for pump in simulated.pumps})
        gauges = self.gauges = await stack.enter_async_context(
            run_gauge_simulator(demo_tank_settings()))
        self.config_path.write_text(demo_config(
            self.data, self.port, served, broker=self.broker, public_key=public_key,
            gauge_url=gauges.url("console")), "utf-8")
        config = load_config(self.config_path)
        if config.tanks is not None:
            # The tanks fall as the simulated pumps dispense, whatever their protocol.
            gauges.follow(self.simulated, pump_nozzle_tanks(config.tanks, config.pumps))
        await asyncio.to_thread(_ensure_users, db)
        station = self._station = Station(config)
        group = await stack.enter_async_context(asyncio.TaskGroup())
        self._run = group.create_task(station.run(install_signals=self.install_signals),
                                      name="station")
        started = group.create_task(station.started.wait(), name="station-started")
        await asyncio.wait({self._run, started}, return_when=asyncio.FIRST_COMPLETED)
        if self._run.done():
            started.cancel()
            self._run.result()
            raise RuntimeError("the demo station stopped as it started")
        if self.broker is not None and private_key is not None:
            sid = config.station.id
            peer = await stack.enter_async_context(CloudPeer(
                self.broker, sid, private_key=load_private_key(private_key),
                client_id=f"demo-cloud-{sid}"))
            self.cloud = DemoCloud(station, self.lines, peer, self.rng)
            self._helpers.append(group.create_task(self.cloud.run(self.traffic),
                                                   name="demo-cloud"))
        if self.traffic:
            customers = CustomerTraffic(self.simulated, seed=self.seed, settings=TrafficSettings(
                mean_interval=25.0, patience=60.0))
            self._helpers.append(group.create_task(customers.run(), name="customers"))
            self._helpers.append(group.create_task(_attendant(station, self.rng),
                                                   name="attendant"))

    async def wait(self) -> None:
        """Until the station stops (Ctrl-C, SIGTERM)."""
        assert self._run is not None
        await asyncio.shield(self._run)

    async def _stop(self) -> None:
        if self._station is not None:
            self._station.request_stop()
        if self._run is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._run)
        for task in self._helpers:
            task.cancel()
        await self._stack.aclose()

    def banner(self) -> str:
        users = ", ".join(f"{name}/{pin} ({role.value})" for name, role, pin in DEMO_USERS)
        station = self.station
        simulators = "\n".join(
            f"    {line.summary()}\n      control API: {line.control_url}"
            for line in self.simulated)
        return f"""
  forecourt demo station {station.config.station.id} is running
    console:          http://127.0.0.1:{station.port}/
    demo users:       {users}
    health:           http://127.0.0.1:{station.port}/api/v1/health
    tanks:            http://127.0.0.1:{station.port}/api/v1/tanks (a simulated gauge console)
    config and data:  {self.config_path.parent} (receipts in receipts/, announcements in voice/)
  pump simulators:
{simulators}
  Ctrl-C stops it.
"""


async def run_demo(*, data: Path, port: int, broker: str | None, pumps: int,
                   seed: int | None, traffic: bool,
                   protocols: Sequence[str] = PROTOCOLS) -> None:
    try:
        demo = Demo(data=data, port=port, broker=broker, dart_pumps=pumps, protocols=protocols,
                    seed=seed, traffic=traffic)
    except ValueError as error:
        raise SystemExit(f"forecourt demo: {error}") from None
    async with demo:
        print(demo.banner(), file=sys.stderr, flush=True)
        await demo.wait()
