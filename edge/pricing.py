"""Price changes: scheduled (cloud ``price.schedule``, or a manager) or immediate (emergency).

A price set is stored first; at its ``effective_at`` it becomes the station's current prices and
each pump is programmed with it (CD5, read back) as soon as it is not fuelling: a busy pump gets
the new prices right after its sale, so a sale is never split across two prices. Every pump
programmed gives a ``price.applied`` event, and every sale carries the price set it was sold at.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal

from domain.model import PriceSchedule
from domain.units import MAX_RAW_3, UnitError, to_raw
from edge.forecourt import Forecourt
from edge.ledger import Ledger
from sync.inbox import MAX_EXPIRY

log = logging.getLogger(__name__)

# When a price change may take effect: one definition for the console's API and the cloud's
# `price.schedule` (docs/security.md). A clock a little behind the station's must not refuse a
# change meant for "now"; further ahead than a year is a typing mistake, not a plan (and the
# years near 9999 overflow once turned into UTC).
PAST_TOLERANCE = timedelta(minutes=1)
FURTHEST_AHEAD = timedelta(days=366)
# A cloud command may arrive late, queued at the broker while the station was offline: a
# schedule whose time has passed then applies at once. No command lives longer than a week
# (MAX_EXPIRY), so an effective_at older than that was never meant for now.
CLOUD_PAST_TOLERANCE = MAX_EXPIRY


class PriceRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_effective_at(effective_at: datetime, now: datetime, *,
                       past_tolerance: timedelta = PAST_TOLERANCE) -> None:
    """PriceRefused unless `effective_at` is within `past_tolerance` before `now` and at most
    FURTHEST_AHEAD after it."""
    if effective_at < now - past_tolerance:
        raise PriceRefused("effective_at_in_past",
                           f"effective_at {effective_at.isoformat()} has passed")
    if effective_at > now + FURTHEST_AHEAD:
        raise PriceRefused("effective_at_too_far",
                           f"effective_at {effective_at.isoformat()} is more than a year ahead")


class PriceScheduler:
    def __init__(self, forecourt: Forecourt, ledger: Ledger, *,
                 clock: Callable[[], datetime]) -> None:
        self.forecourt = forecourt
        self.ledger = ledger
        self.store = ledger.store
        self._clock = clock
        self._wake = asyncio.Event()

    def check(self, prices: Mapping[str, Decimal]) -> None:
        grades = {g.code for g in self.forecourt.config.grades}
        unknown = sorted(set(prices) - grades)
        if unknown:
            raise PriceRefused("unknown_grade", f"the station sells no grade {', '.join(unknown)}")
        for code, price in prices.items():
            for pump in self.forecourt.config.pumps:
                if any(n.grade == code for n in pump.nozzles):
                    try:
                        to_raw(price, pump.decimals.price, maximum=MAX_RAW_3)
                    except UnitError as exc:
                        raise PriceRefused("invalid_price",
                                           f"grade {code} at {price}: {exc} "
                                           f"(pump {pump.number})") from None

    async def schedule(self, price_set_id: str, *, effective_at: datetime,
                       prices: Mapping[str, Decimal], source: str,
                       past_tolerance: timedelta = PAST_TOLERANCE) -> PriceSchedule:
        check_effective_at(effective_at, self._clock(), past_tolerance=past_tolerance)
        self.check(prices)
        schedule, created = await self.ledger.write(
            self.store.schedule_prices, price_set_id, effective_at=effective_at,
            prices=dict(prices), source=source)
        if created:
            log.info("price set %s scheduled for %s by %s: %s", price_set_id,
                     effective_at.isoformat(), source,
                     ", ".join(f"{g} {p}" for g, p in sorted(prices.items())))
        self._wake.set()
        return schedule

    def wake(self) -> None:
        """Look at the schedules again now (one was cancelled or changed)."""
        self._wake.set()

    async def run(self) -> None:
        """Runs for the daemon's life: applies each schedule when it falls due."""
        while True:
            for schedule in await self.ledger.read(self.store.due_price_schedules, self._clock()):
                await self._apply(schedule)
            upcoming = await self.ledger.read(self.store.next_price_schedule)
            timeout = None
            if upcoming is not None:
                timeout = max(0.0, (upcoming.effective_at - self._clock()).total_seconds())
            self._wake.clear()
            # Wake at the next effective time, on a new schedule, or every minute (a clock jump
            # must not leave a schedule waiting for hours).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(timeout or 60.0, 60.0)):
                    await self._wake.wait()

    async def _apply(self, schedule: PriceSchedule) -> None:
        applied = await self.ledger.write(self.store.apply_price_schedule, schedule.price_set_id)
        if applied.applied_at is None:
            return  # cancelled meanwhile (DELETE /api/v1/prices/schedules/{id})
        book = self.forecourt.prices
        book.prices.update(applied.prices)
        book.price_set_id = applied.price_set_id
        log.info("price set %s is now current; programming the pumps", applied.price_set_id)
        for pump in self.forecourt.pumps.values():
            pump.prices_changed()
