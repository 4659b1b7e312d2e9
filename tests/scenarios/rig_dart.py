"""The DART rig: the project's DART simulator (simulator/) with a firmware profile."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack
from datetime import timedelta
from decimal import Decimal
from types import TracebackType
from typing import Self

from domain.equipment import LineConfig, NozzleConfig, PumpConfig
from domain.fuelling import Decimals
from drivers.dart.config import DartLineSettings, DartPumpSettings, Parity
from simulator.control import Simulator, make_pumps, run_simulator
from simulator.firmware import parse_firmware
from tests.scenarios.rig import FLOW, Fill

ADDRESSES = {1: 0x50, 2: 0x51}
#: What each profile's pumps count with (the config must say the same).
DECIMALS = {"milli": Decimals(volume=3, amount=2, price=3)}


class DartRig:
    protocol = "dart"
    shares_link = False

    def __init__(self, profile: str) -> None:
        self.profile = profile
        self.name = f"dart/{profile}"
        self.decimals = DECIMALS.get(profile.split("+")[0], Decimals())
        self.counters_shared = "pump-wide-totals" in profile
        if self.decimals.price == 3:
            self.prices = {1: Decimal("7.505"), 2: Decimal("8.025")}
        else:
            self.prices = {1: Decimal("7.50"), 2: Decimal("8.02")}
        self._stack = AsyncExitStack()
        self.sim: Simulator | None = None

    def line(self) -> LineConfig:
        assert self.sim is not None and self.sim.url is not None
        # The simulator shares the test's event loop: more slack than a real wire needs.
        return LineConfig("line1", "dart", DartLineSettings(
            port=self.sim.url, parity=Parity.ODD, reply_timeout=timedelta(milliseconds=100)))

    def pumps(self) -> Sequence[PumpConfig]:
        nozzles = {1: (1, 2), 2: (3, 4)}
        return [PumpConfig(number, "line1",
                           tuple(NozzleConfig(station, logical, "92" if logical == 1 else "95")
                                 for logical, station in enumerate(nozzles[number], start=1)),
                           decimals=self.decimals,
                           settings=DartPumpSettings(
                               address=address,
                               # A head that acts on the first command of a block only must
                               # get one command per block (docs/config.md).
                               one_command_per_block="first-command-only" in self.profile))
                for number, address in ADDRESSES.items()]

    async def __aenter__(self) -> Self:
        pumps = make_pumps(2, flow_lpm=FLOW, firmware=parse_firmware(self.profile))
        for pump in pumps:
            pump.ramp_seconds = Decimal("0.3")
        self.sim = await self._stack.enter_async_context(run_simulator(pumps))
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._stack.aclose()

    def _sim(self) -> Simulator:
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
        volume, _ = simulated.filling_info
        if simulated.filling_nozzle is None:
            return Decimal(0)
        return Decimal(volume).scaleb(-self.decimals.volume)

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


#: Every DART firmware profile the simulator has (the full matrix runs each).
PROFILES = ("rev211", "legacy", "milli", "bare", "rev211+first-command-only",
            "rev211+pump-wide-totals", "legacy+status-with-nozzle")
