"""App orders: prepaid in the phone app, fuelled at the pump the driver chose.

``order.create`` is checked (nozzle, grade, price against the current price, preset within what
was paid), recorded, the pump reserved for it, and authorized with the preset. The order then
follows its authorization (``PumpObserver``): fuelling, completed with the sale and the refund
(paid - amount), or expired when the nozzle is not lifted in time (the pump is reset), or
cancelled. Every status change is an ``order.updated`` event written in the same transaction as
the order itself. An order id seen twice is one order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.accounts import AccountUse
from domain.errors import StationError
from domain.model import Authorization, Order, Preset, Review, Sale, decimal_str
from domain.states import (
    OPEN_ORDER_STATUSES,
    AuthorizationSignal,
    AuthorizationState,
    OrderSignal,
    OrderStatus,
    order_next,
)
from edge.forecourt import Forecourt
from edge.ledger import Ledger
from edge.pump import PumpController

log = logging.getLogger(__name__)


class OrderRefused(Exception):
    """An order the station will not take; ``code`` is the reason the app is told."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def order_view(order: Order) -> dict[str, Any]:
    return {"order_id": order.order_id, "status": order.status, "reason": order.reason,
            "nozzle": order.nozzle, "sale_id": order.sale_id,
            "refund": decimal_str(order.refund) if order.refund is not None else None,
            "authorization_id": order.authorization_id}


class Orders:
    def __init__(self, forecourt: Forecourt, ledger: Ledger, *, clock: Callable[[], datetime],
                 lift_timeout: timedelta) -> None:
        self.forecourt = forecourt
        self.ledger = ledger
        self.store = ledger.store
        self._clock = clock
        self._lift_timeout = lift_timeout
        self._timers: dict[str, asyncio.TimerHandle] = {}
        # Follow-ups run in run()'s task group; those asked for while it is not running (before
        # the daemon's services start it, during a restart) wait here.
        self._group: asyncio.TaskGroup | None = None
        self._pending: list[Coroutine[Any, Any, None]] = []
        for pump in forecourt.pumps.values():
            pump.observers.append(self)

    async def start(self) -> None:
        """After a restart: reserve the pumps of open orders again and re-arm their timers."""
        for order in await self.ledger.read(self.store.open_orders):
            if order.status == OrderStatus.PENDING_REVIEW:
                continue  # waits for a person, not for the pump
            pump, _ = self.forecourt.nozzle(order.nozzle)
            pump.reserved_by = order.order_id
            if order.status == OrderStatus.AUTHORIZED:
                self._arm(order, order.updated_at + self._lift_timeout)

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for coro in self._pending:
            coro.close()
        self._pending.clear()

    async def run(self) -> None:
        """Runs the orders' follow-ups until cancelled (a service of the daemon); cancelling it
        cancels the follow-ups in flight."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            try:
                pending, self._pending = self._pending, []
                for coro in pending:
                    group.create_task(self._guarded(coro), name="order-follow")
                await asyncio.Event().wait()
            finally:
                self._group = None

    # ----------------------------------------------------------------- commands

    async def create(self, *, order_id: str, nozzle: int, grade: str, price: Decimal,
                     preset: Preset, paid: Decimal, expires_at: datetime,
                     account: AccountUse | None = None) -> dict[str, Any]:
        existing = await self.ledger.read(self.store.get_order, order_id)
        if existing is not None:
            return order_view(existing)  # the same order again: one order
        try:
            pump, logical = self._check(nozzle=nozzle, grade=grade, price=price, preset=preset,
                                        paid=paid, order_id=order_id)
        except OrderRefused as refused:
            order, _ = await self.ledger.write(
                self.store.create_order, order_id=order_id, nozzle=nozzle, grade=grade,
                price=price, preset=preset, paid=paid, expires_at=expires_at,
                status=OrderStatus.REJECTED, reason=refused.code)
            await self.ledger.publish_new()
            raise
        order, created = await self.ledger.write(
            self.store.create_order, order_id=order_id, nozzle=nozzle, grade=grade, price=price,
            preset=preset, paid=paid, expires_at=expires_at, status=OrderStatus.ACCEPTED)
        if not created:
            return order_view(order)
        await self.ledger.publish_new()
        pump.reserved_by = order_id
        try:
            auth = await pump.call(lambda: pump.authorize(logical, preset, source="order",
                                                          user="app", order_id=order_id,
                                                          account=account))
        except StationError as exc:
            pump.reserved_by = None
            order = await self._move(order, OrderSignal.REFUSED, reason=exc.code)
            raise OrderRefused(exc.code, exc.message) from None
        order = await self._move(order, OrderSignal.AUTHORIZED, authorization_id=auth.id)
        self._arm(order, self._clock() + self._lift_timeout)
        log.info("app order %s authorized on nozzle %d (%s %s, paid %s)", order_id, nozzle,
                 preset.kind, preset.value, paid)
        return order_view(order)

    async def cancel(self, order_id: str) -> dict[str, Any]:
        order = await self.ledger.read(self.store.get_order, order_id)
        if order is None:
            raise OrderRefused("unknown_order", f"there is no order {order_id}")
        if order.status not in (OrderStatus.ACCEPTED, OrderStatus.AUTHORIZED):
            raise OrderRefused("too_late", f"order {order_id} is {order.status}")
        await self._take_back(order, OrderSignal.CANCEL, AuthorizationSignal.CANCEL,
                              "cancelled by the app")
        updated = await self.ledger.read(self.store.get_order, order_id)
        assert updated is not None
        return order_view(updated)

    def _check(self, *, nozzle: int, grade: str, price: Decimal, preset: Preset, paid: Decimal,
               order_id: str) -> tuple[PumpController, int]:
        try:
            pump, logical = self.forecourt.nozzle(nozzle)
        except StationError:
            raise OrderRefused("unknown_nozzle", f"there is no nozzle {nozzle}") from None
        nozzle_grade = next(n.grade for n in pump.settings.nozzles if n.logical == logical)
        if grade != nozzle_grade:
            raise OrderRefused("grade_mismatch",
                               f"nozzle {nozzle} sells grade {nozzle_grade}, not {grade}")
        current = self.forecourt.prices.prices.get(grade)
        if current is None or price != current:
            raise OrderRefused("price_mismatch", f"grade {grade} costs {current}, not {price}")
        cost = preset.value if preset.kind == "amount" else preset.value * price
        if cost > paid:
            raise OrderRefused("preset_exceeds_paid",
                               f"the preset ({preset.kind} {preset.value}) costs more than the "
                               f"{decimal_str(paid)} paid")
        try:
            pump.check_can_authorize(logical, order_id)
        except StationError as exc:
            raise OrderRefused(exc.code, exc.message) from None
        return pump, logical

    # ----------------------------------------------------------------- following the pump

    def authorization_changed(self, pump: PumpController, auth: Authorization) -> None:
        if auth.order_id is None:
            return
        signal = {AuthorizationState.FUELLING: OrderSignal.FLOW_STARTED,
                  AuthorizationState.UNUSED: OrderSignal.ENDED_EMPTY,
                  AuthorizationState.CANCELLED: OrderSignal.CANCEL}.get(
                      AuthorizationState(auth.state))
        if signal is not None:
            self._spawn(self._follow(auth.order_id, signal, pump))

    def sale_recorded(self, pump: PumpController, sale: Sale) -> None:
        if sale.order_id is not None:
            self._spawn(self._follow(sale.order_id, OrderSignal.SALE_RECORDED, pump, sale))

    def review_opened(self, pump: PumpController, review: Review) -> None:
        # Fuel flowed but no sale could be rebuilt: the order waits for a person's decision,
        # and the nozzle is free for the next customer meanwhile.
        if review.order_id is not None:
            self._spawn(self._follow(review.order_id, OrderSignal.NEEDS_REVIEW, pump))

    async def review_settled(self, review: Review, sale: Sale | None) -> None:
        """A person accepted (with its sale) or dismissed a review that held an order."""
        if review.order_id is None:
            return
        order = await self.ledger.read(self.store.get_order, review.order_id)
        if order is None or order.status != OrderStatus.PENDING_REVIEW:
            return
        if sale is not None:
            await self._move(order, OrderSignal.SALE_RECORDED, sale_id=sale.id,
                             refund=order.paid - sale.amount)
        else:
            await self._move(order, OrderSignal.REVIEW_DISMISSED, refund=order.paid,
                             reason=f"no sale: {review.reason}")

    async def _follow(self, order_id: str, signal: OrderSignal, pump: PumpController,
                      sale: Sale | None = None) -> None:
        order = await self.ledger.read(self.store.get_order, order_id)
        if order is None or order.status not in OPEN_ORDER_STATUSES:
            return
        if signal in (OrderSignal.FLOW_STARTED, OrderSignal.NEEDS_REVIEW):
            self._disarm(order_id)
        try:
            if sale is not None:
                await self._move(order, signal, sale_id=sale.id, refund=order.paid - sale.amount)
            elif signal in (OrderSignal.FLOW_STARTED, OrderSignal.NEEDS_REVIEW):
                await self._move(order, signal,
                                 reason="fuel to be settled by a person" if signal is
                                 OrderSignal.NEEDS_REVIEW else None)
            else:
                await self._move(order, signal, refund=order.paid,
                                 reason="nothing dispensed" if signal is OrderSignal.ENDED_EMPTY
                                 else "authorization ended")
        except StationError as exc:
            log.error("app order %s: %s", order_id, exc)
        if signal in (OrderSignal.SALE_RECORDED, OrderSignal.ENDED_EMPTY, OrderSignal.CANCEL,
                      OrderSignal.NEEDS_REVIEW):
            self._release(pump, order_id)

    def _arm(self, order: Order, at: datetime) -> None:
        delay = max(0.0, (at - self._clock()).total_seconds())
        loop = asyncio.get_running_loop()
        self._disarm(order.order_id)
        self._timers[order.order_id] = loop.call_later(
            delay, lambda: self._spawn(self._expire(order.order_id)))

    def _disarm(self, order_id: str) -> None:
        timer = self._timers.pop(order_id, None)
        if timer is not None:
            timer.cancel()

    async def _expire(self, order_id: str) -> None:
        self._timers.pop(order_id, None)
        order = await self.ledger.read(self.store.get_order, order_id)
        if order is None or order.status != OrderStatus.AUTHORIZED:
            return
        try:
            await self._take_back(order, OrderSignal.LIFT_TIMEOUT, AuthorizationSignal.EXPIRE,
                                  "nozzle not lifted in time")
        except OrderRefused:
            log.info("app order %s: fuelling started as it expired; it completes normally",
                     order_id)

    async def _take_back(self, order: Order, signal: OrderSignal,
                         auth_signal: AuthorizationSignal, reason: str) -> None:
        pump, _ = self.forecourt.nozzle(order.nozzle)
        self._disarm(order.order_id)
        if pump.auth is not None and pump.auth.order_id == order.order_id:
            try:
                # Observers hear about the authorization's end; the order moves here.
                observers, pump.observers = pump.observers, [o for o in pump.observers
                                                             if o is not self]
                try:
                    await pump.call(lambda: pump.cancel_authorization(auth_signal, reason))
                finally:
                    pump.observers = observers
            except StationError as exc:
                raise OrderRefused("too_late", exc.message) from None
        await self._move(order, signal, reason=reason, refund=order.paid)
        self._release(pump, order.order_id)

    def _release(self, pump: PumpController, order_id: str) -> None:
        if pump.reserved_by == order_id:
            pump.reserved_by = None

    async def _move(self, order: Order, signal: OrderSignal, **changes: Any) -> Order:
        status = order_next(OrderStatus(order.status), signal)
        updated: Order = await self.ledger.write(self.store.update_order, order.order_id,
                                                 status=status, **changes)
        await self.ledger.publish_new()
        log.info("app order %s: %s -> %s", order.order_id, order.status, status)
        return updated

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        if self._group is None:
            self._pending.append(coro)
        else:
            self._group.create_task(self._guarded(coro), name="order-follow")

    @staticmethod
    async def _guarded(coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except Exception:  # one order's follow-up failing must not end the others'
            log.exception("app order follow-up failed")

