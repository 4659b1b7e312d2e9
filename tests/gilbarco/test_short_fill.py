"""A filling that falls between two status polls: the pump goes from authorized straight to the
end of a sale (a short filling, a busy line). Found by the scenario suite on a loaded machine:
the end was never told, so the sale would never have been read."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from decimal import Decimal
from typing import Any

from domain.equipment import NozzleConfig, PumpConfig
from domain.fuelling import FillingEnded, NozzleUp, PointEvent, PointOnline, PointState
from drivers.gilbarco import (
    AllStop,
    Answer,
    GilbarcoCommandError,
    HoseTotals,
    PumpOnline,
    PumpStatus,
    PumpTotals,
    ReadTotals,
    ReadTransaction,
    Request,
    StatusChanged,
    Transaction,
)
from drivers.gilbarco.config import GilbarcoLineSettings, GilbarcoPumpSettings
from drivers.gilbarco.point import GilbarcoFuellingPoint
from tests.helpers import wait_until

TOTALS = PumpTotals((HoseTotals(1, 0, 0, 750, 750), HoseTotals(2, 0, 0, 802, 802)))


class Line:
    """A pump that shows a finished 1.00 L sale on hose 2; no special function answered."""

    async def request(self, pump: int | None, request: Request | AllStop,
                      timeout: float = 5.0) -> Answer:
        await asyncio.sleep(0)
        if isinstance(request, ReadTotals):
            return TOTALS
        if isinstance(request, ReadTransaction):
            return Transaction(1, 2, 802, 100, 802)
        raise GilbarcoCommandError(1, "no answer")


async def test_authorized_then_the_end_of_a_sale_is_a_filling_that_ended() -> None:
    events: list[PointEvent] = []
    config = PumpConfig(1, "g1", (NozzleConfig(1, 1, "92"), NozzleConfig(2, 2, "95")),
                        settings=GilbarcoPumpSettings(1))
    point = GilbarcoFuellingPoint(config, Line(), GilbarcoLineSettings(port="loop://"),
                                  events.append)
    tasks: list[asyncio.Task[None]] = []

    def spawn(work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        tasks.append(asyncio.create_task(work, name=name))
        return tasks[-1]

    point.attach(spawn)
    try:
        point.bus_event(PumpOnline(1))
        point.bus_event(StatusChanged(1, PumpStatus.IDLE, None))
        await wait_until(lambda: any(isinstance(e, PointOnline) for e in events), timeout=5,
                         what="online")
        point.bus_event(StatusChanged(1, PumpStatus.AUTHORIZED, PumpStatus.IDLE))
        point.bus_event(StatusChanged(1, PumpStatus.END_OF_SALE_A, PumpStatus.AUTHORIZED))
        await wait_until(lambda: any(isinstance(e, FillingEnded) for e in events), timeout=5,
                         what="the end of the filling")
        assert NozzleUp(1, 2, Decimal("8.02")) in events
        assert FillingEnded(1, 2) in events
        assert events.index(NozzleUp(1, 2, Decimal("8.02"))) < events.index(FillingEnded(1, 2))
        await wait_until(lambda: point.state is PointState.IDLE, timeout=5,
                         what="the sale over, waiting to be read")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
