"""The Gilbarco rigs: the project's Gilbarco two-wire simulator (simulator/gilbarco/) on a
loopback TCP port, as a current-loop converter on the LAN would carry the line.

- ``gilbarco/standard``: pumps 1 and 2 in the standard digits mode, 2/2/2 decimals.
- ``gilbarco/8-digit``: both pumps in the 8-digit mode.
- ``gilbarco/echo``: a converter that echoes every byte the controller sends.
- ``gilbarco/milli``: pumps counting millilitres and prices to 3 places (3/2/3).
- ``gilbarco/no-config-answer``: pumps that keep their configuration to themselves (the
  config's decimals are used).
- ``gilbarco/idle-without-read``: the end of a sale returns to idle on its own after 0.5 s,
  read or not.
- ``gilbarco/idle-without-hang-up``: the end of a sale returns to idle with the nozzle still up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from types import TracebackType
from typing import Self

from domain.equipment import LineConfig, NozzleConfig, PumpConfig
from domain.fuelling import Decimals
from drivers.gilbarco.commands import DigitsMode
from drivers.gilbarco.config import GilbarcoLineSettings, GilbarcoPumpSettings, Parity
from simulator.gilbarco import EndProfile, GilbarcoPump, GilbarcoSimulator
from simulator.gilbarco import run_gilbarco_simulator as serve
from simulator.gilbarco.states import Status
from simulator.metering import Decimals as PumpDecimals
from tests.scenarios.rig import FLOW, Fill

ADDRESSES = {1: 1, 2: 2}
#: Statuses in which a filling is under way at the pump (fuel flows or may flow).
FILLING = frozenset({Status.AUTHORIZED, Status.FUELLING, Status.STOPPED})


@dataclass(frozen=True)
class Profile:
    eight_digits: bool = False
    echo: bool = False
    decimals: Decimals = field(default_factory=Decimals)
    answers_config: bool = True
    end: EndProfile = field(default_factory=EndProfile)


PROFILES: dict[str, Profile] = {
    "standard": Profile(),
    "8-digit": Profile(eight_digits=True),
    "echo": Profile(echo=True),
    "milli": Profile(decimals=Decimals(volume=3, amount=2, price=3)),
    "no-config-answer": Profile(answers_config=False),
    "idle-without-read": Profile(end=EndProfile(needs_read=False, hold=0.5)),
    "idle-without-hang-up": Profile(end=EndProfile(needs_hangup=False)),
}


class GilbarcoRig:
    protocol = "gilbarco"
    counters_shared = False  # a counter per hose
    shares_link = False

    def __init__(self, profile: str) -> None:
        self.name = f"gilbarco/{profile}"
        self.profile = PROFILES[profile]
        self.decimals = self.profile.decimals
        if self.decimals.price == 3:
            self.prices = {1: Decimal("7.505"), 2: Decimal("8.025")}
        else:
            self.prices = {1: Decimal("7.50"), 2: Decimal("8.02")}
        self._stack = AsyncExitStack()
        self.sim: GilbarcoSimulator | None = None

    def line(self) -> LineConfig:
        assert self.sim is not None
        return LineConfig("g1", "gilbarco", GilbarcoLineSettings(
            port=self.sim.url, parity=Parity.NONE, echo=self.profile.echo,
            digits=DigitsMode.EIGHT if self.profile.eight_digits else DigitsMode.STANDARD,
            poll_interval=timedelta(milliseconds=5)))

    def pumps(self) -> Sequence[PumpConfig]:
        nozzles = {1: (1, 2), 2: (3, 4)}
        return [PumpConfig(number, "g1",
                           tuple(NozzleConfig(station, hose, "92" if hose == 1 else "95")
                                 for hose, station in enumerate(nozzles[number], start=1)),
                           decimals=self.decimals,
                           settings=GilbarcoPumpSettings(address=address))
                for number, address in ADDRESSES.items()]

    def _sim_pumps(self) -> list[GilbarcoPump]:
        d = self.decimals
        # The pumps start with other prices than the scenarios program: set_prices must work.
        start = {1: 10 ** d.price * 7, 2: 10 ** d.price * 8}
        return [GilbarcoPump(address, {1: 92, 2: 95}, prices=start,
                             eight_digits=self.profile.eight_digits,
                             decimals=PumpDecimals(d.volume, d.amount, d.price),
                             flow_lpm=FLOW, ramp_seconds=Decimal("0.3"), start_delay=0.1,
                             end=self.profile.end, answers_config=self.profile.answers_config)
                for address in ADDRESSES.values()]

    async def __aenter__(self) -> Self:
        self.sim = await self._stack.enter_async_context(
            serve(self._sim_pumps(), echo=self.profile.echo))
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._stack.aclose()

    def _sim(self) -> GilbarcoSimulator:
        assert self.sim is not None
        return self.sim

    def lift(self, pump: int, logical: int) -> None:
        self._sim().lift(ADDRESSES[pump], logical)

    def hang(self, pump: int, logical: int) -> None:
        self._sim().hang(ADDRESSES[pump], logical)

    def dispensed(self, pump: int) -> Decimal:
        sim = self._sim()
        sim.tick()
        simulated = sim.pump(ADDRESSES[pump])
        if simulated.status not in FILLING:
            return Decimal(0)
        return Decimal(simulated.sale.volume).scaleb(-self.decimals.volume)

    def fills(self, pump: int) -> list[Fill]:
        return [Fill(f.nozzle, f.volume_decimal, f.amount_decimal)
                for f in self._sim().fills() if f.pump == ADDRESSES[pump]]

    def silence(self, pump: int, silent: bool) -> None:
        if silent:
            self._sim().set_fault(ADDRESSES[pump], silent=True)
        else:
            self._sim().clear_faults(ADDRESSES[pump])

    def power_cycle(self, pump: int) -> None:
        self._sim().power_cycle(ADDRESSES[pump])


RIGS: dict[str, Callable[[], GilbarcoRig]] = {
    f"gilbarco/{name}": (lambda name=name: GilbarcoRig(name)) for name in PROFILES
}
