"""Simulated customers for the demo station: they arrive, lift a nozzle, fuel and leave.

A customer at a pump lifts a random nozzle and waits for the controller to authorize it (an
attendant, an app order, or a pump in auto mode). Authorized, they fuel until the preset stops
the pump or until the litres they wanted, then hang up a few seconds later. Never authorized,
they give up and hang up after a while. One customer per pump at a time; arrivals are random
(exponential gaps) from a seeded RNG, so a demo run can be replayed.

`CustomerTraffic.step(now)` is the whole behaviour, clock passed in; `run()` is the asyncio loop
that calls it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from simulator.control import Simulator
from simulator.metering import raw_to_decimal
from simulator.records import SimulationError
from simulator.states import FUEL_STATES

__all__ = ["CustomerTraffic", "TrafficSettings"]

log = logging.getLogger(__name__)

_LOOK_AGAIN = 0.25  # seconds between glances at the pump while waiting or fuelling


@dataclass(frozen=True)
class TrafficSettings:
    mean_interval: float = 30.0  # mean seconds between two customers at one pump
    patience: float = 45.0  # seconds a customer waits for the authorization
    min_litres: Decimal = Decimal("5")
    max_litres: Decimal = Decimal("50")
    min_leave: float = 2.0  # seconds between the end of the filling and the nozzle going back
    max_leave: float = 6.0


class _Phase(Enum):
    AWAY = "away"
    WAITING = "waiting for authorization"
    FUELLING = "fuelling"
    LEAVING = "leaving"


@dataclass
class _Customer:
    phase: _Phase
    due: float  # when this customer acts next
    nozzle: int = 0
    litres: Decimal = Decimal(0)
    deadline: float = 0.0


class CustomerTraffic:
    """Customers at every pump of `sim`."""

    def __init__(
        self, sim: Simulator, *, seed: int | None = None, settings: TrafficSettings | None = None
    ) -> None:
        self.sim = sim
        self.settings = settings or TrafficSettings()
        self.rng = random.Random(seed)
        self.visits = 0  # customers who lifted a nozzle
        self._customers: dict[int, _Customer] = {}

    def step(self, now: float) -> float:
        """Let every customer whose time has come act; returns when to call again."""
        for address in self.sim.pumps:
            customer = self._customers.get(address)
            if customer is None:
                customer = self._customers[address] = self._away(now)
            if customer.due <= now:
                try:
                    self._act(address, customer, now)
                except SimulationError as error:
                    # Someone else (a person through the control API) is at this pump.
                    log.debug("customer at %#x gives way: %s", address, error)
                    self._customers[address] = self._away(now)
        return min(c.due for c in self._customers.values())

    async def run(self) -> None:
        """Run until cancelled."""
        while True:
            now = self.sim.clock()
            due = self.step(now)
            await asyncio.sleep(min(max(due - now, 0.01), 1.0))

    def _away(self, now: float) -> _Customer:
        return _Customer(_Phase.AWAY, now + self.rng.expovariate(1 / self.settings.mean_interval))

    def _act(self, address: int, customer: _Customer, now: float) -> None:
        pump = self.sim.pump(address)
        pump.tick(now)
        s = self.settings
        if customer.phase == _Phase.AWAY:
            if pump.nozzle_out is not None or pump.status in FUEL_STATES:
                self._customers[address] = self._away(now)
                return
            nozzle = self.rng.choice(sorted(pump.nozzles))
            # Drawn in whole centilitres: a volume never goes through a float.
            span = int((s.max_litres - s.min_litres) * 100)
            litres = s.min_litres + Decimal(self.rng.randint(0, span)) / 100
            self.sim.lift(address, nozzle)
            self.visits += 1
            log.info("pump %#x: a customer lifts nozzle %d for %s L", address, nozzle, litres)
            self._customers[address] = _Customer(
                _Phase.WAITING, now + _LOOK_AGAIN, nozzle, litres, now + s.patience
            )
        elif customer.phase == _Phase.WAITING:
            if pump.filling_nozzle == customer.nozzle:
                customer.phase = _Phase.FUELLING
                customer.due = now + _LOOK_AGAIN
            elif now >= customer.deadline:
                log.info("pump %#x: not authorized, the customer gives up", address)
                self.sim.hang(address, customer.nozzle)
                self._customers[address] = self._away(now)
            else:
                customer.due = now + _LOOK_AGAIN
        elif customer.phase == _Phase.FUELLING:
            volume = raw_to_decimal(pump.filling_info[0], pump.decimals.volume)
            if pump.status not in FUEL_STATES:
                # The preset (or the controller) stopped the pump: put the nozzle back.
                customer.phase = _Phase.LEAVING
                customer.due = now + self.rng.uniform(s.min_leave, s.max_leave)
            elif volume >= customer.litres:
                self._leave(address, customer, now)
            else:
                customer.due = now + _LOOK_AGAIN
        else:
            self._leave(address, customer, now)

    def _leave(self, address: int, customer: _Customer, now: float) -> None:
        if self.sim.pump(address).nozzle_out == customer.nozzle:
            self.sim.hang(address, customer.nozzle)
        self._customers[address] = self._away(now)
