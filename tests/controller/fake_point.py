"""A fuelling point in memory, for the controller's unit tests.

It keeps what a pump keeps (state, prices, finished sales, totals per nozzle) and records every
operation the controller asks of it; a test makes the pump do things by calling its customer
methods, which emit the events a driver would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from domain.fuelling import (
    Capabilities,
    Decimals,
    FillingEnded,
    FinishedSale,
    Identity,
    NozzleDown,
    NozzleUp,
    PointEvent,
    PointOnline,
    PointRefused,
    PointState,
    PointUnreachable,
    PriceMismatch,
    RunningFigures,
    StateChanged,
    Totals,
)
from domain.model import Preset


@dataclass
class FakePoint:
    pump: int
    emit: Callable[[PointEvent], None]
    capabilities: Capabilities = field(default_factory=lambda: Capabilities(
        nozzles=frozenset(range(1, 9))))
    online: bool = False
    state: PointState | None = None
    prices: dict[int, Decimal] = field(default_factory=dict)
    totals: dict[int, Decimal] = field(default_factory=lambda: {1: Decimal("1000.00"),
                                                                2: Decimal("2000.00")})
    sales: list[FinishedSale] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    fail_reads: int = 0  # read_sales fails this many times first
    shown_offset: Decimal = Decimal(0)  # the pump shows prices off by this much
    authorized: tuple[frozenset[int], Preset | None] | None = None

    # ---- the customer and the pump ---------------------------------------------------------

    def come_online(self, state: PointState = PointState.IDLE) -> None:
        self.online = True
        self.state = state
        self.emit(PointOnline(self.pump, Identity("fake", str(self.pump)), self.capabilities))
        self.emit(StateChanged(self.pump, state))

    def set_state(self, state: PointState) -> None:
        self.state = state
        self.emit(StateChanged(self.pump, state))

    def lift(self, logical: int) -> None:
        self.emit(NozzleUp(self.pump, logical, self.prices.get(logical, Decimal(0))
                           + self.shown_offset))
        self.set_state(PointState.STARTED if self.authorized else PointState.CALLING)

    def fill(self, logical: int, volume: Decimal, *, report: Decimal | None = None,
             end: bool = True) -> None:
        """Fuel flows: the totals count ``volume``; the pump reports ``report`` (default the
        same) as its finished sale."""
        self.set_state(PointState.FUELLING)
        price = self.prices.get(logical, Decimal("7.50"))
        self.emit(RunningFigures(self.pump, volume, (volume * price).quantize(Decimal("0.01")),
                                 logical))
        self.totals[logical] += volume
        shown = volume if report is None else report
        self.sales.append(FinishedSale(logical, shown,
                                       (shown * price).quantize(Decimal("0.01")), price))
        if end:
            self.end(logical)

    def end(self, logical: int) -> None:
        self.authorized = None
        self.emit(FillingEnded(self.pump, logical))
        self.set_state(PointState.CALLING)
        self.emit(NozzleDown(self.pump, logical))
        self.set_state(PointState.IDLE)

    # ---- FuellingPoint ---------------------------------------------------------------------

    def detail(self) -> Mapping[str, object]:
        return {"protocol": "fake"}

    def _check(self) -> None:
        if not self.online:
            raise PointUnreachable(self.pump, "offline")

    async def authorize(self, nozzles: frozenset[int], preset: Preset | None) -> None:
        self._check()
        self.calls.append("authorize")
        self.authorized = (nozzles, preset)
        self.set_state(PointState.AUTHORIZED)

    async def cancel(self) -> None:
        self._check()
        self.calls.append("cancel")
        if self.state is PointState.FUELLING:
            raise PointRefused(self.pump, "fuel flows")
        self.authorized = None
        self.set_state(PointState.IDLE)

    async def stop(self) -> None:
        self._check()
        self.calls.append("stop")
        if self.state in (PointState.AUTHORIZED, PointState.STARTED):
            self.authorized = None
            self.set_state(PointState.IDLE)

    async def suspend(self) -> None:
        self.calls.append("suspend")

    async def resume(self) -> None:
        self.calls.append("resume")

    async def close(self) -> None:
        self.calls.append("close")

    async def open(self) -> None:
        self.calls.append("open")

    async def read_sales(self) -> Sequence[FinishedSale]:
        self._check()
        self.calls.append("read_sales")
        if self.fail_reads:
            self.fail_reads -= 1
            raise PointUnreachable(self.pump, "no answer in time")
        return list(self.sales[-1:])

    async def clear_sale(self, sale: FinishedSale) -> None:
        self.calls.append("clear_sale")

    async def read_totals(self, logical: int) -> Totals:
        self._check()
        return Totals(logical, self.totals[logical], self.totals[logical] * 7)

    async def read_pump_totals(self) -> Totals | None:
        return None

    async def set_prices(self, prices: Mapping[int, Decimal]) -> None:
        self._check()
        self.calls.append("set_prices")
        self.prices = dict(prices)
        if self.shown_offset and self.capabilities.price_readback:
            raise PriceMismatch(self.pump, prices,
                                {k: v + self.shown_offset for k, v in prices.items()})

    async def identity(self) -> Identity:
        return Identity("fake", str(self.pump))


def decimals(volume: int = 2, amount: int = 2, price: int = 2) -> Decimals:
    return Decimals(volume, amount, price)
