"""Turning a finished filling into a durable sale, and a sale into a checked one.

When the pump says a filling ended, the controller reads the sale the pump holds and the
nozzle's totals, checks them, records the sale (retrying, never dropping it, while storage
refuses), tells the pump the sale is recorded (IFSF clears its buffer) and only then lets the
pump serve the next customer. A pump that cannot be read keeps being asked, with a capped
backoff, for as long as it is online; after ``unreadable_fill_seconds`` it is also shown out of
service. Figures no pump can produce are recorded as the pump gave them, flagged, and take the
pump out of service until a person releases it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from domain.fuelling import FinishedSale, FuellingPointError
from domain.model import NewSale, Preset, Sale, TotalsReading
from domain.retry import PUMP_STARTUP, SALE_RECORD
from domain.states import AuthorizationSignal
from domain.states import FuellingPoint as FP
from domain.units import step
from edge.checks import check_sale
from edge.store import StoreUnavailable

if TYPE_CHECKING:
    from edge.pump import PumpController

__all__ = ["build_sale", "impossible_figures", "record", "settle"]

log = logging.getLogger("edge.pump")

T = TypeVar("T")


class _WentOffline(Exception):
    """The pump stopped answering while its sale was read: start-up recovers it later."""


async def settle(pump: PumpController) -> None:
    """The pump finished a filling: read it, record the sale, let the pump go on."""
    if pump.state is not FP.COMPLETING:
        return
    watch = asyncio.get_running_loop().call_later(
        pump.policy.unreadable_after.total_seconds(), lambda: _unreadable(pump))
    try:
        finished = _this_filling(pump, await _keep_asking(pump, "reading the finished sale",
                                                          pump.point.read_sales))
        if finished is None or (finished.volume == 0 and finished.amount == 0):
            if pump.auth is not None:
                await pump.auth_signal(pump.auth, AuthorizationSignal.ENDED_EMPTY,
                                       reason="no fuel dispensed")
            pump.settled()
            return
        logical = pump.fill_logical or finished.logical or pump.selected or min(pump.by_logical)
        if logical not in pump.by_logical:
            logical = min(pump.by_logical)
        totals = await _keep_asking(pump, f"reading the totals of logical nozzle {logical}",
                                    lambda: pump.point.read_totals(logical))
    except _WentOffline:
        log.warning("pump %d went offline before its sale was read; it is recovered when the "
                    "pump answers again", pump.number)
        return
    finally:
        watch.cancel()
    nozzle = pump.by_logical[logical]
    after = TotalsReading(pump=pump.number, nozzle=nozzle.number, volume_total=totals.volume,
                          amount_total=totals.amount if totals.amount is not None
                          else Decimal(0), read_at=pump.now(), source="sale")
    before = await pump.ledger.read(pump.ledger.store.last_totals, pump.number, nozzle.number)
    if pump.nonsale is not None and pump.auth is not None and pump.nonsale.claims(pump.auth):
        # A self-check, own use or transfer (docs/books.md): recorded with its totals by the
        # books, never as a sale; the pump goes on as after a sale.
        await pump.nonsale.record(pump, logical=logical, filling=finished, before=before,
                                  after=after)
        await _readable_again(pump)
        await clear(pump, finished)
        pump.settled()
        return
    impossible = impossible_figures(
        volume=finished.volume, amount=finished.amount,
        preset=pump.auth.preset if pump.auth else None,
        seconds=None if pump.fill_started_mono is None
        else pump.monotonic() - pump.fill_started_mono,
        before=before, after=after, pump=pump)
    sale = build_sale(pump, logical=logical, filling=finished, before=before, after=after,
                      recovered=pump.recovered_fill, extra=impossible,
                      flags=("impossible_figures",) if impossible else ())
    recorded, created = await record(pump, sale)
    if impossible and created:
        await pump.take_out_of_service("impossible_figures", sale_id=recorded.id,
                                       problems=[p["problem"] for p in impossible])
    await _readable_again(pump)
    await clear(pump, finished)
    pump.settled()


def _this_filling(pump: PumpController, sales: Sequence[FinishedSale]) -> FinishedSale | None:
    """The filling that just ended: the newest the pump holds (a buffer may hold older ones,
    which start-up recovers)."""
    if not sales:
        return None
    logical = pump.fill_logical
    for sale in reversed(sales):
        if logical is None or sale.logical in (None, logical):
            return sale
    return sales[-1]


async def _keep_asking(pump: PumpController, what: str,
                       ask: Callable[[], Awaitable[T]]) -> T:
    """Ask the pump until it answers; never give up on a sale while the pump is online."""
    try:
        return await PUMP_STARTUP.call_async(
            ask, log, f"pump {pump.number}: {what}", retry_on=(FuellingPointError, TimeoutError),
            level=logging.WARNING, until=lambda: not pump.online)
    except (FuellingPointError, TimeoutError):
        raise _WentOffline from None


def _unreadable(pump: PumpController) -> None:
    """Still no sale after ``unreadable_fill_seconds``: shown out of service meanwhile."""
    if pump.state is FP.COMPLETING and "unreadable_fill" not in pump.alarms:
        seconds = int(pump.policy.unreadable_after.total_seconds())
        pump.urgent(pump.raise_alarm(
            "unreadable_fill", seconds=seconds,
            message="the pump does not give the finished sale; it is asked until it does and "
                    "sells nothing meanwhile"))


async def _readable_again(pump: PumpController) -> None:
    if "unreadable_fill" in pump.alarms:
        await pump.clear_alarm("unreadable_fill")


async def record(pump: PumpController, sale: NewSale) -> tuple[Sale, bool]:
    """Record durably, retrying while storage refuses: the pump keeps its figures meanwhile."""
    recorded, created = await SALE_RECORD.call_async(
        lambda: pump.ledger.record_sale(sale), log, f"pump {pump.number}: recording a sale",
        retry_on=(StoreUnavailable,))
    log.info("pump %d sale %s: %s L %s at %s%s", pump.number, recorded.id, recorded.volume,
             recorded.amount, recorded.price, " (recovered)" if recorded.recovered else "")
    for item in sale.discrepancies if created else ():
        log.warning("pump %d sale %s: discrepancy %s: %s", pump.number, recorded.id,
                    item.get("kind"), item.get("message", ""))
    if created:
        pump.told_sale(recorded)
    return recorded, created


async def clear(pump: PumpController, finished: FinishedSale) -> None:
    """After the durable write, never before: the pump may forget the sale now."""
    try:
        await pump.point.clear_sale(finished)
    except FuellingPointError as exc:
        # Recorded already; the next start-up finds it recorded and clears it then.
        log.warning("pump %d: the recorded sale could not be cleared at the pump yet: %s",
                    pump.number, exc)


async def record_standalone(pump: PumpController, finished: FinishedSale) -> None:
    """A sale the pump made by itself (stand-alone mode): recorded and flagged, never lost."""
    logical = finished.logical if finished.logical in pump.by_logical else min(pump.by_logical)
    assert logical is not None
    nozzle = pump.by_logical[logical]
    try:
        totals = await pump.point.read_totals(logical)
    except FuellingPointError as exc:
        log.warning("pump %d: stand-alone sale, totals not read (%s); start-up recovers it",
                    pump.number, exc)
        return
    after = TotalsReading(pump.number, nozzle.number, totals.volume,
                          totals.amount if totals.amount is not None else Decimal(0),
                          pump.now(), "sale")
    before = await pump.ledger.read(pump.ledger.store.last_totals, pump.number, nozzle.number)
    sale = build_sale(pump, logical=logical, filling=finished, before=before, after=after,
                      recovered=False, flags=("standalone",), authorized=False)
    await record(pump, sale)
    await clear(pump, finished)


def build_sale(pump: PumpController, *, logical: int, filling: FinishedSale,
               before: TotalsReading | None, after: TotalsReading, recovered: bool,
               extra: Sequence[dict[str, Any]] = (), flags: tuple[str, ...] = (),
               authorized: bool = True) -> NewSale:
    nozzle = pump.by_logical[logical]
    price = filling.price or pump.prices.price(nozzle.grade)
    auth = pump.auth if authorized else None
    discrepancies = list(extra)
    discrepancies.extend(check_sale(
        pump=pump.number, nozzle=nozzle.number, volume=filling.volume, amount=filling.amount,
        price=price, before=before, after=after, preset=auth.preset if auth else None,
        decimals=pump.settings.decimals,
        tolerance_steps=pump.policy.sale_check_tolerance_steps))
    if auth is None and (pump.settings.authorize == "attendant" or not authorized):
        discrepancies.append({"kind": "no_authorization", "pump": pump.number,
                              "nozzle": nozzle.number,
                              "message": "fuel dispensed without a recorded authorization"})
    return NewSale(
        pump=pump.number, nozzle=nozzle.number, logical=logical, grade=nozzle.grade,
        price=price, volume=filling.volume, amount=filling.amount,
        price_set_id=pump.price_set_id or pump.prices.price_set_id,
        started_at=pump.fill_started_at if authorized else None, ended_at=pump.now(),
        authorization_id=auth.id if auth else None,
        order_id=auth.order_id if auth else None, recovered=recovered,
        totals_before=before, totals_after=after, discrepancies=tuple(discrepancies),
        pump_key=filling.key, flags=flags)


def impossible_figures(*, volume: Decimal, amount: Decimal, preset: Preset | None,
                       seconds: float | None, before: TotalsReading | None,
                       after: TotalsReading, pump: PumpController) -> list[dict[str, Any]]:
    """What no working pump reports: far past its preset, faster than any pump flows, or a
    volume its totals did not count. Each is a discrepancy of kind ``impossible_figures``."""
    policy = pump.policy
    found: list[dict[str, Any]] = []

    def problem(name: str, **details: Any) -> None:
        found.append({"kind": "impossible_figures", "problem": name, "pump": pump.number,
                      "nozzle": after.nozzle, "volume": str(volume), "amount": str(amount),
                      **details})

    if preset is not None and preset.kind == "amount" and (
            amount > preset.value + policy.preset_overrun_amount):
        problem("beyond_preset", preset=str(preset.value),
                allowed=str(policy.preset_overrun_amount))
    if preset is not None and preset.kind == "volume" and (
            volume > preset.value + policy.preset_overrun_volume):
        problem("beyond_preset", preset=str(preset.value),
                allowed=str(policy.preset_overrun_volume))
    if seconds is not None:
        # Monotonic seconds since fuel was seen flowing (not the wall clock, which may step).
        minutes = Decimal(max(seconds, 0.0)) / 60
        most = policy.max_flow_lpm * minutes + policy.preset_overrun_volume
        if volume > most:
            problem("beyond_max_flow", seconds=str(round(minutes * 60, 1)),
                    max_flow_lpm=str(policy.max_flow_lpm))
    if before is not None:
        delta = after.volume_total - before.volume_total
        if abs(delta - volume) > step(pump.settings.decimals.volume):
            problem("totals_disagree", totals_delta=str(delta))
    return found
