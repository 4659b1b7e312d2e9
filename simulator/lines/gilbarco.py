"""The Gilbarco two-wire simulator (``simulator.gilbarco``) behind the neutral simulated line.

Station pumps get pump addresses 1, 2, ... in the order given; a pump's logical nozzles are its
hoses. Line options (``+``-joined): ``8-digit`` (the pumps' 8-digit mode; the line's ``digits``
says the same), ``echo`` (a current-loop converter that echoes every byte). Pump profiles:
``no-config-answer`` (keeps its configuration to itself), ``idle-without-read`` (the end of a
sale returns to idle after 2 s, read or not), ``idle-without-hang-up``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal

from domain.fuelling import Decimals
from simulator.gilbarco import EndProfile, GilbarcoPump, GilbarcoSimulator, run_gilbarco_simulator
from simulator.gilbarco.states import Status
from simulator.lines.base import Fill, SimPump, grade_numbers
from simulator.metering import Decimals as MeterDecimals
from simulator.metering import raw_to_decimal
from simulator.records import SimulationError

__all__ = ["SIMULATION", "GilbarcoLine", "GilbarcoSimulation"]

PROFILES = {
    "standard": "answers everything the notes describe",
    "no-config-answer": "keeps its configuration to itself (the config's decimals are used)",
    "idle-without-read": "the end of a sale returns to idle after 2 s, read or not",
    "idle-without-hang-up": "the end of a sale returns to idle with the nozzle still up",
}
OPTIONS = frozenset({"8-digit", "echo"})
#: Polls a round of the line waits for on a simulator that answers at once (a real loop at
#: 5787 baud paces itself).
POLL_INTERVAL_MS = 20


class GilbarcoLine:
    """A ``GilbarcoSimulator`` addressed by station pump numbers."""

    protocol = "gilbarco"

    def __init__(self, sim: GilbarcoSimulator, addresses: Mapping[int, int], *,
                 eight_digits: bool = False) -> None:
        self.sim = sim
        self._addresses = dict(addresses)  # station pump number -> pump address 1..16
        self._eight = eight_digits

    @property
    def pumps(self) -> Sequence[int]:
        return list(self._addresses)

    @property
    def control_url(self) -> str | None:
        return self.sim.control_url

    def _pump(self, pump: int) -> GilbarcoPump:
        try:
            return self.sim.pump(self._addresses[pump])
        except KeyError:
            raise SimulationError(f"no pump {pump} on this Gilbarco line") from None

    def summary(self) -> str:
        pumps = ", ".join(f"{n} (address {a})" for n, a in self._addresses.items())
        mode = "8-digit" if self._eight else "standard"
        echo = ", echoing converter" if self.sim.slave.echo else ""
        return f"Gilbarco line on {self.sim.url} ({mode} mode{echo}): pumps {pumps}"

    def line_keys(self) -> dict[str, object]:
        return {"port": self.sim.url, "echo": self.sim.slave.echo,
                "digits": "8-digit" if self._eight else "standard",
                "poll_interval_ms": POLL_INTERVAL_MS}

    def pump_keys(self, pump: int) -> dict[str, object]:
        self._pump(pump)
        return {"address": self._addresses[pump]}

    def decimals(self, pump: int) -> Decimals:
        d = self._pump(pump).decimals
        return Decimals(volume=d.volume, amount=d.amount, price=d.price)

    def nozzles(self, pump: int) -> Sequence[int]:
        return sorted(self._pump(pump).hoses)

    def lift(self, pump: int, logical: int) -> None:
        self._pump(pump)
        self.sim.lift(self._addresses[pump], logical)

    def hang(self, pump: int, logical: int) -> None:
        self._pump(pump)
        self.sim.hang(self._addresses[pump], logical)

    def nozzle_out(self, pump: int) -> int | None:
        return self._pump(pump).nozzle_out

    def dispensing(self, pump: int) -> Decimal | None:
        target = self._pump(pump)
        target.tick(self.sim.clock())
        flowing = target.status is Status.FUELLING or (
            target.status is Status.AUTHORIZED and target.nozzle_out is not None)
        if not flowing:
            return None
        return raw_to_decimal(target.sale.volume, target.decimals.volume)

    def fills(self, pump: int) -> list[Fill]:
        address = self._addresses[pump]
        return [Fill(pump, f.nozzle, f.volume_decimal, f.amount_decimal)
                for f in self.sim.fills() if f.pump == address]

    def meter(self, pump: int, logical: int) -> Decimal:
        target = self._pump(pump)
        target.tick(self.sim.clock())
        return raw_to_decimal(target.totals(logical)[0], target.decimals.volume)

    def clock(self) -> float:
        return self.sim.clock()


def _end(profile: str) -> EndProfile:
    if profile == "idle-without-read":
        return EndProfile(needs_read=False, hold=2.0)
    if profile == "idle-without-hang-up":
        return EndProfile(needs_hangup=False)
    return EndProfile()


def simulated_pumps(pumps: Sequence[SimPump], *, eight_digits: bool = False,
                    flow_lpm: Decimal = Decimal("40")) -> list[GilbarcoPump]:
    if not 1 <= len(pumps) <= 16:
        raise ValueError("a Gilbarco line has 1..16 pumps")
    grades = grade_numbers([n.grade for p in pumps for n in p.nozzles])
    made = []
    for address, pump in enumerate(pumps, start=1):
        profile = pump.profile or "standard"
        if profile not in PROFILES:
            raise ValueError(f"pump {pump.number}: unknown Gilbarco profile {profile!r} "
                             f"(known: {', '.join(PROFILES)})")
        d = MeterDecimals(pump.decimals.volume, pump.decimals.amount, pump.decimals.price)
        made.append(GilbarcoPump(
            address, {n.logical: grades[n.grade] for n in pump.nozzles},
            prices={n.logical: int(n.price.scaleb(d.price)) for n in pump.nozzles},
            totals={n.logical: (int(n.totals[0].scaleb(d.volume)),
                                int(n.totals[1].scaleb(d.amount))) for n in pump.nozzles},
            eight_digits=eight_digits, decimals=d, flow_lpm=flow_lpm, end=_end(profile),
            answers_config=profile != "no-config-answer"))
    return made


class GilbarcoSimulation:
    name = "gilbarco"
    title = "Gilbarco two-wire"

    def profiles(self) -> Mapping[str, str]:
        return dict(PROFILES)

    @asynccontextmanager
    async def run(self, pumps: Sequence[SimPump], *, options: str = "",
                  flow_lpm: Decimal = Decimal("40"), seed: int | None = None,
                  control_port: int | None = None) -> AsyncIterator[GilbarcoLine]:
        chosen = frozenset(o for o in options.split("+") if o)
        unknown = chosen - OPTIONS
        if unknown:
            raise ValueError(f"unknown Gilbarco line option(s) {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(sorted(OPTIONS))})")
        eight = "8-digit" in chosen
        made = simulated_pumps(pumps, eight_digits=eight, flow_lpm=flow_lpm)
        async with run_gilbarco_simulator(made, echo="echo" in chosen, seed=seed,
                                          control_port=control_port) as sim:
            yield GilbarcoLine(sim, {p.number: a for a, p in enumerate(pumps, start=1)},
                               eight_digits=eight)

    def main(self, argv: Sequence[str]) -> int:
        from simulator.gilbarco.cli import main

        return main(argv)


SIMULATION = GilbarcoSimulation()
