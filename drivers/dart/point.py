"""A DART pump as a protocol-neutral fuelling point (``domain.fuelling``).

Everything DART stops here: DC1 statuses become ``PointState``s, DC3 nozzle bits become nozzle
up/down with the price the pump shows, DC2 becomes running figures, DC5 codes become
``AlarmKind``s, CD1..CD5/CD101 carry the operations. Each operation returns once the pump
confirmed it (a status change, or the reply asked for) or raises a ``FuellingPointError``.

When a pump comes online it is asked, with bounded waits, what it answers (PROTOCOLS.md, DART,
"Optional parts"): DC7 (its own decimals), DC9 (identity), DC103 (the price read-back, rev 2.11
only) and the totals' form; what it does not answer it is not asked to do again, and the
capabilities say so (a pump without the read-back gets the price check at the lift instead).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol, TypeVar

from domain.equipment import PumpConfig
from domain.fuelling import (
    AlarmKind,
    Capabilities,
    Decimals,
    FillingEnded,
    FinishedSale,
    Identity,
    InvalidValue,
    NotSupported,
    NozzleDown,
    NozzleUp,
    PointAlarm,
    PointEvent,
    PointOffline,
    PointOnline,
    PointRefused,
    PointRestarted,
    PointState,
    PointUnreachable,
    PriceMismatch,
    RunningFigures,
    StateChanged,
    Totals,
    TotalsScope,
)
from domain.model import Preset
from domain.units import MAX_RAW_3, UnitError, from_raw, to_raw

from .config import MAX_TOTALS_NOZZLE, DartPumpSettings
from .errors import DartCommandError
from .events import PumpOffline, PumpOnline, PumpReplied, PumpRestarted
from .transactions import (
    CD1,
    CD2,
    CD3,
    CD4,
    CD5,
    CD101,
    DC1,
    DC2,
    DC3,
    DC5,
    DC7,
    DC9,
    DC101,
    DC103,
    AlarmCode,
    Command,
    PumpCommand,
    PumpStatus,
    Reply,
    UnknownTransaction,
)

__all__ = ["CommandSender", "DartFuellingPoint", "dart_state"]

log = logging.getLogger("drivers.dart")

R = TypeVar("R", bound=Reply)

CONFIRM_TIMEOUT = 3.0
"""Seconds a pump may take to show a command's effect (DC1 after AUTHORIZE, RESET)."""
REPLY_TIMEOUT = 3.0
"""Seconds a reply to a "return ..." command may take (a poll round of a busy line included)."""
PROBE_TIMEOUT = 1.5
"""Seconds an optional transaction may go unanswered before the pump is deemed not to know it."""
PROGRAMMED_TIMEOUT = 5.0
"""Seconds a pump may take to leave "not programmed" once it has prices."""

_ENDED = (PumpStatus.FILLING_COMPLETED, PumpStatus.MAX_REACHED)
_FLOWING = (PumpStatus.FILLING, PumpStatus.SUSPENDED, PumpStatus.AUTHORIZED)

_ALARMS: Mapping[int, AlarmKind] = {
    AlarmCode.CPU_RESET: AlarmKind.CPU_RESET,
    AlarmCode.RAM_ERROR: AlarmKind.MEMORY,
    AlarmCode.PROM_CHECKSUM_ERROR: AlarmKind.MEMORY,
    AlarmCode.PULSER_ERROR: AlarmKind.PULSER,
    AlarmCode.PULSER_CURRENT_ERROR: AlarmKind.PULSER,
    AlarmCode.EMERGENCY_STOP: AlarmKind.EMERGENCY_STOP,
    AlarmCode.POWER_FAILURE: AlarmKind.POWER,
    AlarmCode.PRESSURE_LOST: AlarmKind.PRESSURE,
    AlarmCode.LOW_LEAK: AlarmKind.LEAK,
    AlarmCode.HIGH_LEAK: AlarmKind.LEAK,
    AlarmCode.HOSE_LEAK: AlarmKind.LEAK,
}


def dart_state(status: PumpStatus, nozzle_out: bool) -> PointState:
    """A DC1 status (and whether a nozzle is out) as a neutral fuelling point state."""
    if status is PumpStatus.NOT_PROGRAMMED:
        return PointState.INOPERATIVE
    if status is PumpStatus.AUTHORIZED:
        return PointState.STARTED if nozzle_out else PointState.AUTHORIZED
    if status is PumpStatus.FILLING:
        return PointState.FUELLING
    if status is PumpStatus.SWITCHED_OFF:
        return PointState.CLOSED
    if status is PumpStatus.SUSPENDED:
        return PointState.SUSPENDED
    # RESET, FILLING_COMPLETED, MAX_REACHED: ready for the next sale.
    return PointState.CALLING if nozzle_out else PointState.IDLE


class CommandSender(Protocol):
    """What a point needs of its line (``DartLine``): send one block, return once ACKed."""

    async def command(self, address: int, commands: Sequence[Command],
                      timeout: float = ...) -> None: ...  # noqa: ASYNC109 (the line's own)


@dataclass
class _Waiter:
    predicate: Callable[[Reply], bool]
    future: asyncio.Future[Reply]


@dataclass
class _Findings:
    """What the pump answered when it was first asked (remembered for the process's life)."""

    probed: bool = False
    decimals: Decimals | None = None  # DC7
    identity: int | None = None  # DC9
    readback: bool | None = None  # DC103 answered
    totals_length: int | None = None  # 16 (rev 2.11) or 6 bytes
    suspend: bool | None = None  # status 8 seen after SUSPEND
    grades: tuple[int, ...] = field(default_factory=tuple)


class DartFuellingPoint:
    """One DART pump; fed bus events by its line, driven by the station through operations."""

    def __init__(self, config: PumpConfig, line: CommandSender,
                 emit: Callable[[PointEvent], None], *,
                 confirm_timeout: float = CONFIRM_TIMEOUT, reply_timeout: float = REPLY_TIMEOUT,
                 probe_timeout: float = PROBE_TIMEOUT) -> None:
        settings: DartPumpSettings = config.settings
        self._config = config
        self._settings = settings
        self._line = line
        self._emit = emit
        self._confirm_timeout = confirm_timeout
        self._reply_timeout = reply_timeout
        self._probe_timeout = probe_timeout
        self.address = settings.address
        self._logicals = frozenset(n.logical for n in config.nozzles)
        self._found = _Findings()
        self._link = False  # the line hears the pump
        self._announced = False  # PointOnline was emitted for this online spell
        self._status: PumpStatus | None = None
        self._state: PointState | None = None
        self._nozzle_out: int | None = None
        self._selected: int | None = None  # the nozzle of the current or last filling
        self._price_shown: Decimal | None = None
        self._fill_logical: int | None = None  # fixed when the filling ends
        self._fill_price: Decimal | None = None
        self._volume = Decimal(0)
        self._amount = Decimal(0)
        self._waiters: list[_Waiter] = []
        self.probe_task: asyncio.Task[None] | None = None
        self.restarts = 0  # restarts seen; the line brings the pump up again after each

    # ------------------------------------------------------------------ FuellingPoint: facts

    @property
    def pump(self) -> int:
        return self._config.number

    @property
    def online(self) -> bool:
        return self._link and self._announced

    @property
    def link_up(self) -> bool:
        """The line hears the pump (it may still be starting up)."""
        return self._link

    @property
    def state(self) -> PointState | None:
        return self._state

    @property
    def decimals(self) -> Decimals:
        """The decimals figures are read with: the pump's own where it told them."""
        return self._found.decimals or self._config.decimals

    @property
    def capabilities(self) -> Capabilities:
        found = self._found
        readback = bool(found.readback) and self._settings.price_readback
        checks = ("price read-back (DC103)",) if readback else ("price shown at the lift (DC3)",)
        return Capabilities(
            nozzles=frozenset(range(1, MAX_TOTALS_NOZZLE + 1)),
            totals=TotalsScope.NOZZLE,
            totals_amount=True,
            price_readback=readback,
            suspend=bool(found.readback) if found.suspend is None else found.suspend,
            decimals=found.decimals,
            checks=checks,
        )

    def detail(self) -> Mapping[str, object]:
        found = self._found
        return {
            "protocol": "dart",
            "address": f"0x{self.address:02X}",
            "status": self._status.name.lower() if self._status is not None else None,
            "price_readback": found.readback,
            "totals_bytes": found.totals_length,
            "identity": found.identity,
        }

    async def identity(self) -> Identity:
        found = self._found
        details = {"decimals": _decimals_text(found.decimals)} if found.decimals else {}
        return Identity(protocol="dart", address=f"0x{self.address:02X}",
                        serial=None if found.identity is None else str(found.identity),
                        details=details)

    # ------------------------------------------------------------------ from the line

    def bus_event(self, event: object) -> None:
        """An event of this pump's address from the line."""
        if isinstance(event, PumpReplied):
            self._replies(event.replies)
        elif isinstance(event, PumpOnline):
            self._link = True
        elif isinstance(event, PumpOffline):
            self._went_offline("the pump stopped answering")
        elif isinstance(event, PumpRestarted):
            # TX# 0: power-cycled; prices and any authorization are gone.
            self._status = None
            self._restarted()

    def _restarted(self) -> None:
        self.restarts += 1
        self._fill_logical = None
        if self._announced:
            self._emit(PointRestarted(self.pump))

    def _went_offline(self, reason: str) -> None:
        self._link = False
        was = self._announced
        self._announced = False
        self._status = None
        self._state = None
        self._nozzle_out = None
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.set_exception(PointUnreachable(self.pump, f"pump {self.pump} "
                                                             "stopped answering"))
        self._waiters.clear()
        if was:
            self._emit(PointOffline(self.pump, reason))

    def line_down(self) -> None:
        """The line closed: the pump is unreachable until it answers again."""
        self._went_offline("the line is down")

    def _replies(self, replies: Sequence[Reply | UnknownTransaction]) -> None:
        for reply in replies:
            if isinstance(reply, UnknownTransaction):
                log.debug("pump %d: transaction 0x%02X not understood", self.pump, reply.trans)
                continue
            self._apply(reply)
            for waiter in tuple(self._waiters):
                if not waiter.future.done() and waiter.predicate(reply):
                    waiter.future.set_result(reply)
                    self._waiters.remove(waiter)

    def _apply(self, reply: Reply) -> None:
        if isinstance(reply, DC1):
            previous, self._status = self._status, reply.status
            if reply.status is PumpStatus.NOT_PROGRAMMED and previous not in (
                    None, PumpStatus.NOT_PROGRAMMED):
                # Its prices are gone: it restarted, though its TX# did not say so (a pump that
                # lost power right after TX# F sends 0, which the line reads as the F->0 wrap).
                self._restarted()
            if reply.status in _ENDED and previous in _FLOWING and self._announced:
                # The nozzle of this filling is fixed now: the next customer may lift another
                # one before the sale is read. The end is told before the state it leads to.
                self._fill_logical = self._selected
                self._emit(FillingEnded(self.pump, self._fill_logical))
            self._update_state()
        elif isinstance(reply, DC2):
            d = self.decimals
            self._volume, self._amount = from_raw(reply.volume, d.volume), from_raw(
                reply.amount, d.amount)
            if self._announced and self._status is PumpStatus.FILLING:
                self._emit(RunningFigures(self.pump, self._volume, self._amount,
                                          self._selected))
        elif isinstance(reply, DC3):
            self._price_shown = from_raw(reply.price, self.decimals.price)
            if reply.nozzle:
                self._selected = reply.nozzle
            out = reply.nozzle if reply.nozzle_out else None
            if out != self._nozzle_out:
                previous_out, self._nozzle_out = self._nozzle_out, out
                if out is not None and self._status in (PumpStatus.AUTHORIZED, PumpStatus.RESET,
                                                        PumpStatus.FILLING_COMPLETED,
                                                        PumpStatus.MAX_REACHED, None):
                    self._fill_price = self._price_shown
                if self._announced:
                    if out is not None:
                        self._emit(NozzleUp(self.pump, out, self._price_shown))
                    else:
                        self._emit(NozzleDown(self.pump, previous_out))
                self._update_state()
        elif isinstance(reply, DC5) and self._announced:
            kind = _ALARMS.get(reply.alarm, AlarmKind.OTHER)
            self._emit(PointAlarm(self.pump, kind, f"0x{reply.alarm:02X}",
                                  _alarm_text(reply.alarm)))

    def _update_state(self) -> None:
        if self._status is None:
            return
        state = dart_state(self._status, self._nozzle_out is not None)
        if state is not self._state:
            self._state = state
            if self._announced:
                self._emit(StateChanged(self.pump, state, self._status.name.lower()))

    # ------------------------------------------------------------------ coming online

    async def probe(self) -> None:
        """Find out what the pump answers (once), then announce it online with its state."""
        status = (await self._ask([CD1(PumpCommand.RETURN_STATUS)], DC1)).status
        found = self._found
        if not found.probed:
            await self._probe_optional(found)
            found.probed = True
            self._log_findings()
        if not self._link:
            raise PointUnreachable(self.pump, "the pump stopped answering during start-up")
        self._status = self._status or status
        self._state = None
        self._update_state()
        self._announced = True
        self._emit(PointOnline(self.pump, await self.identity(), self.capabilities))
        if self._state is not None:
            self._emit(StateChanged(self.pump, self._state,
                                    self._status.name.lower() if self._status else ""))
        if self._nozzle_out is not None:
            self._emit(NozzleUp(self.pump, self._nozzle_out, self._price_shown))

    async def _probe_optional(self, found: _Findings) -> None:
        params = await self._optional([CD1(PumpCommand.RETURN_PARAMETERS)], DC7)
        if params is not None:
            found.decimals = Decimals(volume=params.volume_decimals,
                                      amount=params.amount_decimals,
                                      price=params.price_decimals)
            found.grades = params.grades
        ident = await self._optional([CD1(PumpCommand.RETURN_IDENTITY)], DC9)
        if ident is not None:
            found.identity = ident.identity
        if self._settings.price_readback:
            prices = await self._optional([CD1(PumpCommand.RETURN_PRICES)], DC103)
            found.readback = prices is not None
        else:
            found.readback = False
        first = min(self._logicals & frozenset(range(1, MAX_TOTALS_NOZZLE + 1)), default=1)
        totals = await self._optional([CD101(first)], DC101, lambda r: r.counter == first)
        if totals is not None:
            found.totals_length = getattr(totals, "length", None) or 16

    def _log_findings(self) -> None:
        found = self._found
        log.info("pump %d (0x%02X): %s; decimals %s; identity %s; prices checked by %s",
                 self.pump, self.address,
                 "rev 2.11 (answers the price read-back)" if found.readback else
                 "no price read-back (DC103 unanswered or off)",
                 _decimals_text(found.decimals) if found.decimals else
                 f"not reported (config: {_decimals_text(self._config.decimals)})",
                 found.identity if found.identity is not None else "not reported",
                 self.capabilities.checks[0])

    async def _optional(self, commands: Sequence[Command], kind: type[R],
                        match: Callable[[R], bool] = lambda _: True) -> R | None:
        try:
            return await self._ask(commands, kind, match, within=self._probe_timeout)
        except TimeoutError:
            log.info("pump %d: no answer to %s within %.1f s: not asked again", self.pump,
                     kind.__name__, self._probe_timeout)
            return None

    # ------------------------------------------------------------------ operations

    async def authorize(self, nozzles: frozenset[int], preset: Preset | None) -> None:
        commands: list[Command] = [CD2(tuple(sorted(nozzles)))]
        if preset is not None:
            d = self.decimals
            try:
                if preset.kind == "amount":
                    commands.append(CD4(to_raw(preset.value, d.amount)))
                else:
                    commands.append(CD3(to_raw(preset.value, d.volume)))
            except UnitError as exc:
                raise InvalidValue(self.pump, f"preset {preset.kind} {preset.value}: {exc}"
                                   ) from None
        commands.append(CD1(PumpCommand.AUTHORIZE))
        self._check_online()
        if self._status in _ENDED or self._status is PumpStatus.AUTHORIZED:
            # The last filling is read and recorded: RESET makes the pump ready for the next.
            await self._send([CD1(PumpCommand.RESET)])
            await self._wait_status((PumpStatus.RESET,), "reset")
        self._volume = self._amount = Decimal(0)
        self._fill_logical = None
        await self._send(commands)
        await self._wait_status((PumpStatus.AUTHORIZED, PumpStatus.FILLING), "authorized")

    async def cancel(self) -> None:
        self._check_online()
        if self._status in (PumpStatus.FILLING, PumpStatus.SUSPENDED):
            raise PointRefused(self.pump, f"pump {self.pump}: fuel is flowing, too late to "
                                          "cancel", "filling")
        await self._send([CD1(PumpCommand.RESET)])
        await self._wait_status((PumpStatus.RESET,), "reset")

    async def stop(self) -> None:
        # An emergency stop goes out at once and counts as done when the pump ACKs it; what
        # it did comes as status changes (a stop while authorized resets the pump).
        self._check_online()
        await self._send([CD1(PumpCommand.STOP)])

    async def suspend(self) -> None:
        self._check_online()
        if self._found.suspend is False or not self.capabilities.suspend:
            raise NotSupported(self.pump, f"pump {self.pump} cannot suspend a filling")
        await self._send([CD1(PumpCommand.SUSPEND)])
        try:
            await self._wait_status((PumpStatus.SUSPENDED,), "suspended")
        except PointUnreachable:
            if self._link:
                self._found.suspend = False  # answers its status only: an older firmware
                raise NotSupported(self.pump, f"pump {self.pump} does not suspend") from None
            raise
        self._found.suspend = True

    async def resume(self) -> None:
        self._check_online()
        await self._send([CD1(PumpCommand.RESUME)])
        await self._wait_status((PumpStatus.FILLING,), "filling")

    async def close(self) -> None:
        self._check_online()
        await self._send([CD1(PumpCommand.SWITCH_OFF)])
        await self._wait_status((PumpStatus.SWITCHED_OFF,), "switched off")

    async def open(self) -> None:
        self._check_online()
        await self._send([CD1(PumpCommand.RESET)])
        await self._wait_status((PumpStatus.RESET,), "reset")

    async def read_sales(self) -> Sequence[FinishedSale]:
        """The pump keeps one filling (DC2): the current or last one, until the next RESET."""
        info = await self._ask([CD1(PumpCommand.RETURN_FILLING_INFO)], DC2)
        d = self.decimals
        volume, amount = from_raw(info.volume, d.volume), from_raw(info.amount, d.amount)
        if volume == 0 and amount == 0:
            return ()
        # The nozzle is known when this process saw the filling end. After a restart it is
        # not: DC3's "selected nozzle" is the one lifted last, maybe by the next customer.
        # The filling is then reported without its nozzle, and the totals attribute it.
        return (FinishedSale(logical=self._fill_logical, volume=volume, amount=amount,
                             price=self._fill_price if self._fill_logical else None),)

    async def clear_sale(self, sale: FinishedSale) -> None:
        """Nothing to do: the next authorization's RESET clears the pump's last filling."""

    async def read_totals(self, logical: int) -> Totals:
        if not 1 <= logical <= MAX_TOTALS_NOZZLE:
            raise NotSupported(self.pump, f"DART reports totals for nozzles 1..8, not {logical}")
        d = self.decimals
        volume = await self._ask([CD101(logical)], DC101, lambda r: r.counter == logical)
        amount = await self._ask([CD101(0x10 + logical)], DC101,
                                 lambda r: r.counter == 0x10 + logical)
        return Totals(logical=logical, volume=from_raw(volume.total, d.volume),
                      amount=from_raw(amount.total, d.amount))

    async def read_pump_totals(self) -> Totals | None:
        d = self.decimals
        volume = await self._optional([CD101(0x09)], DC101, lambda r: r.counter == 0x09)
        if volume is None:
            return None
        amount = await self._optional([CD101(0x19)], DC101, lambda r: r.counter == 0x19)
        return Totals(logical=None, volume=from_raw(volume.total, d.volume),
                      amount=None if amount is None else from_raw(amount.total, d.amount),
                      scope=TotalsScope.PUMP)

    async def set_prices(self, prices: Mapping[int, Decimal]) -> None:
        """CD5 with a price for every logical nozzle 1..highest (the pump ignores a CD5 that
        misses one), then the read-back where the pump answers it."""
        self._check_online()
        places = self.decimals.price
        raw: list[int] = []
        try:
            for logical in range(1, max(prices, default=1) + 1):
                price = prices.get(logical)
                raw.append(to_raw(price, places, maximum=MAX_RAW_3) if price else 0)
        except UnitError as exc:
            raise InvalidValue(self.pump, f"price: {exc}") from None
        not_programmed = self._status is PumpStatus.NOT_PROGRAMMED
        await self._send([CD5(tuple(raw))])
        if self.capabilities.price_readback:
            readback = await self._ask([CD1(PumpCommand.RETURN_PRICES)], DC103)
            shown = readback.prices[: len(raw)]
            if tuple(shown) != tuple(raw):
                raise PriceMismatch(
                    self.pump,
                    {n: from_raw(p, places) for n, p in enumerate(raw, 1) if p},
                    {n: from_raw(p, places) for n, p in enumerate(shown, 1) if raw[n - 1]})
        if not_programmed:
            # The pump leaves "not programmed" by itself once it has prices, sometimes later.
            try:
                await self._wait_status(tuple(s for s in PumpStatus
                                              if s is not PumpStatus.NOT_PROGRAMMED),
                                        "programmed", PROGRAMMED_TIMEOUT)
            except PointUnreachable:
                log.warning("pump %d still not programmed after its prices", self.pump)

    # ------------------------------------------------------------------ talking to the pump

    def _check_online(self) -> None:
        if not self._link:
            raise PointUnreachable(self.pump, f"pump {self.pump} is offline")

    async def _send(self, commands: Sequence[Command]) -> None:
        blocks = [[c] for c in commands] if self._settings.one_command_per_block else [commands]
        try:
            for block in blocks:
                await self._line.command(self.address, block)
        except DartCommandError as exc:
            raise PointUnreachable(self.pump, f"pump {self.pump}: {exc}") from None

    async def _ask(self, commands: Sequence[Command], kind: type[R],
                   match: Callable[[R], bool] = lambda _: True, *,
                   within: float | None = None) -> R:
        """Send ``commands`` and wait for the next reply of ``kind`` that ``match``es.

        TimeoutError when no such reply comes in time (the pump may not know the command).
        """
        self._check_online()
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(lambda r: isinstance(r, kind) and match(r), future)
        self._waiters.append(waiter)
        try:
            await self._send(commands)
            reply = await asyncio.wait_for(future, within or self._reply_timeout)
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        assert isinstance(reply, kind)
        return reply

    async def _wait_status(self, wanted: Sequence[PumpStatus], what: str,
                           within: float | None = None) -> PumpStatus:
        if self._status in wanted:
            assert self._status is not None
            return self._status
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(lambda r: isinstance(r, DC1) and r.status in wanted, future)
        self._waiters.append(waiter)
        try:
            reply = await asyncio.wait_for(future, within or self._confirm_timeout)
        except TimeoutError:
            raise PointUnreachable(self.pump, f"pump {self.pump} did not show {what} in time"
                                   ) from None
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        assert isinstance(reply, DC1)
        return reply.status


def _decimals_text(d: Decimals | None) -> str:
    return "?" if d is None else f"volume {d.volume}, amount {d.amount}, price {d.price}"


def _alarm_text(code: int) -> str:
    try:
        return AlarmCode(code).name.lower().replace("_", " ")
    except ValueError:
        return f"alarm code 0x{code:02X}"
