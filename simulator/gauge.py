"""A simulated tank gauge: the station's own register map, served by pymodbus on 127.0.0.1.

`GaugeSimulator` holds one `SimulatedTank` per configured tank and serves each gauge of the
settings as a Modbus device (one server per gauge connection, devices by their `device_id`),
encoding level, water, temperature and volume exactly as the configuration says the real gauge
does. Levels fall as the pumps of followed simulated lines dispense, whatever their protocol
(their nozzle meters, read at every gauge request: `simulator.registry`), rise when a delivery
is played and sink slowly with a leak.

    async with run_gauge_simulator(settings, follow=lines, nozzles=nozzles) as gauges:
        url = gauges.url("console")        # modbus-tcp://127.0.0.1:PORT
        gauges.deliver(1, Decimal(12000), minutes=20)

Time is the pump simulator's clock (monotonic seconds): a fake clock makes deliveries and
leaks run as fast as a test wants. RTU gauges are served with RTU framing over TCP
(`modbus-rtu-tcp://`), as a serial-to-Ethernet converter would carry them.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from domain.config_reader import Findings, Table
from drivers.gauges import Quantity, RegisterKind, StrappingTable, Transport
from edge.config.model import Pump
from edge.config.sections import Context
from edge.config.tanks import Gauge, TankSettings, read_tanks, tank_nozzles
from simulator.lines.base import SimulatedLine

__all__ = [
    "GaugeSimulator",
    "SimulatedTank",
    "demo_tank_settings",
    "demo_tanks_toml",
    "pump_nozzle_tanks",
    "run_gauge_simulator",
]

TANK_HEIGHT_MM = Decimal(2600)  # a 30 m3 underground tank is about 2.6 m across
_HOUR = Decimal(3600)


def _seconds(now: float) -> Decimal:
    return Decimal(repr(now))


@dataclass
class _Flow:
    start: Decimal
    end: Decimal
    litres: Decimal  # positive: a delivery


@dataclass
class SimulatedTank:
    """One tank's contents; `advance(now)` plays deliveries and leaks up to `now`."""

    number: int
    capacity: Decimal
    volume: Decimal
    strapping: StrappingTable | None = None
    water_mm: Decimal = Decimal(0)
    temperature_c: Decimal = Decimal("15.0")
    leak_lph: Decimal = Decimal(0)  # litres per hour lost
    delivered: Decimal = Decimal(0)  # litres delivered so far
    dispensed: Decimal = Decimal(0)  # litres drawn by the pumps so far
    _flows: list[_Flow] = field(default_factory=list)
    _last: Decimal | None = None

    def level_mm(self) -> Decimal:
        if self.strapping is not None:
            return self.strapping.level_at(self.volume)
        return self.volume / self.capacity * TANK_HEIGHT_MM

    def advance(self, now: float) -> None:
        t = _seconds(now)
        last = self._last if self._last is not None else t
        self._last = t
        if t <= last:
            return
        for flow in self._flows:
            overlap = min(t, flow.end) - max(last, flow.start)
            if overlap > 0:
                litres = flow.litres * overlap / (flow.end - flow.start)
                self.delivered += litres
                self._change(litres)
        self._flows = [flow for flow in self._flows if flow.end > t]
        self._change(-self.leak_lph * (t - last) / _HOUR)

    def deliver(self, litres: Decimal, seconds: float, now: float) -> None:
        """A tanker drops `litres` at an even rate over `seconds` from `now`."""
        self.advance(now)
        start = _seconds(now)
        self._flows.append(_Flow(start, start + _seconds(max(seconds, 0.001)), litres))

    def leak(self, litres_per_hour: Decimal, now: float) -> None:
        self.advance(now)
        self.leak_lph = litres_per_hour

    def draw(self, litres: Decimal) -> None:
        self.dispensed += litres
        self._change(-litres)

    def _change(self, litres: Decimal) -> None:
        self.volume = min(max(self.volume + litres, Decimal(0)), self.capacity)


class _Endpoint:
    """One served connection: its gauges, the port it keeps across restarts, its server."""

    def __init__(self, gauges: list[Gauge]) -> None:
        self.gauges = gauges
        self.port = 0
        self.server: ModbusTcpServer | None = None

    @property
    def framer(self) -> FramerType:
        rtu = self.gauges[0].url.transport is not Transport.TCP
        return FramerType.RTU if rtu else FramerType.SOCKET

    @property
    def scheme(self) -> str:
        return "modbus-tcp" if self.framer is FramerType.SOCKET else "modbus-rtu-tcp"


class GaugeSimulator:
    def __init__(
        self,
        settings: TankSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        volumes: Mapping[int, Decimal] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        """`volumes`: litres in each tank at start (default: 60% of its capacity)."""
        self.settings = settings
        self.clock = clock
        self.host = host
        start = volumes or {}
        self.tanks = {
            tank.number: SimulatedTank(
                tank.number, tank.capacity,
                start.get(tank.number, (tank.capacity * Decimal("0.6")).quantize(Decimal(1))),
                strapping=tank.probe.strapping,
            )
            for tank in settings.tanks
        }  # fmt: skip
        endpoints: dict[str, list[Gauge]] = {}
        for gauge in settings.gauges:
            endpoints.setdefault(gauge.url.endpoint, []).append(gauge)
        self._endpoints = {key: _Endpoint(gauges) for key, gauges in endpoints.items()}
        self._followed: tuple[dict[int, SimulatedLine], dict[tuple[int, int], int]] | None = None
        self._totals: dict[tuple[int, int], Decimal] = {}
        self.requests = 0

    # -- the tanks --------------------------------------------------------------------------

    def follow(self, lines: SimulatedLine | Sequence[SimulatedLine],
               nozzles: Mapping[tuple[int, int], int]) -> None:
        """Draw from the tanks what the pumps of ``lines`` dispense (simulated lines of any
        protocol, ``simulator.registry``): ``nozzles`` maps (station pump number, logical
        nozzle) to a tank number (see ``pump_nozzle_tanks``)."""
        followed = [lines] if not isinstance(lines, Sequence) else list(lines)
        self._followed = ({pump: line for line in followed for pump in line.pumps},
                          dict(nozzles))
        self._totals = {}
        self.update()

    def update(self) -> None:
        """Bring every tank up to now: deliveries, leaks and what the pumps dispensed."""
        now = self.clock()
        for tank in self.tanks.values():
            tank.advance(now)
        if self._followed is None:
            return
        lines, nozzles = self._followed
        for (pump, logical), number in nozzles.items():
            line = lines.get(pump)
            if line is None:
                continue  # a pump of the station that no followed simulator runs
            litres = line.meter(pump, logical)
            last = self._totals.get((pump, logical))
            self._totals[(pump, logical)] = litres
            if last is None or number not in self.tanks:
                continue
            drawn = litres - last
            if drawn > 0:  # a meter that went back rolled over: that reading is skipped
                self.tanks[number].draw(drawn)

    def deliver(self, tank: int, litres: Decimal, *, minutes: float) -> None:
        self.tanks[tank].deliver(litres, minutes * 60, self.clock())

    def leak(self, tank: int, litres_per_hour: Decimal) -> None:
        self.tanks[tank].leak(litres_per_hour, self.clock())

    def values(self, tank: int) -> dict[Quantity, Decimal]:
        """What the probe of `tank` measures now."""
        self.update()
        t = self.tanks[tank]
        return {
            Quantity.LEVEL: t.level_mm(),
            Quantity.WATER: t.water_mm,
            Quantity.TEMPERATURE: t.temperature_c,
            Quantity.VOLUME: t.volume,
        }

    def image(self, gauge: Gauge) -> dict[int, int]:
        """Every register of `gauge` as it would answer now (address -> word)."""
        image: dict[int, int] = {}
        for tank in self.settings.tanks_on(gauge.id):
            values = self.values(tank.number)
            for quantity, register in tank.probe.registers().items():
                words = register.encode(values[quantity], gauge.word_order)
                image.update(zip(register.addresses, words, strict=True))
        return image

    # -- serving ----------------------------------------------------------------------------

    def _endpoint(self, gauge_id: str) -> _Endpoint:
        for endpoint in self._endpoints.values():
            if any(gauge.id == gauge_id for gauge in endpoint.gauges):
                return endpoint
        raise KeyError(f"no gauge {gauge_id!r}")

    def url(self, gauge_id: str) -> str:
        """Where the station reaches `gauge_id` (its port stays the same across stop/start)."""
        endpoint = self._endpoint(gauge_id)
        if not endpoint.port:
            raise RuntimeError(f"gauge {gauge_id} has not been served yet")
        return f"{endpoint.scheme}://{self.host}:{endpoint.port}"

    def serving(self, gauge_id: str) -> bool:
        return self._endpoint(gauge_id).server is not None

    async def start(self, gauge_id: str | None = None) -> None:
        """Serve one gauge's connection (or all of them): a free port the first time, the same
        one after a stop."""
        for endpoint in self._chosen(gauge_id):
            if endpoint.server is not None:
                continue
            devices = [self._device(gauge) for gauge in endpoint.gauges]
            server = ModbusTcpServer(
                devices, address=(self.host, endpoint.port), framer=endpoint.framer
            )
            await server.serve_forever(background=True)
            listening = cast(Any, server.transport)
            endpoint.port = int(listening.sockets[0].getsockname()[1])
            endpoint.server = server

    async def stop(self, gauge_id: str | None = None) -> None:
        """Stop answering: the gauge's connection (or all) goes dead, as if unplugged."""
        for endpoint in self._chosen(gauge_id):
            if endpoint.server is not None:
                await endpoint.server.shutdown()  # type: ignore[no-untyped-call]
                endpoint.server = None

    def _chosen(self, gauge_id: str | None) -> list[_Endpoint]:
        if gauge_id is None:
            return list(self._endpoints.values())
        return [self._endpoint(gauge_id)]

    def _device(self, gauge: Gauge) -> SimDevice:
        addresses = [
            a
            for tank in self.settings.tanks_on(gauge.id)
            for register in tank.probe.registers().values()
            for a in register.addresses
        ] or [0]
        first, last = min(addresses), max(addresses)
        data = [SimData(first, count=last - first + 1, values=0, datatype=DataType.REGISTERS,
                        readonly=True)]  # fmt: skip
        # The other register table is left undefined: reading it is "illegal data address".
        undefined = [SimData(0, datatype=DataType.INVALID)]
        holding = gauge.register_type is RegisterKind.HOLDING
        blocks = (
            [SimData(0, datatype=DataType.BITS)],  # coils
            [SimData(0, datatype=DataType.BITS)],  # discrete inputs
            data if holding else undefined,
            undefined if holding else data,
        )

        async def answer(
            function_code: int,
            start: int,
            address: int,
            count: int,
            registers: list[int],
            values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            self.requests += 1
            image = self.image(gauge)
            for offset in range(count):
                registers[address - start + offset] = image.get(address + offset, 0)
            return None

        return SimDevice(id=gauge.device_id, simdata=blocks, action=answer)


def pump_nozzle_tanks(settings: TankSettings, pumps: Sequence[Pump]) -> dict[tuple[int, int], int]:
    """(station pump number, logical nozzle) -> tank number, for `GaugeSimulator.follow`."""
    tanks = tank_nozzles(settings, pumps)
    return {
        (pump.number, nozzle.logical): tanks[nozzle.number]
        for pump in pumps
        for nozzle in pump.nozzles
        if nozzle.number in tanks
    }


@asynccontextmanager
async def run_gauge_simulator(
    settings: TankSettings,
    *,
    clock: Callable[[], float] = time.monotonic,
    volumes: Mapping[int, Decimal] | None = None,
    follow: SimulatedLine | Sequence[SimulatedLine] | None = None,
    nozzles: Mapping[tuple[int, int], int] | None = None,
    host: str = "127.0.0.1",
) -> AsyncIterator[GaugeSimulator]:
    """Serve every gauge of `settings` on free ports of `host` while the block runs; with
    `follow` (simulated lines of any protocol) and `nozzles` (see `pump_nozzle_tanks`) the
    tanks feed their pumps. The URLs in `settings` are not used: ask `url(gauge_id)`."""
    gauges = GaugeSimulator(settings, clock=clock, volumes=volumes, host=host)
    if follow is not None:
        gauges.follow(follow, nozzles or {})
    try:
        await gauges.start()
        yield gauges
    finally:
        await gauges.stop()


def demo_tanks_toml(url: str, *, gauge: str = "console") -> str:
    """`[[gauges]]` and `[[tanks]]` of the demo station: one console with three probes.

    The map is a typical Chinese magnetostrictive console: per tank 8 holding registers from
    10 x (tank - 1), float32 low word first (CDAB); tank 3 reports its level only and the
    station converts it with the tank's strapping table.
    """
    return f"""[[gauges]]
id = "{gauge}"
url = "{url}"
device_id = 1
poll_interval_seconds = 5
timeout_ms = 500
word_order = "CDAB"

[[tanks]]
number = 1
grade = "92"
gauge = "{gauge}"
capacity = 30000
low_stock = 3000
high_water_mm = 50
registers = {{ level = {{ address = 0, type = "float32" }}, water = {{ address = 2, type = "float32" }}, temperature = {{ address = 4, type = "int16", scale = "0.1" }}, volume = {{ address = 6, type = "float32" }} }}

[[tanks]]
number = 2
grade = "95"
gauge = "{gauge}"
capacity = 20000
low_stock = 2000
high_water_mm = 50
registers = {{ level = {{ address = 10, type = "float32" }}, water = {{ address = 12, type = "float32" }}, temperature = {{ address = 14, type = "int16", scale = "0.1" }}, volume = {{ address = 16, type = "float32" }} }}

[[tanks]]
number = 3
grade = "0"
gauge = "{gauge}"
capacity = 30000
low_stock = 3000
high_water_mm = 50
registers = {{ level = {{ address = 20, type = "uint32", scale = "0.1" }}, water = {{ address = 22, type = "uint16", scale = "0.1" }}, temperature = {{ address = 24, type = "int16", scale = "0.1" }} }}
strapping = [[0, 0], [200, 1650], [500, 5650], [1000, 13000], [1300, 17350], [1800, 24350], [2300, 29200], [2600, 30000]]
"""  # noqa: E501


def demo_tank_settings() -> TankSettings:
    """The demo's tanks as settings, to serve them before the station's configuration (which
    names the simulator's port) is written: start the simulator with these, write the config
    with `demo_tanks_toml(gauges.url("console"))`, then `follow` the pumps."""
    findings = Findings()
    root = Table(tomllib.loads(demo_tanks_toml("modbus-tcp://127.0.0.1:502")), "", findings)
    settings = read_tanks(root, Context(findings, None, check_files=False))
    root.done()
    if settings is None or findings.errors:
        raise RuntimeError(f"the demo tanks do not parse: {findings.errors}")
    return settings
