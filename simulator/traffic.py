"""Simulated customers for the demo station: they arrive, lift a nozzle, fuel and leave.

They act through the customer control every simulated line has (``simulator.registry``), so
the same customers visit DART, IFSF and Gilbarco pumps alike.

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
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from simulator.lines.base import SimulatedLine
from simulator.records import SimulationError

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
    """Customers at every pump of ``lines`` (one simulated line or several, any protocol)."""

    def __init__(
        self,
        lines: SimulatedLine | Sequence[SimulatedLine],
        *,
        seed: int | None = None,
        settings: TrafficSettings | None = None,
    ) -> None:
        self.lines = [lines] if not isinstance(lines, Sequence) else list(lines)
        if not self.lines:
            raise ValueError("customers need a line of pumps")
        self.settings = settings or TrafficSettings()
        self.rng = random.Random(seed)
        self.visits = 0  # customers who lifted a nozzle
        self._customers: dict[int, _Customer] = {}
        self._line: dict[int, SimulatedLine] = {}
        for line in self.lines:
            for pump in line.pumps:
                if pump in self._line:
                    raise ValueError(f"pump {pump} is on two lines")
                self._line[pump] = line

    def step(self, now: float) -> float:
        """Let every customer whose time has come act; returns when to call again."""
        for pump, line in self._line.items():
            customer = self._customers.get(pump)
            if customer is None:
                customer = self._customers[pump] = self._away(now)
            if customer.due <= now:
                try:
                    self._act(line, pump, customer, now)
                except SimulationError as error:
                    # Someone else (a person through the control API) is at this pump.
                    log.debug("customer at pump %d gives way: %s", pump, error)
                    self._customers[pump] = self._away(now)
        return min(c.due for c in self._customers.values())

    async def run(self) -> None:
        """Run until cancelled."""
        clock = self.lines[0].clock
        while True:
            now = clock()
            due = self.step(now)
            await asyncio.sleep(min(max(due - now, 0.01), 1.0))

    def _away(self, now: float) -> _Customer:
        return _Customer(_Phase.AWAY, now + self.rng.expovariate(1 / self.settings.mean_interval))

    def _act(self, line: SimulatedLine, pump: int, customer: _Customer, now: float) -> None:
        s = self.settings
        if customer.phase == _Phase.AWAY:
            if line.nozzle_out(pump) is not None or line.dispensing(pump) is not None:
                self._customers[pump] = self._away(now)
                return
            nozzle = self.rng.choice(sorted(line.nozzles(pump)))
            # Drawn in whole centilitres: a volume never goes through a float.
            span = int((s.max_litres - s.min_litres) * 100)
            litres = s.min_litres + Decimal(self.rng.randint(0, span)) / 100
            line.lift(pump, nozzle)
            self.visits += 1
            log.info("pump %d: a customer lifts nozzle %d for %s L", pump, nozzle, litres)
            self._customers[pump] = _Customer(
                _Phase.WAITING, now + _LOOK_AGAIN, nozzle, litres, now + s.patience
            )
        elif customer.phase == _Phase.WAITING:
            if line.dispensing(pump) is not None and line.nozzle_out(pump) == customer.nozzle:
                customer.phase = _Phase.FUELLING
                customer.due = now + _LOOK_AGAIN
            elif now >= customer.deadline:
                log.info("pump %d: not authorized, the customer gives up", pump)
                line.hang(pump, customer.nozzle)
                self._customers[pump] = self._away(now)
            else:
                customer.due = now + _LOOK_AGAIN
        elif customer.phase == _Phase.FUELLING:
            volume = line.dispensing(pump)
            if volume is None:
                # The preset (or the controller) ended the filling: put the nozzle back.
                customer.phase = _Phase.LEAVING
                customer.due = now + self.rng.uniform(s.min_leave, s.max_leave)
            elif volume >= customer.litres:
                self._leave(line, pump, customer, now)
            else:
                customer.due = now + _LOOK_AGAIN
        else:
            self._leave(line, pump, customer, now)

    def _leave(self, line: SimulatedLine, pump: int, customer: _Customer, now: float) -> None:
        if line.nozzle_out(pump) == customer.nozzle:
            line.hang(pump, customer.nozzle)
        self._customers[pump] = self._away(now)
