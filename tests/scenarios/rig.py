"""What a sale scenario needs of a driver + simulator pair, and a session on the neutral line.

A ``Rig`` runs one protocol's simulator (with a firmware profile) and says what really left
each nozzle; the scenarios drive the pumps only through ``domain.fuelling`` (the line the
registry opens) and the customer's hands (lift, hang). The same scenarios run against every
rig, the way pymodbus runs one set of vectors through every framer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import Protocol, Self, TypeVar

from domain.equipment import LineConfig, PumpConfig
from domain.fuelling import FuellingLine, FuellingPoint, PointEvent, PointOnline
from drivers import registry

E = TypeVar("E", bound=PointEvent)

#: Litres a minute the simulated customers fill at: quick for tests.
FLOW = Decimal("600")


@dataclass(frozen=True)
class Fill:
    """What really left a nozzle, as the simulator measured it."""

    logical: int
    volume: Decimal
    amount: Decimal


class Rig(Protocol):
    """One protocol's simulator, serving pumps 1 and 2 with two nozzles each (92#, 95#)."""

    name: str  # "dart/rev211"
    protocol: str
    prices: dict[int, Decimal]  # by logical nozzle, what the scenarios program
    counters_shared: bool  # the pump's firmware answers one counter for every nozzle
    shares_link: bool  # pumps 1 and 2 are one device (one IFSF board): silent together

    def line(self) -> LineConfig: ...

    def pumps(self) -> Sequence[PumpConfig]: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None: ...

    def lift(self, pump: int, logical: int) -> None: ...

    def hang(self, pump: int, logical: int) -> None: ...

    def dispensed(self, pump: int) -> Decimal:
        """Litres of the filling in progress so far (0 when none)."""
        ...

    def fills(self, pump: int) -> list[Fill]: ...

    def silence(self, pump: int, silent: bool) -> None:
        """The pump stops answering (or answers again)."""
        ...

    def power_cycle(self, pump: int) -> None:
        """The pump loses power and comes back (a filling in progress ends where it was)."""
        ...


class Session:
    """A line opened through the registry, its events collected for the scenario to wait on."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        driver = registry.driver(rig.protocol)
        self.line: FuellingLine = driver.open_line(rig.line(), rig.pumps())
        self.events: list[PointEvent] = []
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self.line.__aenter__()
        self._reader = asyncio.get_running_loop().create_task(self._read(), name="scenario")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self.line.__aexit__(exc_type, exc, tb)

    async def _read(self) -> None:
        async for event in self.line.events():
            async with self._changed:
                self.events.append(event)
                self._changed.notify_all()

    def point(self, pump: int) -> FuellingPoint:
        return self.line.points[pump]

    def mark(self) -> int:
        """Where the events are now: ``wait`` looks only at later ones from here."""
        return len(self.events)

    async def wait(self, kind: type[E], *, after: int = 0, pump: int | None = None,
                   where: Callable[[E], bool] = lambda _: True, timeout: float = 20.0) -> E:
        async def found() -> E | None:
            for event in self.events[after:]:
                if (isinstance(event, kind) and (pump is None or event.pump == pump)
                        and where(event)):
                    return event
            return None

        async with asyncio.timeout(timeout):
            async with self._changed:
                while (event := await found()) is None:
                    await self._changed.wait()
                return event

    async def online(self, *pumps: int, after: int = 0) -> None:
        for pump in pumps or tuple(self.line.points):
            await self.wait(PointOnline, pump=pump, after=after)

    async def until(self, condition: Callable[[], bool], *, timeout: float = 20.0,
                    what: str = "a condition") -> None:
        """Wait for a condition on the simulator (it has no events of its own)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition():
            if loop.time() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await self._changed.wait()
