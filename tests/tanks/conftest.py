"""Shared pieces of the tank tests: one clock for station and simulator, settings, a ledger."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
import tomllib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from domain.config_reader import Findings, Table
from domain.model import NewSale, TotalsReading
from drivers.dart.config import DartPumpSettings
from drivers.gauges import GaugeUrl
from edge.config.model import Nozzle, Pump
from edge.config.sections import Context
from edge.config.tanks import TankSettings, read_tanks
from edge.hub import EventHub
from edge.ledger import Ledger
from edge.store import Store
from simulator.gauge import GaugeSimulator

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai

# Pump 1: nozzles 1 (92) and 2 (95); pump 2: nozzles 3 (92) and 4 (0).
PUMPS = (
    Pump(1, "line1", (Nozzle(1, 1, "92"), Nozzle(2, 2, "95")),
         settings=DartPumpSettings(0x50)),
    Pump(2, "line1", (Nozzle(3, 1, "92"), Nozzle(4, 2, "0")), settings=DartPumpSettings(0x51)),
)
GRADES = ("92", "95", "0")

# Tank 1: a console, float32 low word first (CDAB), holding registers, 0-based addresses.
# Tank 2: a probe on an RS-485 bus, integers with scale, input registers numbered from 1, and
# a level only: the station turns it into litres with the strapping table.
STATION_TANKS = """
[[gauges]]
id = "console"
url = "modbus-tcp://127.0.0.1:502"
word_order = "CDAB"
timeout_ms = 500
offline_after = 2

[[gauges]]
id = "probes"
url = "modbus-rtu:///dev/ttyS3?baudrate=9600&parity=N"
device_id = 3
register_type = "input"
address_base = 1
timeout_ms = 500

[[tanks]]
number = 1
grade = "92"
gauge = "console"
capacity = 30000
low_stock = 3000
high_water_mm = 50
[tanks.registers]
level = { address = 0, type = "float32" }
water = { address = 2, type = "float32" }
temperature = { address = 4, type = "int16", scale = "0.1" }
volume = { address = 6, type = "float32" }

[[tanks]]
number = 2
grade = "95"
gauge = "probes"
capacity = 20000
low_stock = 2000
strapping = [[0, 0], [1000, 8000], [2000, 20000]]
[tanks.registers]
level = { address = 1, type = "uint32", scale = "0.1" }
water = { address = 3, scale = "0.1" }
temperature = { address = 4, type = "int16", scale = "0.1" }

[wetstock]
noise = 10
delivery_min = 300
delivery_settle_minutes = 5
tolerance = 20
tolerance_percent = "0.5"
"""


def parse(text: str) -> tuple[TankSettings | None, Findings]:
    findings = Findings()
    root = Table(tomllib.loads(text), "", findings)
    settings = read_tanks(root, Context(findings, None, check_files=False))
    root.done()
    return settings, findings


def settings_of(text: str = STATION_TANKS) -> TankSettings:
    settings, findings = parse(text)
    assert findings.errors == [] and settings is not None
    return settings


def served(settings: TankSettings, gauges: GaugeSimulator) -> TankSettings:
    """The settings with each gauge's URL where the simulator serves it."""
    return dataclasses.replace(settings, gauges=tuple(
        dataclasses.replace(g, url=GaugeUrl.parse(gauges.url(g.id))) for g in settings.gauges))


@dataclass
class Clock:
    """The station's clock (aware datetimes) and the simulators' (seconds), moving together."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def seconds(self) -> float:
        return (self.now - T0).total_seconds() + 1000.0

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while True:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.02)  # a worker thread finishing its last job, not a timing assertion
    assert not leaked, f"test leaked threads: {leaked}"


@pytest.fixture
async def no_leaked_tasks() -> AsyncIterator[None]:
    yield
    await asyncio.sleep(0)
    current = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    assert not left, f"test leaked tasks: {left}"


@dataclass
class Books:
    store: Store
    ledger: Ledger
    hub: EventHub

    def events(self, type_: str) -> list[dict[str, Any]]:
        return [e.data for e in self.store.events_since(0, 500) if e.type == type_]


@pytest.fixture
async def books(tmp_path: Path, clock: Clock) -> AsyncIterator[Books]:
    store = Store.open(tmp_path / "station.db", clock=clock, zone=SHANGHAI)
    hub = EventHub()
    ledger = Ledger(store, hub, zone=SHANGHAI)
    try:
        yield Books(store, ledger, hub)
    finally:
        ledger.close()
        store.close()


def new_sale(nozzle: int, volume: str, ended_at: datetime, *, total: str) -> NewSale:
    """A sale of `volume` litres of 92 at 7.50 on `nozzle` (pump 1 or 2, logical 1)."""
    pump = 1 if nozzle in (1, 2) else 2
    litres = Decimal(volume)
    return NewSale(
        pump=pump, nozzle=nozzle, logical=1, grade="92", price=Decimal("7.50"), volume=litres,
        amount=(litres * Decimal("7.50")).quantize(Decimal("0.01")), price_set_id=None,
        started_at=ended_at - timedelta(minutes=2), ended_at=ended_at, authorization_id=None,
        order_id=None, recovered=False, totals_before=None,
        totals_after=TotalsReading(pump, nozzle, Decimal(total), Decimal(total) * 8, ended_at,
                                   "sale"),
    )
