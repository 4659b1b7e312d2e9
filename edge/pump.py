"""One dispenser as the controller sees it: its fuelling point state, authorizations and sales.

The pump's own figures are the truth. This class turns what the pump says (DC1 status, DC2
volume and amount, DC3 nozzle, DC101 totals) into durable sales, and the station's requests
(authorize, stop) into DART commands. It never re-authorizes or replays a command by itself.
The mechanics of talking to the pump (waiting for replies, the job queue) are in
``edge.pump_link``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from domain.errors import (
    InvalidPreset,
    NozzleBusy,
    NozzleReserved,
    PumpDidNotConfirm,
    PumpNotReady,
    PumpOffline,
    StationError,
    StorageUnavailable,
)
from domain.model import Authorization, NewSale, Preset, Sale, TotalsReading
from domain.states import (
    AuthorizationSignal,
    AuthorizationState,
    FuellingPoint,
    InvalidTransition,
    PumpSignal,
    authorization_next,
    fuelling_point_next,
)
from domain.units import UnitError, from_raw, to_raw
from drivers.dart import (
    CD1,
    CD2,
    CD3,
    CD4,
    DC1,
    DC2,
    DartCommandError,
    PumpCommand,
    PumpStatus,
)
from drivers.dart.transactions import Command
from edge.checks import check_sale
from edge.config import Controller, Pump
from edge.ledger import Ledger
from edge.pump_link import Line, PumpLink
from edge.recovery import program_prices, reconcile_totals
from edge.store import StoreUnavailable
from edge.views import pump_view

log = logging.getLogger(__name__)

#: How long the pump may take to show a command's effect (DC1 after AUTHORIZE, RESET).
CONFIRM_TIMEOUT = 3.0
#: Between two attempts to record a sale while the store refuses writes.
SETTLE_RETRY = 2.0
#: Before trying a start-up again that a pump or a busy line did not answer (plus jitter).
STARTUP_RETRY = 1.0

_ENDED = (PumpStatus.FILLING_COMPLETED, PumpStatus.MAX_REACHED)


class PumpObserver(Protocol):
    """Told of authorization changes and new sales (the app orders follow their pumps so)."""

    def authorization_changed(self, pump: PumpController, auth: Authorization) -> None: ...

    def sale_recorded(self, pump: PumpController, sale: Sale) -> None: ...


class PriceBook(Protocol):
    """Current prices by grade code and the price set they come from."""

    price_set_id: str | None

    def price(self, grade: str) -> Decimal: ...


class PumpController(PumpLink):
    def __init__(self, settings: Pump, line: Line, ledger: Ledger, prices: PriceBook, *,
                 clock: Callable[[], datetime], on_change: Callable[[PumpLink], None],
                 policy: Controller | None = None) -> None:
        super().__init__(settings, line, clock=clock, on_change=on_change)
        self.policy = policy or Controller()
        self.ledger = ledger
        self.prices = prices
        self.state = FuellingPoint.OFFLINE
        self.ready = False  # start-up (recovery and prices) done since the pump came online
        self.prices_ok = False
        self.auth: Authorization | None = None
        self.fill_started_at: datetime | None = None
        self.recovered_fill = False
        # The logical nozzle of the filling being settled, fixed when it ended: the next
        # customer may lift another nozzle (and the pump report it) before the sale is read.
        self.fill_logical: int | None = None
        self.reserved_by: str | None = None  # an app order holding the pump (cloud link)
        self.price_set_id: str | None = None  # the price set the pump was last programmed with
        self.observers: list[PumpObserver] = []
        self._prices_pending = False
        self._startup_pending = False

    # ----------------------------------------------------------------- what the pump says

    def line_online(self) -> None:
        self.online = True
        self._signal(PumpSignal.ONLINE)
        self._schedule_startup()

    def line_offline(self) -> None:
        self.online = False
        self.ready = False
        self._signal(PumpSignal.OFFLINE)
        self._fail_waiters()

    def pump_restarted(self) -> None:
        # TX# 0: the pump was power-cycled and lost its prices; read it again from scratch.
        log.warning("pump %d restarted (power cycle)", self.number)
        self.ready = False
        self.prices_ok = False
        # Whatever it was doing ended with the power; start-up recovers any filling from the
        # pump's totals and last filling.
        self._signal(PumpSignal.NOT_PROGRAMMED)
        self._schedule_startup()

    def _on_nozzle(self, out: int | None) -> None:
        self._signal(PumpSignal.NOZZLE_OUT if out else PumpSignal.NOZZLE_IN)
        if out and self.ready:
            self._maybe_auto_authorize(out)

    def _on_alarm(self, code: int) -> None:
        self._submit(lambda: self._report_alarm(code))

    def _on_status(self, status: PumpStatus, previous: PumpStatus | None) -> None:
        if status is PumpStatus.FILLING and previous is not PumpStatus.FILLING:
            self.fill_started_at = self.fill_started_at or self._clock()
        if not self.ready:
            return  # start-up reads the pump itself and decides what the state means
        if status is PumpStatus.NOT_PROGRAMMED:
            self.prices_ok = False
            self._signal(PumpSignal.NOT_PROGRAMMED)
            self._schedule_startup()
        elif status is PumpStatus.RESET:
            self._signal(PumpSignal.READY)
        elif status is PumpStatus.AUTHORIZED:
            self._signal(PumpSignal.AUTHORIZED)
        elif status is PumpStatus.FILLING:
            self._signal(PumpSignal.FILLING)
            if self.auth and self.auth.state != AuthorizationState.FUELLING:
                self._submit(self._mark_fuelling)
        elif status in _ENDED and self.state is not FuellingPoint.COMPLETING:
            # Only a change from authorized/filling ends a filling; a repeated "completed"
            # (the pump's idle state after a sale) is just the pump being ready. A pump
            # already completing is being settled.
            if previous in (PumpStatus.FILLING, PumpStatus.AUTHORIZED) or self.state in (
                    FuellingPoint.FUELLING, FuellingPoint.AUTHORIZED):
                self._signal(PumpSignal.FILLING_ENDED)
                # An authorized filling can only be on its nozzle (CD2 allowed no other).
                self.fill_logical = (self._logical_of(self.auth) if self.auth else None
                                     ) or self.selected
                self._submit(self._settle)
            else:
                self._signal(PumpSignal.READY)
        elif status in (PumpStatus.SWITCHED_OFF, PumpStatus.SUSPENDED):
            self._signal(PumpSignal.SWITCHED_OFF)

    def _signal(self, signal: PumpSignal) -> None:
        try:
            new = fuelling_point_next(self.state, signal)
        except InvalidTransition as exc:
            log.warning("pump %d: %s", self.number, exc)
            return
        if new is not self.state:
            log.debug("pump %d: %s -> %s (%s)", self.number, self.state, new, signal)
            self.state = new

    # ----------------------------------------------------------------- jobs

    def _schedule_startup(self) -> None:
        if not self._startup_pending:
            self._startup_pending = True
            self._submit(self._startup_or_retry)

    async def _startup_or_retry(self) -> None:
        """Start-up must finish before the pump may sell: when the pump (or a busy line) does
        not answer in time, try again a little later for as long as it is online."""
        try:
            await self._startup()
        except (DartCommandError, TimeoutError, StationError, StoreUnavailable) as exc:
            # StoreUnavailable: what start-up recovers must be stored before the pump sells.
            self._startup_pending = False
            if not self.online:
                return  # it starts again when the pump answers
            log.warning("pump %d: start-up not finished (%s); trying again", self.number, exc)
            delay = STARTUP_RETRY * (1 + random.random())
            asyncio.get_running_loop().call_later(delay, self._retry_startup)

    def _retry_startup(self) -> None:
        if self.online and not self.ready:
            self._schedule_startup()

    # ----------------------------------------------------------------- start-up and recovery

    async def _startup(self) -> None:
        self._startup_pending = False
        self.ready = False
        status = (await self._ask([CD1(PumpCommand.RETURN_STATUS)], DC1)).status
        active = [a for a in await self.ledger.read(self.ledger.store.active_authorizations)
                  if a.pump == self.number]
        if status in (PumpStatus.FILLING, PumpStatus.AUTHORIZED):
            # A filling (or an authorization) from before we (re)started: follow it to its end.
            self.auth = active[-1] if active else None
            self.recovered_fill = True
            self.fill_started_at = None
            self.ready = True
            self._signal(PumpSignal.AUTHORIZED if status is PumpStatus.AUTHORIZED
                         else PumpSignal.FILLING)
            log.info("pump %d: adopting a %s pump after start-up", self.number, status.name)
            return
        info = await self._ask([CD1(PumpCommand.RETURN_FILLING_INFO)], DC2)
        last_fill = (from_raw(info.volume, self._dv), from_raw(info.amount, self._da))
        for logical in sorted(self._by_logical):
            reading = await self._read_totals(logical)
            await reconcile_totals(self, reading, logical, last_fill, active)
        for auth in active:
            if self.auth is None or auth.id != self.auth.id:
                flowed = auth.state == AuthorizationState.FUELLING
                ended = AuthorizationSignal.ENDED_EMPTY if flowed else AuthorizationSignal.CANCEL
                await self._auth_signal(auth, ended,
                                        reason="the pump no longer holds it after a restart")
        self.auth = None
        await program_prices(self, status)
        self.ready = True
        current = self.status or status
        if current is PumpStatus.NOT_PROGRAMMED:
            self._signal(PumpSignal.NOT_PROGRAMMED)
        elif current in (PumpStatus.SWITCHED_OFF, PumpStatus.SUSPENDED):
            self._signal(PumpSignal.SWITCHED_OFF)
        else:
            if self.state is FuellingPoint.COMPLETING:
                self._signal(PumpSignal.SALE_SETTLED)
            self._signal(PumpSignal.READY)
            if self.nozzle_out:
                self._signal(PumpSignal.NOZZLE_OUT)
        log.info("pump %d ready (%s)", self.number, current.name)

    # ----------------------------------------------------------------- authorize and stop

    def check_can_authorize(self, logical: int, order_id: str | None = None) -> None:
        if not self.ledger.writable:
            raise StorageUnavailable(
                "sales cannot be recorded right now (" + (self.ledger.unavailable_reason or
                "storage error") + "); authorizations are refused until storage recovers")
        if not self.online:
            raise PumpOffline(f"pump {self.number} is offline")
        if not self.ready or not self.prices_ok:
            raise PumpNotReady(f"pump {self.number} is not ready (prices not confirmed)")
        if self.auth is not None or self.state not in (FuellingPoint.IDLE, FuellingPoint.CALLING):
            raise NozzleBusy(f"pump {self.number} is {self.state.value}")
        if self.nozzle_out not in (None, logical):
            raise NozzleBusy(f"another nozzle of pump {self.number} is in use")
        if self.reserved_by is not None and self.reserved_by != order_id:
            raise NozzleReserved(f"pump {self.number} is reserved for app order {self.reserved_by}")

    async def authorize(self, logical: int, preset: Preset | None, *, source: str,
                        user: str | None, order_id: str | None = None) -> Authorization:
        raw_preset: Command | None = None
        if preset is not None:
            try:
                if preset.kind == "amount":
                    raw_preset = CD4(to_raw(preset.value, self._da))
                else:
                    raw_preset = CD3(to_raw(preset.value, self._dv))
            except UnitError as exc:
                raise InvalidPreset(f"preset {preset.kind} {preset.value}: {exc}") from None
        self.check_can_authorize(logical, order_id)
        nozzle = self._by_logical[logical]
        try:
            auth = await self.ledger.write(
                self.ledger.store.create_authorization, pump=self.number, nozzle=nozzle.number,
                preset=preset, source=source, user=user, order_id=order_id)
        except StoreUnavailable as exc:
            raise StorageUnavailable(f"cannot record the authorization: {exc}") from None
        self.auth = auth
        try:
            if self.status in _ENDED:
                await self.line.command(self.address, [CD1(PumpCommand.RESET)])
                await self._wait_status((PumpStatus.RESET,), CONFIRM_TIMEOUT)
            commands: list[Command] = [CD2((logical,))]
            if raw_preset is not None:
                commands.append(raw_preset)
            commands.append(CD1(PumpCommand.AUTHORIZE))
            self.volume = self.amount = Decimal(0)
            self.fill_started_at = None
            self.recovered_fill = False
            self.selected = logical
            await self.line.command(self.address, commands)
            await self._wait_status((PumpStatus.AUTHORIZED, PumpStatus.FILLING), CONFIRM_TIMEOUT)
        except (DartCommandError, TimeoutError, PumpOffline) as exc:
            self.auth = None
            await self._auth_signal(auth, AuthorizationSignal.REFUSED,
                                    reason=str(exc) or "no confirmation in time")
            raise PumpDidNotConfirm(
                f"pump {self.number} did not confirm the authorization") from exc
        if self.auth is not None and self.auth.state == AuthorizationState.REQUESTED:
            self.auth = await self._auth_signal(self.auth, AuthorizationSignal.CONFIRMED)
        log.info("pump %d nozzle %d authorized (%s, %s)", self.number, nozzle.number, source,
                 f"{preset.kind} {preset.value}" if preset else "full")
        return self.auth or auth

    def _maybe_auto_authorize(self, logical: int) -> None:
        if (self.settings.authorize != "auto" or self.reserved_by is not None
                or self.auth is not None or self.state is not FuellingPoint.CALLING):
            return

        async def job() -> None:
            if self.nozzle_out != logical or self.auth is not None:
                return  # hung up again, or authorized meanwhile
            await self.authorize(logical, None, source="auto", user=None)

        self._submit(job)

    async def stop(self) -> None:
        if not self.online:
            raise PumpOffline(f"pump {self.number} is offline")
        await self.line.command(self.address, [CD1(PumpCommand.STOP)])
        log.warning("pump %d: emergency stop sent", self.number)

    async def _mark_fuelling(self) -> None:
        if self.auth and self.auth.state in (AuthorizationState.REQUESTED,
                                             AuthorizationState.AUTHORIZED):
            self.auth = await self._auth_signal(self.auth, AuthorizationSignal.FLOW_STARTED)

    async def _auth_signal(self, auth: Authorization, signal: AuthorizationSignal, *,
                           reason: str | None = None) -> Authorization:
        """Move an authorization along its table (domain/states.py) and record it."""
        new = authorization_next(AuthorizationState(auth.state), signal)
        try:
            changed = await self.ledger.write(self.ledger.store.set_authorization_state, auth.id,
                                              new, reason=reason)
        except StoreUnavailable as exc:
            # Fuel may be flowing: the pump is followed on regardless, and the stored record
            # catches up (the sale marks it completed; a start-up closes one left open).
            log.warning("pump %d: authorization %s is %s, not recorded yet (%s)", self.number,
                        auth.id, new, exc)
            changed = replace(auth, state=new, reason=reason)
        for observer in self.observers:
            observer.authorization_changed(self, changed)
        return changed

    def _told_sale(self, sale: Sale) -> None:
        for observer in self.observers:
            observer.sale_recorded(self, sale)

    async def cancel_authorization(self, signal: AuthorizationSignal, reason: str) -> None:
        """Take back an authorization before fuel flows (order cancelled or expired): RESET."""
        auth = self.auth
        if auth is None:
            return
        if self.state not in (FuellingPoint.AUTHORIZED, FuellingPoint.IDLE,
                              FuellingPoint.CALLING) or self.status is PumpStatus.FILLING:
            raise NozzleBusy(f"pump {self.number} is {self.state.value}: too late to cancel")
        await self.line.command(self.address, [CD1(PumpCommand.RESET)])
        await self._wait_status((PumpStatus.RESET,), CONFIRM_TIMEOUT)
        self.auth = None
        await self._auth_signal(auth, signal, reason=reason)
        self._signal(PumpSignal.READY)
        log.info("pump %d: authorization %s taken back (%s)", self.number, auth.id, reason)

    def prices_changed(self) -> None:
        """A new price set is current: program it now, or right after the sale in progress."""
        if self.busy:
            self._prices_pending = True
        else:
            self._schedule_startup()

    @property
    def busy(self) -> bool:
        return self.auth is not None or self.state in (
            FuellingPoint.AUTHORIZED, FuellingPoint.FUELLING, FuellingPoint.COMPLETING)

    async def _report_alarm(self, code: int) -> None:
        log.warning("pump %d alarm code %d (docs/runbook.md, pump alarm codes)", self.number, code)
        await self.ledger.append_event("pump.alarm", {"pump": self.number, "code": code})

    # ----------------------------------------------------------------- settling a sale

    async def _settle(self) -> None:
        """The pump finished a filling: read its final figures and totals, record the sale."""
        if self.state is not FuellingPoint.COMPLETING:
            return
        final = await self._ask([CD1(PumpCommand.RETURN_FILLING_INFO)], DC2)
        volume, amount = from_raw(final.volume, self._dv), from_raw(final.amount, self._da)
        logical = (self.fill_logical or self.selected
                   or (self._logical_of(self.auth) if self.auth else None))
        if logical is None or logical not in self._by_logical:
            logical = min(self._by_logical)
        nozzle = self._by_logical[logical]
        if volume == 0:
            if self.auth is not None:
                await self._auth_signal(self.auth, AuthorizationSignal.ENDED_EMPTY,
                                        reason="no fuel dispensed")
            self._finish()
            return
        after = await self._read_totals(logical)
        before = await self.ledger.read(self.ledger.store.last_totals, self.number, nozzle.number)
        price = self.pump_price or self.prices.price(nozzle.grade)
        sale = self._new_sale(logical=logical, volume=volume, amount=amount, price=price,
                              before=before, after=after, recovered=self.recovered_fill)
        while True:
            try:
                recorded, created = await self.ledger.record_sale(sale)
                break
            except StoreUnavailable:
                # The pump keeps its figures until the next RESET, which cannot come while
                # authorizations are refused; keep trying until the store takes the sale.
                await asyncio.sleep(SETTLE_RETRY)
        log.info("pump %d sale %s: %s L %s at %s", self.number, recorded.id, recorded.volume,
                 recorded.amount, recorded.price)
        for item in sale.discrepancies if created else ():
            log.warning("pump %d sale %s: discrepancy %s: %s", self.number, recorded.id,
                        item.get("kind"), item.get("message", ""))
        if created:
            self._told_sale(recorded)
        self._finish()

    def _finish(self) -> None:
        self.auth = None
        self.recovered_fill = False
        self.fill_logical = None
        self.fill_started_at = None
        self._signal(PumpSignal.SALE_SETTLED)
        if not self.prices_ok or self._prices_pending:
            # New prices waited for this sale, or a filling adopted at start-up came before the
            # prices could be programmed: program them now.
            self._prices_pending = False
            self._schedule_startup()

    def _logical_of(self, auth: Authorization) -> int | None:
        for logical, nozzle in self._by_logical.items():
            if nozzle.number == auth.nozzle:
                return logical
        return None

    def _new_sale(self, *, logical: int, volume: Decimal, amount: Decimal, price: Decimal,
                  before: TotalsReading | None, after: TotalsReading, recovered: bool,
                  extra: Sequence[dict[str, Any]] = ()) -> NewSale:
        nozzle = self._by_logical[logical]
        discrepancies = list(extra)
        discrepancies.extend(check_sale(
            pump=self.number, nozzle=nozzle.number, volume=volume, amount=amount, price=price,
            before=before, after=after, preset=self.auth.preset if self.auth else None,
            decimals=self.settings.decimals,
            tolerance_steps=self.policy.sale_check_tolerance_steps))
        if self.auth is None and self.settings.authorize == "attendant":
            discrepancies.append({"kind": "no_authorization", "pump": self.number,
                                  "nozzle": nozzle.number,
                                  "message": "fuel dispensed without a recorded authorization"})
        return NewSale(
            pump=self.number, nozzle=nozzle.number, logical=logical, grade=nozzle.grade,
            price=price, volume=volume, amount=amount,
            price_set_id=self.price_set_id or self.prices.price_set_id,
            started_at=self.fill_started_at, ended_at=self._clock(),
            authorization_id=self.auth.id if self.auth else None,
            order_id=self.auth.order_id if self.auth else None, recovered=recovered,
            totals_before=before, totals_after=after, discrepancies=tuple(discrepancies))

    # ----------------------------------------------------------------- what the API shows

    def view(self) -> dict[str, Any]:
        return pump_view(self)
