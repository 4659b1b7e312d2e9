"""Following a pump, with a scripted line where timing matters (a status that changes while the
point is still asking the pump something)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from decimal import Decimal
from typing import Any

from domain.equipment import NozzleConfig, PumpConfig
from domain.fuelling import NozzleUp, PointEvent, PointOnline, PointState, StateChanged
from drivers.gilbarco import (
    AllStop,
    Answer,
    GilbarcoCommandError,
    HoseTotals,
    PumpOnline,
    PumpStatus,
    PumpTotals,
    ReadSpecialFunction,
    ReadTotals,
    Request,
    SpecialFunctionAnswer,
    StatusChanged,
)
from drivers.gilbarco.config import GilbarcoLineSettings, GilbarcoPumpSettings
from drivers.gilbarco.point import GilbarcoFuellingPoint
from tests.helpers import wait_until

TOTALS = PumpTotals((HoseTotals(1, 0, 0, 750, 750), HoseTotals(2, 0, 0, 802, 802)))


class ScriptedLine:
    """Answers like a calling pump; someone authorizes it while its nozzle is asked for."""

    def __init__(self) -> None:
        self.point: GilbarcoFuellingPoint | None = None

    async def request(self, pump: int | None, request: Request | AllStop,
                      timeout: float = 5.0) -> Answer:
        assert self.point is not None
        await asyncio.sleep(0)
        if isinstance(request, ReadTotals):
            return TOTALS
        if isinstance(request, ReadSpecialFunction) and request.function == 10:
            self.point.bus_event(StatusChanged(1, PumpStatus.AUTHORIZED, PumpStatus.CALLING))
            return SpecialFunctionAnswer.of(1, 10, b"\x02")
        raise GilbarcoCommandError(1, "no answer")


async def test_a_status_change_during_start_up_is_not_lost() -> None:
    line = ScriptedLine()
    events: list[PointEvent] = []
    config = PumpConfig(1, "g1", (NozzleConfig(1, 1, "92"), NozzleConfig(2, 2, "95")),
                        settings=GilbarcoPumpSettings(1))
    point = GilbarcoFuellingPoint(config, line, GilbarcoLineSettings(port="loop://"),
                                  events.append)
    line.point = point
    tasks: list[asyncio.Task[None]] = []

    def spawn(work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        tasks.append(asyncio.create_task(work, name=name))
        return tasks[-1]

    point.attach(spawn)
    try:
        point.bus_event(PumpOnline(1))
        point.bus_event(StatusChanged(1, PumpStatus.CALLING, None))
        await wait_until(lambda: point.state is PointState.STARTED, timeout=5,
                         what="authorized with the nozzle up")
        assert isinstance(events[0], PointOnline)
        assert events[1:] == [NozzleUp(1, 2, Decimal("8.02")),
                              StateChanged(1, PointState.CALLING, "calling"),
                              StateChanged(1, PointState.STARTED, "authorized")]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
