"""``forecourt demo``: a complete simulated station in one command.

The pump simulator serves a simulated RS-485 line on a loopback TCP port, the real daemon drives
it over DART exactly as it would drive a serial-to-Ethernet converter, and simulated customers
lift nozzles. On the attendant pumps a simulated attendant authorizes each waiting customer with a
preset, as a person at the console would; the auto pumps authorize themselves on nozzle lift.
The database persists in the data folder between runs, and the simulated pumps start from the
totals it last recorded, as real dispensers keep their totalizers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from domain.errors import StationError
from domain.model import Preset, Role
from domain.states import FuellingPoint
from edge.config import load_config
from edge.station import Station
from edge.store import Store
from simulator.cloud import CloudPeer
from simulator.control import Simulator, run_simulator
from simulator.gauge import (
    demo_tank_settings,
    demo_tanks_toml,
    pump_nozzle_tanks,
    run_gauge_simulator,
)
from simulator.pump import SimulatedPump
from simulator.records import SimulationError
from simulator.traffic import CustomerTraffic, TrafficSettings
from sync.keys import generate, load_private_key

log = logging.getLogger(__name__)

DEMO_USERS = (("attendant", Role.ATTENDANT, "1111"), ("cashier", Role.CASHIER, "2222"),
              ("manager", Role.MANAGER, "3333"), ("finance", Role.FINANCE, "4444"),
              ("admin", Role.ADMIN, "9999"))
GRADES = (("92", "92号汽油", "7.50", 92), ("95", "95号汽油", "8.02", 95),
          ("0", "0号柴油", "7.16", 1))
FIRST_ADDRESS = 0x50


def _nozzle_grades(pump: int) -> list[tuple[str, int]]:
    """Every pump sells 92; even pumps add 95, odd pumps diesel (grade code, DC7 number)."""
    second = GRADES[1] if pump % 2 == 0 else GRADES[2]
    return [(GRADES[0][0], GRADES[0][3]), (second[0], second[3])]


def demo_config(data: Path, line_url: str, port: int, pumps: int,
                broker: str | None = None, public_key: Path | None = None,
                gauge_url: str | None = None) -> str:
    parts = [
        '# Written by `forecourt demo` at every start; edit config/station.example.toml instead.',
        '[station]\nid = "XJ-DEMO-0001"\nname = "乌鲁木齐演示加油站"\ntimezone = "Asia/Shanghai"',
        f'[storage]\npath = "{(data / "station.db").resolve()}"',
        f'[api]\nlisten = "127.0.0.1:{port}"',
    ]
    for code, name, price, _ in GRADES:
        parts.append(f'[[grades]]\ncode = "{code}"\nname = "{name}"\nprice = "{price}"')
    parts.append(f'[[lines]]\nid = "line1"\nport = "{line_url}"\nprotocol = "dart"\n'
                 'baudrate = 9600\nparity = "O"')
    root = data.resolve()
    parts.append(f'[printer]\nkind = "file"\naddress = "{root / "receipts.bin"}"\n'
                 f'preview_dir = "{root / "receipts"}"\n'
                 'invoice_url = "https://fapiao.example.com/i/{sale_id}"')
    parts.append(f'[voice]\noutput = "files"\nfolder = "{root / "voice"}"')
    if broker is not None:
        parts.append(f'[sync]\nbroker = "{broker}"\ncloud_public_key = "{public_key}"')
    if gauge_url is not None:
        parts.append(demo_tanks_toml(gauge_url))
    nozzle = 1
    for number in range(1, pumps + 1):
        mode = "attendant" if number <= (pumps + 1) // 2 else "auto"
        parts.append(f'[[pumps]]\nnumber = {number}\nline = "line1"\n'
                     f'address = {FIRST_ADDRESS + number - 1:#x}\nauthorize = "{mode}"')
        for logical, (code, _) in enumerate(_nozzle_grades(number), start=1):
            parts.append(f'[[pumps.nozzles]]\nnumber = {nozzle}\nlogical = {logical}\n'
                         f'grade = "{code}"')
            nozzle += 1
    return "\n\n".join(parts) + "\n"


def _simulated_pumps(db: Path, pumps: int) -> list[SimulatedPump]:
    result = []
    with Store.open(db) as store:
        nozzle = 1
        for number in range(1, pumps + 1):
            grades = _nozzle_grades(number)
            totals: dict[int, tuple[int, int]] = {}
            for logical in range(1, len(grades) + 1):
                last = store.last_totals(number, nozzle)
                if last is not None:
                    totals[logical] = (int(last.volume_total * 100), int(last.amount_total * 100))
                nozzle += 1
            result.append(SimulatedPump(
                FIRST_ADDRESS + number - 1,
                {logical: dc7 for logical, (_, dc7) in enumerate(grades, start=1)},
                flow_lpm=Decimal("45"), totals=totals))
    return result


def _ensure_users(db: Path) -> None:
    with Store.open(db) as store:
        for name, role, pin in DEMO_USERS:
            if store.get_user(name) is None:
                store.upsert_user(name, role=role, pin=pin)


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


def _demo_keys(folder: Path) -> tuple[Path, Path]:
    """The demo cloud's signing key pair, made once and kept with the demo's data."""
    private, public = folder / "cloud.key", folder / "cloud.pub"
    if not private.exists():
        private, public = generate(folder)
    return private, public


async def _app_orders(station: Station, sim: Simulator, broker: str, private_key: Path,
                      rng: random.Random, traffic: bool) -> None:
    """The cloud side of the demo: acks every event and, with traffic, sends app orders."""
    sid = station.config.station.id
    async with CloudPeer(broker, sid, private_key=load_private_key(private_key),
                         client_id=f"demo-cloud-{sid}") as cloud:
        number = 0
        while True:
            await asyncio.sleep(rng.uniform(30.0, 60.0))
            if not traffic:
                continue
            idle = [p for p in station.forecourt.pumps.values()
                    if p.state is FuellingPoint.IDLE and p.nozzle_out is None]
            if not idle:
                continue
            pump = rng.choice(idle)
            nozzle = rng.choice(pump.settings.nozzles)
            price = station.forecourt.prices.prices[nozzle.grade]
            amount = Decimal(rng.choice((100, 150, 200)))
            number += 1
            order_id = f"APP-{datetime.now(UTC):%H%M%S}-{number}"
            expires = (datetime.now(UTC) + timedelta(minutes=2)).isoformat()
            reply = await cloud.command("order.create", {
                "order_id": order_id, "nozzle": nozzle.number, "grade": nozzle.grade,
                "price": f"{price:.2f}", "preset": {"amount": f"{amount:.2f}"},
                "paid": f"{amount:.2f}", "expires_at": expires})
            if not reply["data"]["ok"]:
                log.info("demo app order %s refused: %s", order_id, reply["data"]["error"])
                continue
            log.info("demo app order %s authorized on nozzle %d", order_id, nozzle.number)
            await asyncio.sleep(rng.uniform(3.0, 10.0))  # the driver walks to the pump
            try:
                sim.lift(pump.settings.settings.address, nozzle.logical)
            except SimulationError:
                continue  # someone else is at that pump; the order will expire
            await _wait_filled(sim, pump.settings.settings.address)
            await asyncio.sleep(rng.uniform(2.0, 5.0))
            with contextlib.suppress(SimulationError):
                sim.hang(pump.settings.settings.address, nozzle.logical)


async def _wait_filled(sim: Simulator, address: int) -> None:
    before = len(sim.pump(address).fills)
    for _ in range(600):
        sim.tick()
        if len(sim.pump(address).fills) > before or \
                sim.pump(address).status.name == "MAX_REACHED":
            return
        await asyncio.sleep(0.5)


def _banner(station: Station, sim: Simulator, config_path: Path) -> None:
    users = ", ".join(f"{name}/{pin} ({role.value})" for name, role, pin in DEMO_USERS)
    print(f"""
  forecourt demo station {station.config.station.id} is running
    console:          http://127.0.0.1:{station.port}/
    demo users:       {users}
    health:           http://127.0.0.1:{station.port}/api/v1/health
    pump simulator:   {sim.url} (control API: {sim.control_url})
    tanks:            http://127.0.0.1:{station.port}/api/v1/tanks (a simulated gauge console)
    config and data:  {config_path.parent} (receipts in receipts/, announcements in voice/)
  Ctrl-C stops it.
""", file=sys.stderr, flush=True)


async def run_demo(*, data: Path, port: int, broker: str | None, pumps: int,
                   seed: int | None, traffic: bool) -> None:
    if not 1 <= pumps <= 32:
        raise SystemExit("forecourt demo: --pumps must be 1..32")
    await asyncio.to_thread(data.mkdir, parents=True, exist_ok=True)
    db = data / "station.db"
    rng = random.Random(seed)
    private_key = public_key = None
    if broker is not None:
        private_key, public_key = await asyncio.to_thread(_demo_keys, data / "keys")
    async with run_simulator(_simulated_pumps(db, pumps), control_port=0, seed=seed) as sim, \
            run_gauge_simulator(demo_tank_settings()) as gauges:
        assert sim.url is not None
        config_path = data / "station.toml"
        config_path.write_text(demo_config(data, sim.url, port, pumps, broker, public_key,
                                           gauges.url("console")), "utf-8")
        config = load_config(config_path)
        if config.tanks is not None:
            # The tanks fall as the simulated pumps dispense.
            gauges.follow(sim, pump_nozzle_tanks(config.tanks, config.pumps))
        _ensure_users(db)
        station = Station(config)
        async with asyncio.TaskGroup() as tasks:
            run = tasks.create_task(station.run(), name="station")
            await station.started.wait()
            _banner(station, sim, config_path)
            helpers = []
            if broker is not None and private_key is not None:
                helpers.append(tasks.create_task(
                    _app_orders(station, sim, broker, private_key, rng, traffic),
                    name="cloud"))
            if traffic:
                customers = CustomerTraffic(sim, seed=seed, settings=TrafficSettings(
                    mean_interval=25.0, patience=60.0))
                helpers.append(tasks.create_task(customers.run(), name="customers"))
                helpers.append(tasks.create_task(_attendant(station, rng), name="attendant"))
            await run
            for helper in helpers:
                helper.cancel()
