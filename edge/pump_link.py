"""Talking to one dispenser: what it said last, and asking it things.

``PumpLink`` keeps the pump's latest figures (status, nozzle, live volume and amount, price),
lets a job send commands and wait for the reply they provoke (``_ask``), and runs the pump's jobs
one at a time. What the figures *mean* for sales is ``edge.pump.PumpController``'s business; it
hooks in through ``_on_status``, ``_on_nozzle`` and ``_on_alarm``.

Replies are applied at once (they only update what we observe and wake waiters); anything that
talks back to the pump runs as a job, so two command sequences never interleave on one pump.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol, TypeVar

from domain.errors import PumpOffline, StationError
from domain.model import TotalsReading
from domain.units import from_raw
from drivers.dart import CD101, DC1, DC2, DC3, DC5, DC101, DartCommandError, PumpStatus
from drivers.dart.transactions import Command, Reply, UnknownTransaction
from edge.config import Pump
from edge.store import StoreUnavailable

log = logging.getLogger(__name__)

R = TypeVar("R", bound=Reply)
T = TypeVar("T")

#: How long a reply to a "return ..." command may take (a poll round of a busy line included).
REPLY_TIMEOUT = 3.0


class Line(Protocol):
    """What a pump needs of its line (``drivers.dart.DartLine``)."""

    async def command(self, address: int, commands: Sequence[Command],
                      timeout: float = ...) -> None: ...  # noqa: ASYNC109 (DartLine's own)


@dataclass
class _Waiter:
    predicate: Callable[[Reply], bool]
    future: asyncio.Future[Reply]


class PumpLink:
    def __init__(self, settings: Pump, line: Line, *, clock: Callable[[], datetime],
                 on_change: Callable[[PumpLink], None]) -> None:
        self.settings = settings
        self.number = settings.number
        self.address = settings.address
        self.line = line
        self._clock = clock
        self._on_change = on_change
        self._by_logical = {n.logical: n for n in settings.nozzles}
        self._dv = settings.decimals.volume
        self._da = settings.decimals.amount
        self._dp = settings.decimals.price
        self.online = False
        self.status: PumpStatus | None = None
        self.nozzle_out: int | None = None  # logical nozzle currently out of its holster
        self.selected: int | None = None  # logical nozzle of the current or last filling
        self.pump_price: Decimal | None = None
        self.volume = Decimal(0)  # the current or last filling, as the pump shows it
        self.amount = Decimal(0)
        self.alarm: int | None = None
        self._waiters: list[_Waiter] = []
        self._jobs: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()

    # ----------------------------------------------------------------- hooks

    def _on_status(self, status: PumpStatus, previous: PumpStatus | None) -> None:
        """A DC1 arrived (``self.status`` is already ``status``)."""

    def _on_nozzle(self, out: int | None) -> None:
        """The nozzle out of its holster changed (``self.nozzle_out`` is already ``out``)."""

    def _on_alarm(self, code: int) -> None:
        """The pump reported an alarm (DC5)."""

    # ----------------------------------------------------------------- what the pump says

    def replies(self, replies: Sequence[Reply | UnknownTransaction]) -> None:
        for reply in replies:
            if isinstance(reply, UnknownTransaction):
                log.debug("pump %d: unknown transaction %#x", self.number, reply.trans)
                continue
            self._apply(reply)
            for waiter in tuple(self._waiters):
                if not waiter.future.done() and waiter.predicate(reply):
                    waiter.future.set_result(reply)
                    self._waiters.remove(waiter)
        self._on_change(self)

    def _apply(self, reply: Reply) -> None:
        if isinstance(reply, DC1):
            previous, self.status = self.status, reply.status
            self._on_status(reply.status, previous)
        elif isinstance(reply, DC2):
            self.volume = from_raw(reply.volume, self._dv)
            self.amount = from_raw(reply.amount, self._da)
        elif isinstance(reply, DC3):
            self.pump_price = from_raw(reply.price, self._dp)
            if reply.nozzle:
                self.selected = reply.nozzle
            out = reply.nozzle if reply.nozzle_out else None
            if out != self.nozzle_out:
                self.nozzle_out = out
                self._on_nozzle(out)
        elif isinstance(reply, DC5):
            self.alarm = reply.alarm
            self._on_alarm(reply.alarm)

    def _fail_waiters(self) -> None:
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.set_exception(PumpOffline(f"pump {self.number} stopped answering"))
        self._waiters.clear()

    # ----------------------------------------------------------------- jobs

    def _submit(self, job: Callable[[], Awaitable[None]]) -> None:
        self._jobs.put_nowait(job)

    async def run(self) -> None:
        """The pump's job loop; runs for the daemon's life."""
        while True:
            job = await self._jobs.get()
            try:
                await job()
            except StationError as exc:
                log.warning("pump %d: %s", self.number, exc.message)
            except (DartCommandError, TimeoutError) as exc:
                log.warning("pump %d: no answer (%s); will retry when it answers", self.number, exc)
            except StoreUnavailable as exc:
                log.error("pump %d: %s; the pump is still followed", self.number, exc)
            except Exception:
                # A failed job must not leave the pump unserved for the rest of the day.
                log.exception("pump %d: a job failed; the pump is still followed", self.number)
            finally:
                self._on_change(self)

    async def call(self, job: Callable[[], Awaitable[T]]) -> T:
        """Run ``job`` in the pump's job loop and return its result (for API requests)."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()

        async def wrapped() -> None:
            try:
                result = await job()
            except BaseException as exc:
                if not future.done():
                    future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
            else:
                if not future.done():
                    future.set_result(result)

        self._submit(wrapped)
        return await future

    # ----------------------------------------------------------------- asking the pump

    async def _ask(self, commands: Sequence[Command], kind: type[R],
                   match: Callable[[R], bool] = lambda _: True) -> R:
        """Send ``commands`` and wait for the next reply of ``kind`` that ``match``es."""
        if not self.online:
            raise PumpOffline(f"pump {self.number} is offline")
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(lambda r: isinstance(r, kind) and match(r), future)
        self._waiters.append(waiter)
        try:
            await self.line.command(self.address, commands)
            reply = await asyncio.wait_for(future, REPLY_TIMEOUT)
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        assert isinstance(reply, kind)
        return reply

    async def _wait_status(self, wanted: Sequence[PumpStatus], within: float) -> PumpStatus:
        if self.status in wanted:
            assert self.status is not None
            return self.status
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(lambda r: isinstance(r, DC1) and r.status in wanted, future)
        self._waiters.append(waiter)
        try:
            reply = await asyncio.wait_for(future, within)
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        assert isinstance(reply, DC1)
        return reply.status

    async def _read_totals(self, logical: int) -> TotalsReading:
        """The nozzle's electronic totals (CD101 -> DC101), volume and amount."""
        volume = await self._ask([CD101(logical)], DC101, lambda r: r.counter == logical)
        amount = await self._ask([CD101(0x10 + logical)], DC101,
                                 lambda r: r.counter == 0x10 + logical)
        nozzle = self._by_logical[logical]
        return TotalsReading(pump=self.number, nozzle=nozzle.number,
                             volume_total=from_raw(volume.total, self._dv),
                             amount_total=from_raw(amount.total, self._da),
                             read_at=self._clock(), source="pump")
