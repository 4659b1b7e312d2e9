"""A pump's start-up: after it came online, restarted, or lost its prices. Nothing is sold on
a pump before this has run.

1. A pump found fuelling (or authorized) is followed to its end: that filling is recorded the
   usual way, and the rest of the start-up runs after it.
2. Otherwise ``edge.recovery`` compares every nozzle's totals with the ledger; its plan is
   written here: recovered sales (two agreeing witnesses), reviews (fewer), new references.
3. Authorizations the pump no longer holds are closed.
4. The prices are programmed (and read back where the pump can; elsewhere the price the pump
   shows at the lift is checked). A refused or mismatched price raises an alarm and start-up
   tries again with a backoff; the pump sells nothing meanwhile.
5. The pump's own decimals, where it reports them, must equal the configured ones.

Each step has a name; a failure names the step and what the pump answered, and the whole
start-up is tried again (``PUMP_STARTUP``) for as long as the pump stays online.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

from domain.fuelling import (
    FuellingPointError,
    InvalidValue,
    PointRefused,
    PointState,
    PriceMismatch,
)
from domain.model import Authorization
from domain.retry import PUMP_STARTUP
from domain.states import AuthorizationSignal, AuthorizationState, PumpSignal
from domain.states import FuellingPoint as FP
from edge.recovery import Ledgerside, RecoveryPlan, plan_recovery
from edge.settle import build_sale, clear, record
from edge.store import StoreUnavailable

if TYPE_CHECKING:
    from edge.pump import PumpController

__all__ = ["StartupFailed", "start_up"]

log = logging.getLogger("edge.pump")

T = TypeVar("T")

#: Point states in which a filling or an authorization from before a start-up is followed.
ADOPT = frozenset({PointState.AUTHORIZED, PointState.STARTED, PointState.FUELLING,
                   PointState.SUSPENDED, PointState.STOPPED})


class StartupFailed(Exception):
    def __init__(self, step: str, cause: BaseException | str) -> None:
        super().__init__(f"{step}: {cause}")
        self.step = step


async def start_up(pump: PumpController) -> None:
    if not pump.online:
        return
    if pump.ready:
        if pump.busy:
            # New prices came during a sale: they are programmed once it is settled.
            pump.prices_changed()
            return
        pump.signal(PumpSignal.NOT_READY)
    try:
        await PUMP_STARTUP.call_async(
            lambda: _start_up(pump), log, f"pump {pump.number} start-up",
            retry_on=(StartupFailed,), level=logging.WARNING,
            until=lambda: not pump.online or pump.state is not FP.NOT_PROGRAMMED)
    except StartupFailed as exc:
        log.info("pump %d: start-up stopped (%s); it runs again when the pump answers",
                 pump.number, exc)


async def _step(step: str, work: Awaitable[T]) -> T:
    try:
        return await work
    except (FuellingPointError, TimeoutError, StoreUnavailable) as exc:
        raise StartupFailed(step, str(exc) or type(exc).__name__) from exc


async def _start_up(pump: PumpController) -> None:
    if not pump.online or pump.state is not FP.NOT_PROGRAMMED:
        return
    ledger = pump.ledger
    store = ledger.store
    active = [a for a in await ledger.read(store.active_authorizations) if a.pump == pump.number]
    pump.point_state = pump.point.state
    if pump.point_state in ADOPT:
        # A filling (or an authorization) from before we (re)started: follow it to its end.
        pump.auth = active[-1] if active else None
        pump.recovered_fill = True
        pump.fill_started_at = None
        pump.fill_started_mono = None
        pump.signal(PumpSignal.READY)
        pump.follow_point()
        log.info("pump %d: following a pump found %s at start-up", pump.number,
                 pump.point_state.value)
        return
    found = await _step("reading the pump's finished sales and totals", plan_recovery(
        pump.point, pump.settings, Ledgerside(
            last_totals=lambda nozzle: ledger.read(store.last_totals, pump.number, nozzle),
            last_sale=lambda: ledger.read(store.last_sale_of_pump, pump.number),
            sale_by_key=lambda key: ledger.read(store.sale_by_pump_key, pump.number, key)),
        active=active, now=pump.now, tolerance_steps=pump.policy.sale_check_tolerance_steps,
        volume_decimals=pump.settings.decimals.volume))
    used = await _step("recording what the pump recovered", _write(pump, found, active))
    for auth in active:
        if auth.id not in used:
            flowed = auth.state == AuthorizationState.FUELLING
            ended = AuthorizationSignal.ENDED_EMPTY if flowed else AuthorizationSignal.CANCEL
            await pump.auth_signal(auth, ended, reason="the pump no longer holds it after a "
                                                       "restart")
    pump.auth = None
    await _program_prices(pump)
    await _check_decimals(pump)
    pump.point_state = pump.point.state
    pump.signal(PumpSignal.READY)
    pump.follow_point(started=True)
    log.info("pump %d ready (%s)", pump.number,
             pump.point_state.value if pump.point_state else "state unknown")


async def _write(pump: PumpController, plan: RecoveryPlan,
                 active: list[Authorization]) -> set[str]:
    """Write the plan; the ids of the authorizations its sales used."""
    ledger = pump.ledger
    used: set[str] = set()
    for item in plan.readings:
        await ledger.write(ledger.store.record_totals, item.reading)
        if item.discrepancy is not None:
            await ledger.append_event("reconciliation.discrepancy", item.discrepancy)
    for sale in plan.sales:
        nozzle = pump.by_logical[sale.logical]
        auth = _authorization_for(nozzle.number, active, used)
        pump.auth = auth
        if auth is not None and pump.nonsale is not None and pump.nonsale.claims(auth):
            # A self-check or own use that ended while the station was down: still no sale.
            try:
                await pump.nonsale.record(pump, logical=sale.logical, filling=sale.filling,
                                          before=sale.before, after=sale.after)
            finally:
                pump.auth = None
            used.add(auth.id)
            await clear(pump, sale.filling)
            continue
        try:
            authorized = sale.filling.authorized
            new = build_sale(pump, logical=sale.logical, filling=sale.filling,
                             before=sale.before, after=sale.after, recovered=True,
                             flags=() if authorized else ("standalone",),
                             authorized=authorized)
            recorded, created = await record(pump, new)
        finally:
            pump.auth = None
        if auth is not None:
            used.add(auth.id)
        if created:
            log.warning("pump %d: recovered sale %s (%s L, %s) that ended while it could not "
                        "be recorded", pump.number, recorded.id, recorded.volume,
                        recorded.amount)
        await clear(pump, sale.filling)
    for review in plan.reviews:
        nozzle = pump.by_logical[review.logical]
        auth = _authorization_for(nozzle.number, active, used)
        shown: dict[str, str] | None = None
        if review.filling is not None:
            shown = {"volume": str(review.filling.volume), "amount": str(review.filling.amount)}
            if review.filling.price is not None:
                shown["price"] = str(review.filling.price)
        opened = await ledger.write(
            ledger.store.open_review, kind=review.kind, grade=nozzle.grade,
            logical=review.logical, before=review.before, after=review.after, filling=shown,
            authorization_id=auth.id if auth else None,
            order_id=auth.order_id if auth else None)
        await ledger.publish_new()
        if auth is not None:
            used.add(auth.id)
            await pump.auth_signal(auth, AuthorizationSignal.ENDED_EMPTY,
                                   reason=f"fuel to be settled by review {opened.id}")
        pump.review_opened(opened)
        log.warning("pump %d nozzle %d: totals moved %s L with %s: review %s for a person to "
                    "settle", pump.number, nozzle.number, review.after.volume_total
                    - review.before.volume_total, "no filling to match" if review.kind ==
                    "one_witness" else "a filling that does not match", opened.id)
    for filling in plan.recorded:
        await clear(pump, filling)
    return used


def _authorization_for(nozzle: int, active: list[Authorization],
                       used: set[str]) -> Authorization | None:
    for auth in reversed(active):
        if auth.id not in used and auth.nozzle in (None, nozzle):
            return auth
    return None


async def _program_prices(pump: PumpController) -> None:
    prices = {logical: pump.prices.price(n.grade) for logical, n in pump.by_logical.items()}
    price_set_id = pump.prices.price_set_id
    try:
        await pump.point.set_prices(prices)
    except PriceMismatch as exc:
        pump.blocked["prices"] = "the pump does not show the prices it was sent"
        await pump.raise_alarm(
            "price_readback_mismatch",
            expected={str(k): str(v) for k, v in exc.expected.items()},
            read_back={str(k): str(v) for k, v in exc.shown.items()},
            message="the pump does not show the prices it was sent; sales are refused until "
                    "it does")
        raise StartupFailed("programming the prices", "the read-back differs") from exc
    except (PointRefused, InvalidValue) as exc:
        pump.blocked["prices"] = f"the pump refused its prices: {exc.message}"
        await pump.raise_alarm("price_refused", message=exc.message)
        raise StartupFailed("programming the prices", exc.message) from exc
    except (FuellingPointError, TimeoutError) as exc:
        raise StartupFailed("programming the prices", str(exc) or "no answer") from exc
    pump.programmed = dict(prices)
    pump.blocked.pop("prices", None)
    for kind in ("price_readback_mismatch", "price_refused"):
        await pump.clear_alarm(kind)
    caps = pump.capabilities
    if caps is None or caps.price_readback:
        # Read back: proven now. A pump without the read-back proves it at the next lift.
        pump.blocked.pop("price", None)
        await pump.clear_alarm("price_mismatch")
    if price_set_id is not None and price_set_id != pump.price_set_id:
        pump.price_set_id = price_set_id
        by_grade = {n.grade: prices[n.logical] for n in pump.by_logical.values()}
        ledger = pump.ledger
        known = await ledger.read(ledger.store.pump_price_set, pump.number)
        if known != price_set_id:
            await ledger.write(ledger.store.record_pump_prices, pump.number, price_set_id,
                               by_grade)
            await ledger.publish_new()


async def _check_decimals(pump: PumpController) -> None:
    caps = pump.capabilities
    theirs = caps.decimals if caps is not None else None
    ours = pump.settings.decimals
    if theirs is not None and theirs != ours:
        pump.blocked["decimals"] = (f"the pump counts volume/amount/price with {theirs.volume}/"
                                    f"{theirs.amount}/{theirs.price} decimals, the config says "
                                    f"{ours.volume}/{ours.amount}/{ours.price}")
        await pump.raise_alarm("decimals_mismatch", pump_decimals=vars(theirs),
                               config_decimals=vars(ours),
                               message="a wrong decimals setting makes every price ten times "
                                       "off: fix [[pumps]] decimals; sales are refused")
    elif "decimals" in pump.blocked:
        pump.blocked.pop("decimals")
        await pump.clear_alarm("decimals_mismatch")
