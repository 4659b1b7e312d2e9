"""The DART simulator (``simulator.control``) behind the neutral simulated line.

Station pumps get consecutive addresses from 0x50 in the order given; each runs its own
firmware profile (``SimPump.profile``: ``rev211``, ``legacy``, ``milli``, ``bare``, with quirks
after ``+``), or the line's (``options``), rev 2.11 by default. A firmware with decimals of its
own (milli: 3/2/3) counts with those, and ``decimals(pump)`` says so: what the station's
config must say for that pump.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal

from domain.fuelling import Decimals
from simulator.control import FIRST_ADDRESS, Simulator, run_simulator
from simulator.firmware import PROFILES, parse_firmware
from simulator.lines.base import Fill, SimPump, grade_numbers
from simulator.metering import Decimals as MeterDecimals
from simulator.metering import raw_to_decimal
from simulator.pump import SimulatedPump
from simulator.records import SimulationError
from simulator.states import FUEL_STATES

__all__ = ["SIMULATION", "DartLine", "DartSimulation"]


class DartLine:
    """A DART ``Simulator`` addressed by station pump numbers."""

    protocol = "dart"

    def __init__(self, sim: Simulator, addresses: Mapping[int, int]) -> None:
        self.sim = sim
        self._addresses = dict(addresses)  # station pump number -> DART address

    @classmethod
    def wrap(cls, sim: Simulator, addresses: Mapping[int, int] | None = None) -> DartLine:
        """A running (or unserved) simulator; pumps numbered 1.. in address order unless
        ``addresses`` says otherwise."""
        if addresses is None:
            addresses = {n: a for n, a in enumerate(sorted(sim.pumps), start=1)}
        return cls(sim, addresses)

    @property
    def pumps(self) -> Sequence[int]:
        return list(self._addresses)

    @property
    def control_url(self) -> str | None:
        return self.sim.control_url

    def _pump(self, pump: int) -> SimulatedPump:
        try:
            return self.sim.pump(self._addresses[pump])
        except KeyError:
            raise SimulationError(f"no pump {pump} on this DART line") from None

    def address(self, pump: int) -> int:
        self._pump(pump)
        return self._addresses[pump]

    def summary(self) -> str:
        pumps = ", ".join(f"{n} ({a:#04x} {self.sim.pump(a).firmware.spec})"
                          for n, a in self._addresses.items())
        return f"DART line on {self.sim.url}: pumps {pumps}"

    def line_keys(self) -> dict[str, object]:
        # The simulator answers from the controller's own event loop where they share a
        # process (the demo, tests): more slack than the wire's 25 ms.
        return {"port": self.sim.url, "baudrate": 9600, "parity": "O",
                "reply_timeout_ms": 100}

    def pump_keys(self, pump: int) -> dict[str, object]:
        return {"address": self.address(pump)}

    def decimals(self, pump: int) -> Decimals:
        d = self._pump(pump).decimals
        return Decimals(volume=d.volume, amount=d.amount, price=d.price)

    def nozzles(self, pump: int) -> Sequence[int]:
        return sorted(self._pump(pump).nozzles)

    def lift(self, pump: int, logical: int) -> None:
        self.sim.lift(self.address(pump), logical)

    def hang(self, pump: int, logical: int) -> None:
        self.sim.hang(self.address(pump), logical)

    def nozzle_out(self, pump: int) -> int | None:
        return self._pump(pump).nozzle_out

    def dispensing(self, pump: int) -> Decimal | None:
        target = self._pump(pump)
        target.tick(self.sim.clock())
        if target.filling_nozzle is None or target.status not in FUEL_STATES:
            return None
        return raw_to_decimal(target.filling_info[0], target.decimals.volume)

    def fills(self, pump: int) -> list[Fill]:
        address = self.address(pump)
        return [Fill(pump, f.nozzle, f.volume_decimal, f.amount_decimal)
                for f in self.sim.fills() if f.pump == address]

    def meter(self, pump: int, logical: int) -> Decimal:
        target = self._pump(pump)
        target.tick(self.sim.clock())
        return raw_to_decimal(target.totals(logical)[0], target.decimals.volume)

    def clock(self) -> float:
        return self.sim.clock()


def simulated_pumps(pumps: Sequence[SimPump], *, options: str = "",
                    flow_lpm: Decimal = Decimal("40")) -> list[SimulatedPump]:
    """The DART pumps for ``pumps``, at 0x50 onwards in order."""
    grades = grade_numbers([n.grade for p in pumps for n in p.nozzles])
    made = []
    for index, pump in enumerate(pumps):
        firmware = parse_firmware(pump.profile or options or "rev211")
        d = firmware.decimals or MeterDecimals(pump.decimals.volume, pump.decimals.amount,
                                               pump.decimals.price)
        totals = {n.logical: (int(n.totals[0].scaleb(d.volume)), int(n.totals[1].scaleb(d.amount)))
                  for n in pump.nozzles}
        made.append(SimulatedPump(
            FIRST_ADDRESS + index, {n.logical: grades[n.grade] for n in pump.nozzles},
            flow_lpm=flow_lpm, decimals=d, totals=totals, firmware=firmware))
    return made


class DartSimulation:
    name = "dart"
    title = "Wayne DART"

    def profiles(self) -> Mapping[str, str]:
        return {p.name: p.summary for p in PROFILES.values()}

    @asynccontextmanager
    async def run(self, pumps: Sequence[SimPump], *, options: str = "",
                  flow_lpm: Decimal = Decimal("40"), seed: int | None = None,
                  control_port: int | None = None) -> AsyncIterator[DartLine]:
        if not 1 <= len(pumps) <= 32:
            raise ValueError("a DART line has 1..32 pumps")
        made = simulated_pumps(pumps, options=options, flow_lpm=flow_lpm)
        async with run_simulator(made, control_port=control_port, seed=seed) as sim:
            yield DartLine(sim, {p.number: FIRST_ADDRESS + i for i, p in enumerate(pumps)})

    def main(self, argv: Sequence[str]) -> int:
        from simulator.cli import run_dart

        return run_dart(list(argv))


SIMULATION = DartSimulation()
