"""The in-process control interface of the Gilbarco simulator: the customer's and the
technician's side of the pumps (lift and hang nozzles, flow, faults, data errors, power), and
what was really dispensed. ``run_gilbarco_simulator`` serves a line in the running loop; the HTTP
control API over it is ``simulator.gilbarco.app``.
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

from simulator.gilbarco.faults import GilbarcoFaultPlan, GilbarcoFaults
from simulator.gilbarco.pump import EndProfile, GilbarcoPump
from simulator.gilbarco.server import (
    LINE_FAITHFUL_TURNAROUND,
    LineEngine,
    PtyLineServer,
    TcpLineServer,
)
from simulator.gilbarco.slave import GilbarcoSlave
from simulator.metering import Decimals, raw_to_decimal
from simulator.records import FillRecord, SimulationError

__all__ = [
    "GilbarcoSimulator",
    "faults_json",
    "make_pumps",
    "pumps_from_config",
    "run_gilbarco_simulator",
]

DEFAULT_GRADES = (92, 95, 98)


def make_pumps(
    count: int = 1,
    *,
    hoses_per_pump: int = 2,
    first: int = 1,
    **settings: Any,
) -> list[GilbarcoPump]:
    """``count`` pumps numbered from ``first``, hoses 1..``hoses_per_pump`` (grades 92, 95, 98 in
    turn); ``settings`` go to every ``GilbarcoPump`` (flow_lpm, eight_digits, decimals, end...)."""
    if not count >= 1 or first + count - 1 > 16 or not 1 <= hoses_per_pump <= 16:
        raise ValueError("pumps 1..16 with 1..16 hoses each")
    hoses = {h: DEFAULT_GRADES[(h - 1) % len(DEFAULT_GRADES)] for h in range(1, hoses_per_pump + 1)}
    return [GilbarcoPump(first + i, hoses, **settings) for i in range(count)]


def pumps_from_config(path: str | Path, *, line: str | None = None,
                      **settings: Any) -> list[GilbarcoPump]:
    """The pumps of a station config on its Gilbarco lines (or on ``line``): address, nozzles
    (logical = hose), decimals, and the grades' prices as the pumps' own."""
    with open(path, "rb") as file:
        document = tomllib.load(file)
    lines = {t.get("id") for t in document.get("lines", [])
             if (line is None and t.get("protocol") == "gilbarco") or t.get("id") == line}
    grades = {str(g.get("code")): g for g in document.get("grades", [])}
    pumps = []
    for index, table in enumerate(document.get("pumps", [])):
        if table.get("line") not in lines:
            continue
        where = f"{path}: pumps[{index}]"
        try:
            decimals = Decimals(**{k: int(v) for k, v in table.get("decimals", {}).items()})
            hoses: dict[int, int] = {}
            prices: dict[int, int] = {}
            for slot, nozzle in enumerate(table["nozzles"]):
                hose, code = int(nozzle["logical"]), str(nozzle.get("grade", ""))
                hoses[hose] = int(code) if code.isdigit() else 100 + slot
                price = grades.get(code, {}).get("price")
                if price is not None:
                    prices[hose] = int(Decimal(str(price)).scaleb(decimals.price))
            pumps.append(GilbarcoPump(int(table["address"]), hoses, prices=prices,
                                      decimals=decimals, **settings))
        except KeyError as missing:
            raise ValueError(f"{where}: {missing} is missing") from None
        except (TypeError, ValueError, ArithmeticError) as error:
            raise ValueError(f"{where}: {error}") from None
    return pumps


class GilbarcoSimulator:
    """The simulated pumps of one Gilbarco line, their faults and the clock they live by."""

    def __init__(
        self,
        pumps: Sequence[GilbarcoPump],
        *,
        clock: Callable[[], float] = time.monotonic,
        seed: int | None = None,
        echo: bool = False,
        turnaround: float = 0.0,
    ) -> None:
        self.clock = clock
        self.faults = GilbarcoFaultPlan(seed)
        self.slave = GilbarcoSlave(pumps, faults=self.faults, echo=echo, turnaround=turnaround)
        self.line_url: str | None = None
        self.control_url: str | None = None
        self._epoch = time.time() - clock()

    @property
    def pumps(self) -> Mapping[int, GilbarcoPump]:
        return self.slave.pumps

    @property
    def url(self) -> str:
        if self.line_url is None:
            raise RuntimeError("the line is not being served")
        return self.line_url

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def pump(self, number: int) -> GilbarcoPump:
        try:
            return self.slave.pumps[number]
        except KeyError:
            raise SimulationError(f"no pump {number}") from None

    # ---- the customer and the technician -------------------------------------------------

    def lift(self, pump: int, hose: int) -> None:
        self.pump(pump).lift(hose, self.clock())

    def hang(self, pump: int, hose: int) -> None:
        self.pump(pump).hang(hose, self.clock())

    def set_flow(self, pump: int, flow_lpm: Decimal) -> None:
        self.pump(pump).set_flow(Decimal(flow_lpm), self.clock())

    def power_cycle(self, pump: int) -> None:
        self.pump(pump).power_cycle(self.clock())

    def data_error(self, pump: int) -> None:
        """The pump reports a data error (status 0) until its totals are read."""
        target = self.pump(pump)
        target.tick(self.clock())
        target.data_error = True

    def set_config_answer(self, pump: int, answers: bool) -> None:
        """Whether the pump answers the special function that tells its configuration."""
        self.pump(pump).answers_config = answers

    def set_end_profile(self, pump: int, end: EndProfile) -> None:
        self.pump(pump).end = end

    def set_fault(
        self,
        pump: int | None = None,
        *,
        silent: bool | None = None,
        bad_checksum: float | None = None,
        drop: float | None = None,
        delay: float | None = None,
    ) -> GilbarcoFaults:
        """Change the faults of one pump, or of the whole line when ``pump`` is None."""
        if pump is not None:
            self.pump(pump)
        try:
            return self.faults.set(pump, silent=silent, bad_checksum=bad_checksum, drop=drop,
                                   delay=delay)
        except ValueError as error:
            raise SimulationError(str(error)) from None

    def clear_faults(self, pump: int | None = None) -> None:
        self.faults.clear(pump)

    # ---- what happened -------------------------------------------------------------------

    def tick(self) -> None:
        now = self.clock()
        for pump in self.slave.pumps.values():
            pump.tick(now)

    def fills(self) -> list[FillRecord]:
        """Every completed filling on the line, in the order they ended."""
        self.tick()
        records = [f for p in self.slave.pumps.values() for f in p.fills]
        return sorted(records, key=lambda f: (f.ended_at, f.pump, f.seq))

    def wall_time(self, now: float) -> str:
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
        self.tick()
        return {
            "line": {"url": self.line_url, "echo": self.slave.echo,
                     "faults": faults_json(self.faults.line)},
            "pumps": [self.pump_json(p) for p in self.slave.pumps.values()],
            "stats": vars(self.slave.stats).copy(),
        }

    def pump_json(self, pump: GilbarcoPump) -> dict[str, Any]:
        d = pump.decimals
        preset = None
        if pump.preset is not None:
            unit, value, hose = pump.preset
            places = d.volume if unit == "volume" else d.amount
            preset = {"unit": unit, "value": str(raw_to_decimal(value, places)), "hose": hose}
        hoses = []
        for hose, grade in pump.hoses.items():
            volume, money = pump.totals(hose)
            hoses.append({
                "hose": hose,
                "grade": grade,
                "price": str(raw_to_decimal(pump.prices[hose], d.price)),
                "price_2": str(raw_to_decimal(pump.prices_2[hose], d.price)),
                "out": pump.nozzle_out == hose,
                "totals": {"volume": str(raw_to_decimal(volume, d.volume)),
                           "amount": str(raw_to_decimal(money, d.amount))},
            })
        sale = pump.sale
        return {
            "pump": pump.number,
            "status": pump.status.name.lower(),
            "status_code": int(pump.status),
            "data_error": pump.data_error,
            "mode": "8-digit" if pump.mode.eight else "standard",
            "nozzle_out": pump.nozzle_out,
            "preset": preset,
            "transaction": {"hose": sale.hose,
                            "price": str(raw_to_decimal(sale.price, d.price)),
                            "volume": str(raw_to_decimal(sale.volume, d.volume)),
                            "amount": str(raw_to_decimal(sale.money, d.amount))},
            "flow_lpm": str(pump.flow_lpm),
            "decimals": {"volume": d.volume, "amount": d.amount, "price": d.price},
            "answers_config": pump.answers_config,
            "end_profile": {"needs_read": pump.end.needs_read,
                            "needs_hangup": pump.end.needs_hangup, "hold": pump.end.hold},
            "hoses": hoses,
            "faults": faults_json(self.faults.pumps.get(pump.number, GilbarcoFaults())),
            "refused": pump.refused[-20:],
            "fills": len(pump.fills),
        }


def faults_json(faults: GilbarcoFaults) -> dict[str, Any]:
    return {"silent": faults.silent, "bad_checksum": faults.bad_checksum, "drop": faults.drop,
            "delay_ms": faults.delay * 1000}


@asynccontextmanager
async def run_gilbarco_simulator(
    pumps: int | Sequence[GilbarcoPump] = 1,
    *,
    hoses_per_pump: int = 2,
    host: str = "127.0.0.1",
    port: int = 0,
    pty: bool = False,
    echo: bool = False,
    line_faithful: bool = False,
    baudrate: int = 5787,
    control_port: int | None = None,
    control_host: str = "127.0.0.1",
    seed: int | None = None,
    clock: Callable[[], float] = time.monotonic,
    **settings: Any,
) -> AsyncIterator[GilbarcoSimulator]:
    """Serve a simulated Gilbarco line in the running loop: ``async with
    run_gilbarco_simulator(2) as sim:``; ``sim.url`` is ``socket://127.0.0.1:PORT`` or the pty
    path. ``settings`` go to every pump made from a count (flow_lpm, eight_digits, decimals...).
    """
    if isinstance(pumps, int):
        pumps = make_pumps(pumps, hoses_per_pump=hoses_per_pump, **settings)
    turnaround = LINE_FAITHFUL_TURNAROUND if line_faithful else 0.0
    sim = GilbarcoSimulator(pumps, clock=clock, seed=seed, echo=echo, turnaround=turnaround)
    engine = LineEngine(sim.slave, clock=clock, baudrate=baudrate, line_faithful=line_faithful)
    async with AsyncExitStack() as stack:
        if pty:
            pty_server = await stack.enter_async_context(PtyLineServer(engine))
            sim.line_url = pty_server.url
        else:
            tcp_server = await stack.enter_async_context(TcpLineServer(engine, host, port))
            sim.line_url = tcp_server.url
        if control_port is not None:
            from simulator.gilbarco.app import ControlServer

            control = await stack.enter_async_context(
                ControlServer(sim, control_host, control_port))
            sim.control_url = control.url
        try:
            yield sim
        finally:
            sim.line_url = sim.control_url = None
