"""One dispenser as the station sees it: its state, authorizations, sales and alarms.

The controller owns a protocol-neutral fuelling point (``domain.fuelling``) by composition and
never sees a protocol word. The pump's own figures are the truth: what it reports becomes
durable sales (``edge.settle``), what the station asks (authorize, stop, cancel, prices) becomes
fuelling point operations, which return once the pump confirmed. It never re-authorizes or
replays a command by itself.

Every state change goes through the table in ``domain.states``; what the pump says is folded
into that table's signals here. Work that talks to the pump runs as a job, one at a time per
pump; an emergency stop does not queue behind them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from domain.accounts import AccountRefused, AccountUse
from domain.equipment import PumpConfig
from domain.errors import (
    InvalidPreset,
    NozzleBusy,
    NozzleReserved,
    PumpDidNotConfirm,
    PumpNotReady,
    PumpOffline,
    PumpOutOfService,
    PumpRefused,
    PumpStopped,
    StationError,
    StorageUnavailable,
)
from domain.fuelling import (
    Capabilities,
    FillingEnded,
    FinishedSale,
    FuellingPoint,
    FuellingPointError,
    Identity,
    InvalidValue,
    NotSupported,
    NozzleDown,
    NozzleUp,
    PointAlarm,
    PointAlarmCleared,
    PointEvent,
    PointOffline,
    PointOnline,
    PointRefused,
    PointRestarted,
    PointState,
    PumpSale,
    RunningFigures,
    StateChanged,
)
from domain.model import Authorization, Preset, Review, Sale, TotalsReading
from domain.states import (
    AUTHORIZABLE,
    AuthorizationSignal,
    AuthorizationState,
    PumpSignal,
    authorization_next,
    fuelling_point_next,
)
from domain.states import FuellingPoint as FP
from edge.config import Controller
from edge.ledger import Ledger
from edge.settle import record_standalone, settle
from edge.startup import start_up
from edge.store import StoreUnavailable
from edge.store.reviews import OutOfService
from edge.views import pump_view

log = logging.getLogger(__name__)

T = TypeVar("T")

_POINT_SIGNAL = {
    PointState.IDLE: PumpSignal.POINT_IDLE,
    PointState.CALLING: PumpSignal.POINT_CALLING,
    PointState.AUTHORIZED: PumpSignal.POINT_AUTHORIZED,
    PointState.STARTED: PumpSignal.POINT_AUTHORIZED,
    PointState.FUELLING: PumpSignal.POINT_FUELLING,
    PointState.CLOSED: PumpSignal.POINT_HALTED,
    PointState.STOPPED: PumpSignal.POINT_HALTED,
    PointState.SUSPENDED: PumpSignal.POINT_HALTED,
    PointState.INOPERATIVE: PumpSignal.NOT_READY,
}


class PumpObserver(Protocol):
    """Told of authorization changes and new sales (the app orders follow their pumps so)."""

    def authorization_changed(self, pump: PumpController, auth: Authorization) -> None: ...

    def sale_recorded(self, pump: PumpController, sale: Sale) -> None: ...

    def review_opened(self, pump: PumpController, review: Review) -> None: ...


class GatePass(Protocol):
    """An authorization the gate let through: the preset it goes with, and what the gate is
    told once the pump authorized (bind) or did not (release)."""

    preset: Preset | None

    async def bind(self, auth: Authorization) -> None: ...

    async def release(self) -> None: ...


class AuthorizeGate(Protocol):
    """Asked before every authorization when set (the station's books, docs/books.md): a
    nozzle paused for a delivery, a credit account's limits. Refuses with a StationError."""

    async def admit(self, pump: PumpController, logical: int, preset: Preset | None, *,
                    source: str, user: str | None, account: AccountUse | None) -> GatePass: ...


class NonSaleRecorder(Protocol):
    """Records a fill that is no sale (a self-check, own use, a transfer: docs/books.md)
    instead of a sale, when it claims the fill's authorization."""

    def claims(self, auth: Authorization) -> bool: ...

    async def record(self, pump: PumpController, *, logical: int, filling: FinishedSale,
                     before: TotalsReading | None, after: TotalsReading) -> None: ...


class PriceBook(Protocol):
    """Current prices by grade code and the price set they come from."""

    price_set_id: str | None

    def price(self, grade: str) -> Decimal: ...


class PumpController:
    def __init__(self, settings: PumpConfig, point: FuellingPoint, ledger: Ledger,
                 prices: PriceBook, *, clock: Callable[[], datetime],
                 on_change: Callable[[PumpController], None],
                 policy: Controller | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.number = settings.number
        self.point = point
        self.ledger = ledger
        self.prices = prices
        self.policy = policy or Controller()
        self._clock = clock
        self.monotonic = monotonic  # times fillings (the wall clock may step)
        self._on_change = on_change
        self.by_logical = {n.logical: n for n in settings.nozzles}
        self.state = FP.OFFLINE
        self.point_state: PointState | None = None
        self.capabilities: Capabilities | None = None
        self.identity: Identity | None = None
        self.auth: Authorization | None = None
        self.reserved_by: str | None = None  # an app order holding the pump (cloud link)
        self.price_set_id: str | None = None  # the price set the pump was last programmed with
        self.programmed: dict[int, Decimal] = {}  # the prices it was sent, by logical nozzle
        self.nozzle_out: int | None = None
        self.selected: int | None = None  # the nozzle of the current or last filling
        self.volume = Decimal(0)  # the current or last filling, as the pump shows it
        self.amount = Decimal(0)
        self.fill_started_at: datetime | None = None  # wall clock: what the sale shows
        # The loop's monotonic clock at the same moment: how long fuel really flowed, whatever
        # the wall clock does meanwhile (an NTP step must not make a filling impossible).
        self.fill_started_mono: float | None = None
        self.fill_logical: int | None = None  # fixed when the filling ended
        self.recovered_fill = False  # a filling adopted at start-up
        self.alarms: dict[str, dict[str, Any]] = {}  # active alarms by kind
        self.blocked: dict[str, str] = {}  # reasons sales are refused until the cause goes
        self.out_of_service: OutOfService | None = None
        self.latched: dict[str, Any] | None = None  # an emergency stop not yet reset
        self.observers: list[PumpObserver] = []
        self.gate: AuthorizeGate | None = None  # the books' check before authorizing
        self.nonsale: NonSaleRecorder | None = None  # the books' recorder of non-sale fills
        self._jobs: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()
        self._group: asyncio.TaskGroup | None = None
        self._startup_pending = False
        self._settle_pending = False
        self._prices_pending = False
        self._expiry: asyncio.TimerHandle | None = None

    # ----------------------------------------------------------------- facts

    @property
    def online(self) -> bool:
        return self.state is not FP.OFFLINE

    @property
    def ready(self) -> bool:
        return self.state not in (FP.OFFLINE, FP.NOT_PROGRAMMED)

    @property
    def busy(self) -> bool:
        return self.auth is not None or self.state in (FP.AUTHORIZED, FP.FUELLING, FP.COMPLETING)

    def nozzle(self, logical: int) -> Any:
        return self.by_logical[logical]

    def view(self) -> dict[str, Any]:
        return pump_view(self)

    def now(self) -> datetime:
        return self._clock()

    # ----------------------------------------------------------------- the table

    def signal(self, signal: PumpSignal) -> None:
        """Move along the table (``domain.states``); a signal it does not allow raises."""
        new = fuelling_point_next(self.state, signal)
        if new is not self.state:
            log.debug("pump %d: %s -> %s (%s)", self.number, self.state, new, signal)
            self.state = new
            self._on_change(self)

    def follow_point(self, *, started: bool = False) -> None:
        """Apply what the pump says it is doing now (after start-up or a settled sale)."""
        if self.point_state is not None and self.point_state is not PointState.INOPERATIVE:
            self.signal(_POINT_SIGNAL[self.point_state])
        if started and self.state is FP.CALLING and self.nozzle_out is not None:
            # A customer who lifted while the pump was starting up is waiting: an auto pump
            # authorizes that lift now. Not after a settled sale: a nozzle still up then is
            # the customer who just filled, not a new lift.
            self._maybe_auto_authorize(self.nozzle_out)

    # ----------------------------------------------------------------- what the pump says

    def handle(self, event: PointEvent) -> None:
        """An event of this pump's fuelling point (from the line's dispatch)."""
        if isinstance(event, RunningFigures):
            self.volume, self.amount = event.volume, event.amount
            if event.logical is not None:
                self.selected = event.logical
        elif isinstance(event, StateChanged):
            self._state_changed(event.state)
        elif isinstance(event, NozzleUp):
            self._nozzle_up(event)
        elif isinstance(event, NozzleDown):
            self.nozzle_out = None
        elif isinstance(event, FillingEnded):
            self.fill_logical = event.logical or self.selected or (
                self._logical_of(self.auth) if self.auth else None)
            self.signal(PumpSignal.FILLING_ENDED)
            self._schedule_settle()
        elif isinstance(event, PointOnline):
            self._came_online(event)
        elif isinstance(event, PointOffline):
            log.error("pump %d offline (%s)", self.number, event.reason or "no answer")
            self.point_state = None
            self.nozzle_out = None
            self._disarm()
            self.signal(PumpSignal.OFFLINE)
        elif isinstance(event, PointRestarted):
            log.warning("pump %d restarted (power cycle): reading it again", self.number)
            self.programmed.clear()
            self.signal(PumpSignal.RESTARTED)
            self._schedule_startup()
        elif isinstance(event, PointAlarm):
            self._submit(lambda: self.raise_alarm(event.kind.value, code=event.code,
                                                  text=event.text))
        elif isinstance(event, PointAlarmCleared):
            self._submit(lambda: self.clear_alarm(event.kind.value))
        elif isinstance(event, PumpSale):
            self._submit(lambda: self._standalone_sale(event))
        self._on_change(self)

    def _came_online(self, event: PointOnline) -> None:
        self.capabilities = event.capabilities
        self.identity = event.identity
        self.point_state = None
        log.info("pump %d online (%s %s); prices checked by %s", self.number,
                 event.identity.protocol, event.identity.address,
                 ", ".join(event.capabilities.checks) or "read-back")
        self.signal(PumpSignal.ONLINE)
        self._schedule_startup()

    def _state_changed(self, state: PointState) -> None:
        previous, self.point_state = self.point_state, state
        if state is PointState.FUELLING and previous is not PointState.FUELLING:
            self.fill_started_at = self.fill_started_at or self._clock()
            if self.fill_started_mono is None:
                self.fill_started_mono = self.monotonic()
            self._disarm()
            if self.auth is not None and self.auth.state != AuthorizationState.FUELLING:
                self._submit(self._mark_fuelling)
        if state is PointState.INOPERATIVE:
            if self.ready:
                self.programmed.clear()
                self.signal(PumpSignal.NOT_READY)
                self._schedule_startup()
            return
        if (self.state is FP.AUTHORIZED and state in (PointState.IDLE, PointState.CALLING)
                and self.auth is not None):
            # The pump withdrew the authorization before any fuel (a stop before the lift, a
            # reset, its own timeout): release it, or the pump stays unsellable.
            self._submit(self._withdrawn)
        if self.state is FP.FUELLING and state in (PointState.IDLE, PointState.CALLING):
            self.fill_logical = self.fill_logical or self.selected
            self._schedule_settle()
        self.signal(_POINT_SIGNAL[state])
        if self.state is FP.CALLING and self.nozzle_out is not None:
            self._maybe_auto_authorize(self.nozzle_out)

    def _nozzle_up(self, event: NozzleUp) -> None:
        self.nozzle_out = event.logical
        self.selected = event.logical
        caps = self.capabilities
        expected = self.programmed.get(event.logical)
        if (caps is not None and not caps.price_readback and event.price is not None
                and expected is not None and event.price != expected):
            # The pump could not read its prices back: the price it shows at the lift is the
            # check, and a wrong one stops the pump before the customer pays a wrong price.
            self.urgent(self._wrong_price(event.logical, expected, event.price))
            return
        if "price" in self.blocked and event.price == expected:
            # The price shown at this lift is right again: the check the pump allows passed.
            del self.blocked["price"]
            self.urgent(self.clear_alarm("price_mismatch"))
        if self.state is FP.CALLING:
            self._maybe_auto_authorize(event.logical)

    async def _wrong_price(self, logical: int, expected: Decimal, shown: Decimal) -> None:
        self.blocked["price"] = (f"nozzle {self.by_logical[logical].number} shows {shown}, "
                                 f"the station set {expected}")
        try:
            await self.point.stop()
        except FuellingPointError as exc:
            log.error("pump %d: cannot stop after a wrong price: %s", self.number, exc)
        await self.raise_alarm("price_mismatch", nozzle=self.by_logical[logical].number,
                               expected=str(expected), shown=str(shown),
                               message="the pump shows another price than the station set; "
                                       "it was stopped and is programmed again")
        self.programmed.clear()
        if self.ready and not self.busy:
            self.signal(PumpSignal.NOT_READY)
        self._prices_pending = True
        if not self.busy:
            self._schedule_startup()

    # ----------------------------------------------------------------- alarms and service

    async def raise_alarm(self, kind: str, **details: Any) -> None:
        """An alarm a person sees: a ``pump.alarm`` event (once per episode) and the view."""
        if kind in self.alarms:
            return
        self.alarms[kind] = {"kind": kind, **details, "since": self._clock().isoformat()}
        self._on_change(self)
        log.warning("pump %d alarm %s %s (docs/runbook.md, pump alarms)", self.number, kind,
                    details)
        try:
            await self.ledger.append_event("pump.alarm", {"pump": self.number, "kind": kind,
                                                          **details})
        except StoreUnavailable as exc:
            log.error("pump %d: alarm %s not recorded: %s", self.number, kind, exc)

    async def clear_alarm(self, kind: str) -> None:
        if self.alarms.pop(kind, None) is None:
            return
        self._on_change(self)
        log.info("pump %d: alarm %s cleared", self.number, kind)
        try:
            await self.ledger.append_event("pump.alarm_cleared", {"pump": self.number,
                                                                  "kind": kind})
        except StoreUnavailable as exc:
            log.error("pump %d: alarm %s clearing not recorded: %s", self.number, kind, exc)

    async def take_out_of_service(self, reason: str, **details: Any) -> None:
        """Until a person releases it (API or CLI): authorizations are refused."""
        try:
            found = await self.ledger.write(self.ledger.store.take_out_of_service, self.number,
                                            reason=reason, details=details)
            await self.ledger.publish_new()
        except StoreUnavailable as exc:
            log.error("pump %d: out of service (%s), not recorded yet: %s", self.number, reason,
                      exc)
            found = None
        self.out_of_service = found or self.out_of_service or OutOfService(
            self.number, self._clock(), reason, details)
        self.alarms["out_of_service"] = {"kind": "out_of_service", "reason": reason, **details}
        log.error("pump %d taken out of service: %s %s", self.number, reason, details)
        self._on_change(self)

    def service_restored(self) -> None:
        """The pump was released (by the API, or a CLI seen in the store)."""
        self.out_of_service = None
        self.alarms.pop("out_of_service", None)
        self._on_change(self)

    # ----------------------------------------------------------------- jobs

    def _submit(self, job: Callable[[], Awaitable[None]]) -> None:
        self._jobs.put_nowait(job)

    def urgent(self, coro: Coroutine[Any, Any, None]) -> None:
        """Work that must not wait behind the pump's jobs (a stop)."""
        if self._group is None:
            coro.close()
            raise RuntimeError(f"pump {self.number} is not running")
        self._group.create_task(coro, name=f"pump-{self.number}-urgent")

    async def run(self) -> None:
        """The pump's jobs, one at a time, for the daemon's life (its tasks in one group)."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            while True:
                job = await self._jobs.get()
                try:
                    await job()
                except StationError as exc:
                    log.warning("pump %d: %s", self.number, exc.message)
                except FuellingPointError as exc:
                    log.warning("pump %d: %s; done again when it answers", self.number, exc)
                except StoreUnavailable as exc:
                    log.error("pump %d: %s; the pump is still followed", self.number, exc)
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

    def _schedule_startup(self) -> None:
        if not self._startup_pending:
            self._startup_pending = True

            async def job() -> None:
                self._startup_pending = False
                await start_up(self)

            self._submit(job)

    def _schedule_settle(self) -> None:
        if not self._settle_pending:
            self._settle_pending = True

            async def job() -> None:
                try:
                    await settle(self)
                finally:
                    self._settle_pending = False

            self._submit(job)

    # ----------------------------------------------------------------- authorize and stop

    def check_can_authorize(self, logical: int, order_id: str | None = None) -> None:
        if not self.ledger.writable:
            raise StorageUnavailable(
                "sales cannot be recorded right now (" + (self.ledger.unavailable_reason or
                "storage error") + "); authorizations are refused until storage recovers")
        if not self.online:
            raise PumpOffline(f"pump {self.number} is offline")
        if self.latched is not None:
            raise PumpStopped(f"pump {self.number} was stopped from the station; an attendant "
                              "resets it first")
        if self.out_of_service is not None:
            raise PumpOutOfService(f"pump {self.number} is out of service "
                                   f"({self.out_of_service.reason}); a manager releases it")
        if self.blocked:
            raise PumpNotReady(f"pump {self.number} is blocked: "
                               + "; ".join(self.blocked.values()))
        if not self.ready:
            raise PumpNotReady(f"pump {self.number} is not ready (starting up, prices not "
                               "confirmed)")
        if self.auth is not None or self.state not in AUTHORIZABLE:
            raise NozzleBusy(f"pump {self.number} is {self.state.value}")
        if self.nozzle_out not in (None, logical):
            raise NozzleBusy(f"another nozzle of pump {self.number} is in use")
        if self.reserved_by is not None and self.reserved_by != order_id:
            raise NozzleReserved(f"pump {self.number} is reserved for app order {self.reserved_by}")
        if logical not in self.by_logical:
            raise NozzleBusy(f"pump {self.number} has no logical nozzle {logical}")

    async def authorize(self, logical: int, preset: Preset | None, *, source: str,
                        user: str | None, order_id: str | None = None,
                        account: AccountUse | None = None) -> Authorization:
        """Authorize through the gate, when one is set (a sale on a credit account needs it)."""
        if self.gate is None:
            if account is not None:
                raise AccountRefused("account_unavailable",
                                     "本站未启用挂账 (this station keeps no credit accounts)")
            return await self._authorize(logical, preset, source=source, user=user,
                                         order_id=order_id)
        self.check_can_authorize(logical, order_id)  # before the gate holds anything
        ticket = await self.gate.admit(self, logical, preset, source=source, user=user,
                                       account=account)
        try:
            auth = await self._authorize(logical, ticket.preset, source=source, user=user,
                                         order_id=order_id)
        except BaseException:
            await ticket.release()
            raise
        await ticket.bind(auth)
        return auth

    async def _authorize(self, logical: int, preset: Preset | None, *, source: str,
                         user: str | None, order_id: str | None = None) -> Authorization:
        caps = self.capabilities
        if preset is not None and caps is not None and preset.kind not in caps.presets:
            raise InvalidPreset(f"pump {self.number} takes no {preset.kind} preset")
        self.check_can_authorize(logical, order_id)
        nozzle = self.by_logical[logical]
        try:
            auth = await self.ledger.write(
                self.ledger.store.create_authorization, pump=self.number, nozzle=nozzle.number,
                preset=preset, source=source, user=user, order_id=order_id)
        except StoreUnavailable as exc:
            raise StorageUnavailable(f"cannot record the authorization: {exc}") from None
        self.auth = auth
        self.volume = self.amount = Decimal(0)
        self.fill_started_at = None
        self.fill_started_mono = None
        self.fill_logical = None
        self.recovered_fill = False
        self.selected = logical
        try:
            await self.point.authorize(frozenset({logical}), preset)
        except InvalidValue as exc:
            self.auth = None
            await self.auth_signal(auth, AuthorizationSignal.REFUSED, reason=exc.message)
            raise InvalidPreset(exc.message) from None
        except PointRefused as exc:
            # The pump answered no (a state it cannot leave yet, a full buffer, its own rule):
            # the caller can act on that, unlike a missing confirmation.
            self.auth = None
            await self.auth_signal(auth, AuthorizationSignal.REFUSED, reason=exc.message)
            raise PumpRefused(f"pump {self.number} refused the authorization: {exc.message}"
                              + (f" (code {exc.code})" if exc.code else "")) from exc
        except FuellingPointError as exc:
            self.auth = None
            await self.auth_signal(auth, AuthorizationSignal.REFUSED,
                                   reason=exc.message or "no confirmation in time")
            raise PumpDidNotConfirm(
                f"pump {self.number} did not confirm the authorization") from exc
        if self.auth is not None and self.auth.state == AuthorizationState.REQUESTED:
            self.auth = await self.auth_signal(self.auth, AuthorizationSignal.CONFIRMED)
        if self.auth is not None and self.auth.order_id is None:
            self._arm(self.auth)
        log.info("pump %d nozzle %d authorized (%s, %s)", self.number, nozzle.number, source,
                 f"{preset.kind} {preset.value}" if preset else "full")
        return self.auth or auth

    def _maybe_auto_authorize(self, logical: int) -> None:
        if (self.settings.authorize != "auto" or self.reserved_by is not None
                or self.latched is not None
                or self.auth is not None or not self.ready or self.out_of_service is not None
                or self.blocked):
            return

        async def job() -> None:
            if self.nozzle_out != logical or self.auth is not None or self.state is not FP.CALLING:
                return  # hung up again, or authorized meanwhile
            await self.authorize(logical, None, source="auto", user=None)

        self._submit(job)

    async def stop(self, user: str | None = None) -> None:
        """Emergency stop: sent at once (not queued behind jobs); a repeat is harmless.

        The pump is latched as stopped: it takes no authorization until a person resets it
        (``reset_stop``), whatever the pump itself shows after the stop."""
        first = self.latched is None
        if first:
            self.latched = {"by": user, "at": self._clock().isoformat()}
            self._on_change(self)
        if not self.online:
            raise PumpOffline(f"pump {self.number} is offline")
        try:
            await self.point.stop()
        except FuellingPointError as exc:
            raise PumpDidNotConfirm(f"pump {self.number} did not confirm the stop: "
                                    f"{exc.message}") from exc
        log.warning("pump %d: emergency stop sent", self.number)
        if first:
            await self.raise_alarm("station_stop", user=user,
                                   message="emergency stop from the station; an attendant "
                                           "resets the pump before it sells again")

    async def reset_stop(self, user: str | None = None) -> bool:
        """An attendant has looked: lift the emergency-stop latch, and open a pump that is
        closed or stopped at the pump (IFSF: a point a refused price left inoperative opens only
        this way). False when there was nothing to reset."""
        closed = self.point_state in (PointState.STOPPED, PointState.CLOSED,
                                      PointState.INOPERATIVE)
        if self.latched is None and not closed:
            return False
        if self.online and closed:
            try:
                await self.point.open()
            except FuellingPointError as exc:
                raise PumpDidNotConfirm(f"pump {self.number} did not reopen: {exc.message}"
                                        ) from exc
            if self.point_state is PointState.INOPERATIVE or not self.programmed:
                self._prices_pending = True
                if self.ready and not self.busy:
                    self.signal(PumpSignal.NOT_READY)
                self._schedule_startup()
        self.latched = None
        self._on_change(self)
        await self.clear_alarm("station_stop")
        log.warning("pump %d: reset by %s", self.number, user)
        return True

    async def suspend(self) -> None:
        if self.point_state is not PointState.FUELLING:
            raise NozzleBusy(f"pump {self.number} is not fuelling: nothing to suspend")
        await self._halt(self.point.suspend, "suspend")

    async def resume(self) -> None:
        if self.point_state is not PointState.SUSPENDED:
            raise NozzleBusy(f"pump {self.number} is not suspended: nothing to resume")
        await self._halt(self.point.resume, "resume")

    async def _halt(self, operation: Callable[[], Awaitable[None]], what: str) -> None:
        if not self.online:
            raise PumpOffline(f"pump {self.number} is offline")
        try:
            await operation()
        except NotSupported as exc:
            raise NozzleBusy(f"pump {self.number} cannot {what}: {exc.message}") from None
        except PointRefused as exc:
            raise NozzleBusy(f"pump {self.number} refused to {what}: {exc.message}") from None
        except FuellingPointError as exc:
            raise PumpDidNotConfirm(f"pump {self.number} did not confirm: {exc.message}"
                                    ) from exc

    async def cancel_authorization(self, signal: AuthorizationSignal, reason: str) -> None:
        """Take back an authorization before fuel flows (cancelled or expired)."""
        auth = self.auth
        if auth is None:
            return
        if self.state not in (FP.AUTHORIZED, FP.IDLE, FP.CALLING) or (
                self.point_state is PointState.FUELLING):
            raise NozzleBusy(f"pump {self.number} is {self.state.value}: too late to cancel")
        try:
            await self.point.cancel()
        except PointRefused as exc:
            raise NozzleBusy(f"pump {self.number}: {exc.message}") from None
        except FuellingPointError as exc:
            raise PumpDidNotConfirm(f"pump {self.number} did not confirm: {exc.message}"
                                    ) from exc
        self.auth = None
        self._disarm()
        await self.auth_signal(auth, signal, reason=reason)
        log.info("pump %d: authorization %s taken back (%s)", self.number, auth.id, reason)

    async def _withdrawn(self) -> None:
        auth = self.auth
        if auth is None or self.point_state not in (PointState.IDLE, PointState.CALLING):
            return
        if self.state is FP.COMPLETING or self._settle_pending:
            # The filling ended (its end may be told after the pump's idle state): its sale
            # settles the authorization, which was used, not withdrawn.
            return
        self.auth = None
        self._disarm()
        signal = (AuthorizationSignal.ENDED_EMPTY
                  if auth.state == AuthorizationState.FUELLING else AuthorizationSignal.CANCEL)
        await self.auth_signal(auth, signal, reason="withdrawn at the pump before any fuel "
                                                    "(stop, reset or the pump's own timeout)")
        log.info("pump %d: authorization %s withdrawn at the pump", self.number, auth.id)

    # Lift timeout: attendant and auto authorizations (app orders have their own, which
    # also moves the order).

    def _arm(self, auth: Authorization) -> None:
        self._disarm()
        delay = self.policy.lift_timeout.total_seconds()
        self._expiry = asyncio.get_running_loop().call_later(
            delay, lambda: self._submit(lambda: self._expire(auth.id)))

    def _disarm(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    async def _expire(self, auth_id: str) -> None:
        self._expiry = None
        if (self.auth is None or self.auth.id != auth_id
                or self.point_state not in (PointState.AUTHORIZED, PointState.IDLE,
                                            PointState.CALLING)):
            return  # used, ended, or the nozzle is up
        log.info("pump %d: authorization %s not used in %s: taken back", self.number, auth_id,
                 self.policy.lift_timeout)
        await self.cancel_authorization(AuthorizationSignal.EXPIRE, "nozzle not lifted in time")

    async def _mark_fuelling(self) -> None:
        if self.auth and self.auth.state in (AuthorizationState.REQUESTED,
                                             AuthorizationState.AUTHORIZED):
            self.auth = await self.auth_signal(self.auth, AuthorizationSignal.FLOW_STARTED)

    async def auth_signal(self, auth: Authorization, signal: AuthorizationSignal, *,
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

    def told_sale(self, sale: Sale) -> None:
        for observer in self.observers:
            observer.sale_recorded(self, sale)

    def prices_changed(self) -> None:
        """A new price set is current: program it now, or right after the sale in progress."""
        if self.busy or not self.online:
            self._prices_pending = True
        else:
            self._schedule_startup()

    def settled(self) -> None:
        """The sale of the filling is durable (or nothing was dispensed): next customer."""
        self.auth = None
        self.recovered_fill = False
        self.fill_logical = None
        self.fill_started_at = None
        self.fill_started_mono = None
        self._disarm()
        if self.state is FP.COMPLETING:
            self.signal(PumpSignal.SALE_SETTLED)
            self.follow_point()
        if self._prices_pending or not self.programmed:
            # New prices waited for this sale, or a filling adopted at start-up came before the
            # prices could be programmed: program them now.
            self._prices_pending = False
            if self.ready:
                self.signal(PumpSignal.NOT_READY)
            self._schedule_startup()

    async def _standalone_sale(self, event: PumpSale) -> None:
        await record_standalone(self, event.sale)

    def review_opened(self, review: Review) -> None:
        for observer in self.observers:
            observer.review_opened(self, review)

    def _logical_of(self, auth: Authorization) -> int | None:
        for logical, nozzle in self.by_logical.items():
            if nozzle.number == auth.nozzle:
                return logical
        return None
