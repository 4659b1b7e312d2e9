"""The in-process control interface of the simulator: the forecourt seen from the customer's side.

`Simulator` holds the pumps of one line and their fault plan; tests, the demo's customer traffic
and the HTTP control API (`simulator.app`) all drive it here: lift and hang nozzles, change the
flow, break the line, cut the power, raise alarms, and read back what was really dispensed.
`run_simulator` serves it on a free TCP port in the running event loop.

Each pump runs a firmware (`simulator.firmware`): rev 2.11 in full unless told otherwise, one
profile for every pump or one per address (`FirmwarePlan`), changeable while it runs
(`set_firmware`, which power-cycles the pump as loading new firmware does).
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from simulator.faults import FaultPlan, Faults
from simulator.firmware import DEFAULT_FIRMWARE, Firmware, FirmwarePlan, parse_firmware
from simulator.metering import Decimals, raw_to_decimal
from simulator.pump import MeterFault, SimulatedPump
from simulator.records import FillRecord, SimulationError
from simulator.server import LINE_FAITHFUL_TURNAROUND, LineEngine, PtyLineServer, TcpLineServer
from simulator.slave import DartSlave

__all__ = [
    "DEFAULT_GRADES",
    "FIRST_ADDRESS",
    "Simulator",
    "faults_json",
    "make_pumps",
    "pumps_from_config",
    "run_simulator",
]

FIRST_ADDRESS = 0x50
DEFAULT_GRADES = (92, 95, 98)  # grade numbers (DC7) given to nozzles 1, 2, 3... in turn


def make_pumps(
    count: int = 1,
    *,
    nozzles_per_pump: int = 2,
    first_address: int = FIRST_ADDRESS,
    flow_lpm: Decimal = Decimal("40"),
    programming_delay: float = 0.0,
    firmware: Firmware | FirmwarePlan = DEFAULT_FIRMWARE,
) -> list[SimulatedPump]:
    """`count` pumps at consecutive addresses, each with nozzles 1..`nozzles_per_pump`, running
    `firmware` (one for all, or a plan per address)."""
    if not 1 <= count <= 32 or not 1 <= nozzles_per_pump <= 15:
        raise ValueError("1..32 pumps with 1..15 nozzles each")
    plan = _plan(firmware)
    plan.check(range(first_address, first_address + count))
    return [
        SimulatedPump(
            first_address + i,
            {
                n: DEFAULT_GRADES[(n - 1) % len(DEFAULT_GRADES)]
                for n in range(1, nozzles_per_pump + 1)
            },
            flow_lpm=flow_lpm,
            programming_delay=programming_delay,
            firmware=plan.for_pump(first_address + i),
        )
        for i in range(count)
    ]


def _plan(firmware: Firmware | FirmwarePlan) -> FirmwarePlan:
    return firmware if isinstance(firmware, FirmwarePlan) else FirmwarePlan(firmware)


def pumps_from_config(
    path: str | Path,
    *,
    line: str | None = None,
    flow_lpm: Decimal = Decimal("40"),
    programming_delay: float = 0.0,
    firmware: Firmware | FirmwarePlan = DEFAULT_FIRMWARE,
) -> list[SimulatedPump]:
    """The pumps of a station config's `[[pumps]]` tables (all of them, or those on `line`).

    Only what a dispenser knows is read (address, nozzles, decimals); the rest of the file is
    the controller's business and may be missing. Grade codes become DC7 grade numbers: a
    numeric code 1..255 ("92") is used as it is, any other ("0" for diesel, "E10") gets the
    lowest number not taken, in order of appearance. A firmware with decimals of its own
    (milli) reports those, whatever the table says: what a controller must notice.
    """
    with open(path, "rb") as file:
        document = tomllib.load(file)
    tables: list[dict[str, Any]] = [
        t for t in document.get("pumps", []) if line is None or t.get("line") == line
    ]
    codes = [str(n.get("grade", "")) for t in tables for n in t.get("nozzles", [])]
    grades = _grade_numbers(codes)
    pumps = []
    plan = _plan(firmware)
    for index, table in enumerate(tables):
        where = f"{path}: pumps[{index}]"
        try:
            nozzles = {int(n["logical"]): grades[str(n.get("grade", ""))] for n in table["nozzles"]}
            decimals = Decimals(**{k: int(v) for k, v in table.get("decimals", {}).items()})
            pumps.append(
                SimulatedPump(
                    int(table["address"]),
                    nozzles,
                    flow_lpm=flow_lpm,
                    decimals=decimals,
                    programming_delay=programming_delay,
                    firmware=plan.for_pump(int(table["address"])),
                )
            )
        except KeyError as missing:
            raise ValueError(f"{where}: {missing} is missing") from None
        except (TypeError, ValueError) as error:
            raise ValueError(f"{where}: {error}") from None
    plan.check(p.address for p in pumps)
    return pumps


def _grade_numbers(codes: Sequence[str]) -> dict[str, int]:
    numbers = {c: int(c) for c in codes if c.isdigit() and 1 <= int(c) <= 255}
    free = (n for n in range(1, 256) if n not in numbers.values())
    for code in codes:
        if code not in numbers:
            numbers[code] = next(free)
    return numbers


class Simulator:
    """The simulated pumps of one line, their faults and the clock they live by."""

    def __init__(
        self,
        pumps: Sequence[SimulatedPump],
        *,
        clock: Callable[[], float] = time.monotonic,
        seed: int | None = None,
        turnaround: float = 0.0,
    ) -> None:
        self.clock = clock
        self.faults = FaultPlan(seed)
        self.slave = DartSlave(pumps, faults=self.faults, turnaround=turnaround)
        self.line_url: str | None = None  # set while the line is served
        self.control_url: str | None = None  # set while the HTTP control API is served
        # Wall-clock time of the simulator clock's zero, to print fill times in RFC 3339.
        self._epoch = time.time() - clock()

    @property
    def pumps(self) -> Mapping[int, SimulatedPump]:
        return self.slave.pumps

    @property
    def url(self) -> str:
        """Where a controller connects (`socket://127.0.0.1:PORT` or a pty path)."""
        if self.line_url is None:
            raise RuntimeError("the line is not being served")
        return self.line_url

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def pump(self, address: int) -> SimulatedPump:
        try:
            return self.slave.pumps[address]
        except KeyError:
            raise SimulationError(f"no pump at address {address:#x}") from None

    # ---- the customer and the technician -----------------------------------------------------

    def lift(self, pump: int, nozzle: int) -> None:
        self.pump(pump).lift(nozzle, self.clock())

    def hang(self, pump: int, nozzle: int) -> None:
        self.pump(pump).hang(nozzle, self.clock())

    def set_flow(self, pump: int, flow_lpm: Decimal) -> None:
        self.pump(pump).set_flow(Decimal(flow_lpm), self.clock())

    def set_meter_fault(self, pump: int, fault: MeterFault | None) -> None:
        """A fault in what the pump says of its fillings (None heals it): see MeterFault."""
        self.pump(pump).set_meter_fault(fault, self.clock())

    def power_cycle(self, pump: int) -> None:
        self.pump(pump)
        self.slave.power_cycle(pump, self.clock())

    def set_firmware(self, pump: int, firmware: Firmware | str) -> Firmware:
        """Load other firmware into a pump (`legacy`, `rev211+pump-wide-totals`): it restarts
        with it, as after a power cycle (TX# 0, not programmed, prices lost, totals kept)."""
        target = self.pump(pump)
        if isinstance(firmware, str):
            try:
                firmware = parse_firmware(firmware)
            except ValueError as error:
                raise SimulationError(str(error)) from None
        self.slave.power_cycle(pump, self.clock())
        target.load_firmware(firmware)
        return firmware

    def alarm(self, pump: int, code: int) -> None:
        if not 0 <= code <= 0xFF:
            raise SimulationError(f"an alarm code is one byte, not {code}")
        self.pump(pump).raise_alarm(code, self.clock())

    def set_fault(
        self,
        pump: int | None = None,
        *,
        silent: bool | None = None,
        corrupt: float | None = None,
        delay: float | None = None,
        drop: float | None = None,
    ) -> Faults:
        """Change the faults of one pump, or of the whole line when `pump` is None."""
        if pump is not None:
            self.pump(pump)
        try:
            return self.faults.set(pump, silent=silent, corrupt=corrupt, delay=delay,
                                   drop=drop)
        except ValueError as error:
            raise SimulationError(str(error)) from None

    def clear_faults(self, pump: int | None = None) -> None:
        self.faults.clear(pump)

    # ---- what happened -----------------------------------------------------------------------

    def tick(self) -> None:
        """Bring every pump up to now (reading state does this; a controller's POLL does too)."""
        now = self.clock()
        for pump in self.slave.pumps.values():
            pump.tick(now)

    def fills(self) -> list[FillRecord]:
        """Every completed filling on the line, in the order they ended."""
        self.tick()
        records = [f for p in self.slave.pumps.values() for f in p.fills]
        return sorted(records, key=lambda f: (f.ended_at, f.pump, f.seq))

    def wall_time(self, now: float) -> str:
        """A simulator timestamp in RFC 3339 with the local offset."""
        return datetime.fromtimestamp(self._epoch + now, tz=UTC).astimezone().isoformat()

    def fill_json(self, record: FillRecord) -> dict[str, Any]:
        d = record.decimals
        return {
            "seq": record.seq,
            "pump": record.pump,
            "nozzle": record.nozzle,
            "grade": record.grade,
            "volume": str(record.volume_decimal),
            "amount": str(record.amount_decimal),
            "price": str(record.price_decimal),
            "volume_total_before": str(raw_to_decimal(record.volume_total_before, d.volume)),
            "volume_total_after": str(raw_to_decimal(record.volume_total_after, d.volume)),
            "amount_total_before": str(raw_to_decimal(record.amount_total_before, d.amount)),
            "amount_total_after": str(raw_to_decimal(record.amount_total_after, d.amount)),
            "started_at": self.wall_time(record.started_at),
            "ended_at": self.wall_time(record.ended_at),
            "end": record.end.value,
        }

    def state(self) -> dict[str, Any]:
        """Everything at a glance, JSON-ready (money and volumes as decimal strings)."""
        self.tick()
        return {
            "line": {"url": self.line_url, "faults": faults_json(self.faults.line)},
            "pumps": [self._pump_json(p) for p in self.slave.pumps.values()],
            "stats": vars(self.slave.stats).copy(),
        }

    def _pump_json(self, pump: SimulatedPump) -> dict[str, Any]:
        d = pump.decimals
        volume, amount = pump.filling_info

        def price(raw: int | None) -> str | None:
            return None if raw is None else str(raw_to_decimal(raw, d.price))

        preset: dict[str, str] | None = None
        if pump.preset_volume is not None:
            preset = {"volume": str(raw_to_decimal(pump.preset_volume, d.volume))}
        elif pump.preset_amount is not None:
            preset = {"amount": str(raw_to_decimal(pump.preset_amount, d.amount))}
        nozzles = []
        for logical, grade in pump.nozzles.items():
            total_volume, total_amount = pump.totals(logical)
            nozzles.append(
                {
                    "logical": logical,
                    "grade": grade,
                    "price": price(pump.prices.get(logical)),
                    "out": pump.nozzle_out == logical,
                    "totals": {
                        "volume": str(raw_to_decimal(total_volume, d.volume)),
                        "amount": str(raw_to_decimal(total_amount, d.amount)),
                    },
                }
            )
        return {
            "address": pump.address,
            "status": pump.status.name.lower(),
            "status_code": int(pump.status),
            "nozzle_out": pump.nozzle_out,
            "filling_nozzle": pump.filling_nozzle,
            "allowed": None if pump.allowed is None else sorted(pump.allowed),
            "preset": preset,
            "volume": str(raw_to_decimal(volume, d.volume)),
            "amount": str(raw_to_decimal(amount, d.amount)),
            "flow_lpm": str(pump.flow_lpm),
            "firmware": pump.firmware.spec,
            "quirks": sorted(q.value for q in pump.firmware.quirks),
            "decimals": {"volume": d.volume, "amount": d.amount, "price": d.price},
            "nozzles": nozzles,
            "faults": faults_json(self.faults.pumps.get(pump.address, Faults())),
            "alarms": list(pump.alarms),
            "refused": pump.refused[-20:],
            "fills": len(pump.fills),
        }


def faults_json(faults: Faults) -> dict[str, Any]:
    return {"silent": faults.silent, "corrupt": faults.corrupt, "drop": faults.drop,
            "delay_ms": faults.delay * 1000}


@asynccontextmanager
async def run_simulator(
    pumps: int | Sequence[SimulatedPump] = 1,
    *,
    nozzles_per_pump: int = 2,
    flow_lpm: Decimal = Decimal("40"),
    host: str = "127.0.0.1",
    port: int = 0,
    pty: bool = False,
    line_faithful: bool = False,
    baudrate: int = 9600,
    control_port: int | None = None,
    control_host: str = "127.0.0.1",
    programming_delay: float = 0.0,
    seed: int | None = None,
    clock: Callable[[], float] = time.monotonic,
    firmware: Firmware | FirmwarePlan = DEFAULT_FIRMWARE,
) -> AsyncIterator[Simulator]:
    """Serve a simulated line in the running loop: `async with run_simulator(2) as sim:`.

    `pumps` is a number of pumps to make (at 0x50.., with `nozzles_per_pump`, `flow_lpm`,
    `programming_delay` and `firmware`: one for all, or a `FirmwarePlan` per address) or the
    pumps themselves (each with its own firmware).

    `sim.url` is `socket://127.0.0.1:PORT` (a free port unless `port` is given), or the pty path
    with `pty=True`. With `control_port` (0 = a free one) the HTTP control API is served too,
    at `sim.control_url`. Everything stops when the block is left.
    """
    if isinstance(pumps, int):
        pumps = make_pumps(
            pumps,
            nozzles_per_pump=nozzles_per_pump,
            flow_lpm=flow_lpm,
            programming_delay=programming_delay,
            firmware=firmware,
        )
    turnaround = LINE_FAITHFUL_TURNAROUND if line_faithful else 0.0
    sim = Simulator(pumps, clock=clock, seed=seed, turnaround=turnaround)
    engine = LineEngine(sim.slave, clock=clock, baudrate=baudrate, line_faithful=line_faithful)
    async with AsyncExitStack() as stack:
        if pty:
            pty_server = await stack.enter_async_context(PtyLineServer(engine))
            sim.line_url = pty_server.url
        else:
            tcp_server = await stack.enter_async_context(TcpLineServer(engine, host, port))
            sim.line_url = tcp_server.url
        if control_port is not None:
            # Imported here: FastAPI and uvicorn are only needed when the HTTP API is served.
            from simulator.app import ControlServer

            control = await stack.enter_async_context(
                ControlServer(sim, control_host, control_port)
            )
            sim.control_url = control.url
        try:
            yield sim
        finally:
            sim.line_url = sim.control_url = None
