"""Following a Gilbarco pump: its statuses as neutral fuelling-point events (``domain.fuelling``).

Status nibbles become ``PointState``s, special function 010 and the transaction's hose become
nozzle up, running money becomes running figures (volume = money / price), A/B become the end of
a filling, the data-error status an alarm that a totals read clears. The operations on top are
``drivers.gilbarco.point``.

Status changes reach a pump from its line as bus events; one worker task per pump handles them
in order, because some need the pump asked first (which nozzle is up, the sale's hose and price)
before the neutral events go out. Operations wait on the statuses the line polls, not on the
worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from decimal import ROUND_DOWN, Decimal
from typing import Any, Protocol

from domain.equipment import PumpConfig
from domain.fuelling import (
    AlarmKind,
    Capabilities,
    Decimals,
    FillingEnded,
    Identity,
    NozzleDown,
    NozzleUp,
    PointAlarm,
    PointAlarmCleared,
    PointEvent,
    PointOffline,
    PointOnline,
    PointRefused,
    PointState,
    PointUnreachable,
    RunningFigures,
    StateChanged,
    TotalsScope,
)
from domain.retry import PUMP_STARTUP
from domain.units import from_raw, step

from .answers import PumpTotals, RunningMoney, Transaction
from .commands import LAYOUTS, PumpStatus
from .config import MAX_HOSE, GilbarcoLineSettings, GilbarcoPumpSettings
from .errors import GilbarcoCommandError, GilbarcoProtocolError
from .events import BusEvent, PumpOffline, PumpOnline, StatusChanged
from .requests import (
    AllStop,
    Answer,
    ReadRunningMoney,
    ReadSpecialFunction,
    ReadTotals,
    ReadTransaction,
    Request,
)
from .special import NOZZLE_FUNCTION, NozzleReport, PumpConfiguration, SpecialFunctionAnswer

__all__ = ["CONFIRM_TIMEOUT", "LineRequests", "PumpFollower", "Spawn", "point_state"]

log = logging.getLogger("drivers.gilbarco")

CONFIRM_TIMEOUT = 1.5
"""Seconds an authorize or stop may take to show in the pump's status before it is sent again."""
IDLE_WAIT = 10.0
"""Seconds a price change waits for the pump to be idle (prices change only then)."""
RUNNING_INTERVAL = 1.0
"""Seconds between running-money reads while fuel flows."""

_S = PumpStatus
_FLOWING = (_S.FUELLING, _S.STOPPED)
_STATES = {
    _S.IDLE: PointState.IDLE,
    _S.CALLING: PointState.CALLING,
    _S.FUELLING: PointState.FUELLING,
    _S.STOPPED: PointState.STOPPED,
    # The sale is over at the pump and waits to be read; nothing can be authorized meanwhile.
    _S.END_OF_SALE_A: PointState.IDLE,
    _S.END_OF_SALE_B: PointState.IDLE,
}


def point_state(status: PumpStatus, nozzle_out: bool) -> PointState | None:
    """A status nibble as a neutral state (None for the data error and READY_FOR_DATA)."""
    if status is _S.AUTHORIZED:
        return PointState.STARTED if nozzle_out else PointState.AUTHORIZED
    return _STATES.get(status)


class LineRequests(Protocol):
    """What a point needs of its line (``GilbarcoLine``)."""

    async def request(self, pump: int | None, request: Request | AllStop,
                      timeout: float = ...) -> Answer: ...  # noqa: ASYNC109 (the line's own)


Spawn = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[None]"]


class PumpFollower:
    """One Gilbarco pump followed through its line's bus events; the facts a point reports."""

    def __init__(self, config: PumpConfig, line: LineRequests, settings: GilbarcoLineSettings,
                 emit: Callable[[PointEvent], None], *,
                 confirm_timeout: float = CONFIRM_TIMEOUT) -> None:
        pump_settings: GilbarcoPumpSettings = config.settings
        self._config = config
        self._line = line
        self._settings = settings
        self._layout = LAYOUTS[settings.digits]
        self._emit = emit
        self._confirm_timeout = confirm_timeout
        self.address = pump_settings.address
        self._inbox: asyncio.Queue[tuple[int, BusEvent]] = asyncio.Queue()
        self._seq = 0  # bus events delivered so far
        self._snapshot = 0  # the start-up's picture of the pump includes events up to this one
        self._link = False
        self._announced = False
        self._bus_status: PumpStatus | None = None  # the latest the line heard
        self._status: PumpStatus | None = None  # the latest this point acted on
        self._state: PointState | None = None
        self._data_error = False
        self._nozzle_out: int | None = None
        self._filling = False
        self._fill_logical: int | None = None
        self._fill_price: Decimal | None = None
        self._prices: dict[int, Decimal] = {}
        self._pump_config: PumpConfiguration | None = None
        self._config_answered: bool | None = None
        self._waiters: list[tuple[Callable[[PumpStatus], bool], asyncio.Future[PumpStatus]]] = []
        self._running: asyncio.Task[None] | None = None
        self._spawn: Spawn | None = None

    # ------------------------------------------------------------------ facts

    @property
    def pump(self) -> int:
        return self._config.number

    @property
    def online(self) -> bool:
        return self._link and self._announced

    @property
    def link_up(self) -> bool:
        return self._link

    @property
    def state(self) -> PointState | None:
        return self._state

    @property
    def decimals(self) -> Decimals:
        """The decimals figures are read with: the pump's own where it told them."""
        c = self._pump_config
        if c is None:
            return self._config.decimals
        return Decimals(volume=c.volume_decimals, amount=c.money_decimals,
                        price=c.price_decimals)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            nozzles=frozenset(range(1, MAX_HOSE + 1)),
            totals=TotalsScope.NOZZLE,
            totals_amount=True,
            price_readback=True,  # the totals block carries every hose's prices
            suspend=False,
            presets=frozenset({"amount", "volume"}),
            decimals=self.decimals if self._pump_config is not None else None,
            sale_buffer=False,
            sells_by_itself=False,
            checks=("prices read back from the totals block",),
        )

    def detail(self) -> Mapping[str, object]:
        status = self._bus_status
        return {
            "protocol": "gilbarco",
            "address": self.address,
            "status": None if status is None else status.name.lower(),
            "status_code": None if status is None else f"{int(status):X}",
            "data_error": self._data_error,
            "digits": str(self._settings.digits),
            "configuration": {None: "not asked", True: "answered",
                              False: "not answered"}[self._config_answered],
        }

    async def identity(self) -> Identity:
        details = {"digits": str(self._settings.digits)}
        if self._pump_config is not None:
            c = self._pump_config
            details["decimals"] = f"{c.volume_decimals}/{c.money_decimals}/{c.price_decimals}"
            details["money_digits"] = str(c.money_digits)
        return Identity(protocol="gilbarco", address=f"pump {self.address}", details=details)

    # ------------------------------------------------------------------ from the line

    def attach(self, spawn: Spawn) -> None:
        """The line's task group: the point runs its worker and reads there."""
        self._spawn = spawn
        spawn(self._work(), f"gilbarco-pump-{self.pump}")

    def bus_event(self, event: BusEvent) -> None:
        """An event of this pump's address, as the line delivers it (in line order)."""
        if isinstance(event, PumpOnline):
            self._link = True
        elif isinstance(event, PumpOffline):
            self._link = False
            self._bus_status = None
            self._fail_waiters(f"pump {self.pump} stopped answering")
        elif isinstance(event, StatusChanged):
            self._bus_status = event.status
            for predicate, future in tuple(self._waiters):
                if not future.done() and predicate(event.status):
                    future.set_result(event.status)
        self._seq += 1
        self._inbox.put_nowait((self._seq, event))

    def line_down(self) -> None:
        self._link = False
        self._fail_waiters("the line is down")
        self._went_offline("the line is down")

    async def _work(self) -> None:
        snapshot = 0  # status events up to this one are in the start-up's picture already
        while True:
            seq, event = await self._inbox.get()
            if isinstance(event, PumpOnline):
                snapshot = await self._come_online()
            elif isinstance(event, PumpOffline):
                self._went_offline("the pump stopped answering")
            elif isinstance(event, StatusChanged) and self._announced and seq > snapshot:
                await self._on_status(event.status)

    # ------------------------------------------------------------------ coming online

    async def _come_online(self) -> int:
        try:
            await PUMP_STARTUP.call_async(
                self._probe, log, f"pump {self.pump} (address {self.address}) start-up",
                retry_on=(PointUnreachable,), level=logging.WARNING,
                until=lambda: not self._link)
        except PointUnreachable as exc:
            log.info("pump %d: start-up stopped, the pump is offline (%s)", self.pump, exc)
        return self._snapshot

    async def _probe(self) -> None:
        if self._settings.config_function is not None and self._config_answered is None:
            await self._read_configuration(self._settings.config_function)
        await self._read_totals()  # prices, and it clears a data error
        status, self._snapshot = self._bus_status, self._seq
        if status is None or not self._link:
            raise PointUnreachable(self.pump, "the pump stopped answering during start-up")
        self._status = status if point_state(status, False) is not None else None
        self._nozzle_out = None
        self._filling = status in _FLOWING
        if status in (_S.CALLING, _S.AUTHORIZED):
            await self._identify()
        elif self._filling:
            await self._learn_fill()
        self._announced = True
        self._state = None
        self._emit(PointOnline(self.pump, await self.identity(), self.capabilities))
        if self._nozzle_out is not None:
            self._emit(NozzleUp(self.pump, self._nozzle_out, self._prices.get(self._nozzle_out)))
        self._update_state()
        if status is _S.FUELLING:
            self._start_running()

    async def _read_configuration(self, function: int) -> None:
        try:
            answer = await self._ask(ReadSpecialFunction(function))
        except PointRefused as exc:
            log.info("pump %d: configuration not read now (%s)", self.pump, exc.message)
            return
        except PointUnreachable as exc:
            if "no answer" not in exc.message:
                raise
            self._config_answered = False
            log.info("pump %d: no answer to special function %03d: decimals from the config "
                     "(%s), not asked again", self.pump, function, _text(self._config.decimals))
            return
        assert isinstance(answer, SpecialFunctionAnswer)
        try:
            self._pump_config = PumpConfiguration.from_answer(answer)
        except GilbarcoProtocolError as exc:
            self._config_answered = False
            log.warning("pump %d: special function %03d answered %s, which is not a "
                        "configuration this driver reads (%s): decimals from the config",
                        self.pump, function, answer.data.hex(" "), exc.reason)
            return
        self._config_answered = True
        c = self._pump_config
        log.info("pump %d: the pump counts volume/money/price with %d/%d/%d decimals, %d money "
                 "digits%s", self.pump, c.volume_decimals, c.money_decimals, c.price_decimals,
                 c.money_digits, ", in gallons" if c.gallons else "")
        if c.gallons:
            log.error("pump %d reports gallons: volumes are recorded as the pump counts them",
                      self.pump)

    # ------------------------------------------------------------------ statuses

    async def _on_status(self, new: PumpStatus) -> None:
        if new is _S.READY_FOR_DATA:
            return  # left over from a block that was not sent: the next poll tells more
        if new is _S.DATA_ERROR:
            if not self._data_error:
                self._data_error = True
                self._emit(PointAlarm(self.pump, AlarmKind.DATA, "0",
                                      "the pump reports a data error; reading its totals"))
            await self._unlock()
            return
        if self._data_error:
            self._data_error = False
            self._emit(PointAlarmCleared(self.pump, AlarmKind.DATA))
        previous, self._status = self._status, new
        if previous is new:
            return
        if self._filling and (new.ends_sale or new not in _FLOWING):
            self._end_fill()
        elif new.ends_sale and previous is _S.AUTHORIZED:
            # The whole filling fell between two status polls (a short one, a busy line): the
            # sale ended, though no poll saw fuel flow. Its hose from the transaction it shows.
            await self._learn_fill()
            self._end_fill()
        if new in _FLOWING and not self._filling:
            self._filling = True
            await self._learn_fill()
        if new is _S.CALLING or (new is _S.AUTHORIZED and previous is _S.CALLING):
            if self._nozzle_out is None:
                await self._identify()
        elif new is _S.IDLE and self._nozzle_out is not None:
            out, self._nozzle_out = self._nozzle_out, None
            self._emit(NozzleDown(self.pump, out))
        self._update_state()
        if new is _S.FUELLING:
            self._start_running()
        else:
            self._stop_running()

    def _update_state(self) -> None:
        if self._status is None:
            return
        state = point_state(self._status, self._nozzle_out is not None)
        if state is not None and state is not self._state:
            self._state = state
            if self._announced:
                self._emit(StateChanged(self.pump, state, self._status.name.lower()))

    def _end_fill(self) -> None:
        self._stop_running()
        self._filling = False
        # Told before the state it leads to; the nozzle is fixed now (the next customer may
        # lift another one before the sale is read).
        self._emit(FillingEnded(self.pump, self._fill_logical))

    def _went_offline(self, reason: str) -> None:
        self._stop_running()
        was, self._announced = self._announced, False
        self._status = self._state = None
        self._nozzle_out = None
        if was:
            self._emit(PointOffline(self.pump, reason))

    async def _identify(self) -> None:
        """Which nozzle is up (special function 010), and its price from the totals."""
        hose: int | None = None
        try:
            answer = await self._ask(ReadSpecialFunction(NOZZLE_FUNCTION))
            assert isinstance(answer, SpecialFunctionAnswer)
            hose = NozzleReport.from_answer(answer).hose
            await self._read_totals()
        except (PointUnreachable, PointRefused) as exc:
            log.info("pump %d: which nozzle is up is not known (%s)", self.pump, exc.message)
        except GilbarcoProtocolError as exc:
            log.warning("pump %d: special function 010 answered %s", self.pump, exc)
        if hose is None and len(self._config.nozzles) == 1:
            hose = self._config.nozzles[0].logical
        if hose is not None:
            self._nozzle_out = hose
            if self._announced:  # at start-up it is told after PointOnline
                self._emit(NozzleUp(self.pump, hose, self._prices.get(hose)))

    async def _learn_fill(self) -> None:
        """The hose and price of the filling that started, from the transaction it shows."""
        self._fill_logical, self._fill_price = self._nozzle_out, None
        try:
            tx = await self._ask(ReadTransaction())
        except (PointUnreachable, PointRefused) as exc:
            log.warning("pump %d: the new filling's transaction is not read (%s)", self.pump,
                        exc.message)
            tx = None
        if isinstance(tx, Transaction):
            self._fill_logical = tx.hose
            self._fill_price = from_raw(tx.price, self.decimals.price)
        if self._fill_price is None and self._fill_logical is not None:
            self._fill_price = self._prices.get(self._fill_logical)
        if self._nozzle_out is None and self._fill_logical is not None:
            self._nozzle_out = self._fill_logical
            if self._announced:
                self._emit(NozzleUp(self.pump, self._fill_logical, self._fill_price))

    async def _unlock(self) -> None:
        try:
            await self._read_totals()
        except (PointUnreachable, PointRefused) as exc:
            log.warning("pump %d: totals read after a data error failed (%s)", self.pump,
                        exc.message)

    # ------------------------------------------------------------------ running money

    def _start_running(self) -> None:
        if self._running is None or self._running.done():
            assert self._spawn is not None
            self._running = self._spawn(self._run_money(), f"gilbarco-running-{self.pump}")

    def _stop_running(self) -> None:
        if self._running is not None:
            self._running.cancel()
            self._running = None

    async def _run_money(self) -> None:
        await asyncio.sleep(self._settings.timing.running_money_delay)
        while self._filling:
            try:
                answer = await self._ask(ReadRunningMoney())
            except (PointUnreachable, PointRefused):
                return
            assert isinstance(answer, RunningMoney)
            d = self.decimals
            money = from_raw(answer.money, d.amount)
            price = self._fill_price
            volume = (money / price).quantize(step(d.volume), ROUND_DOWN) if price else Decimal(0)
            self._emit(RunningFigures(self.pump, volume, money, self._fill_logical))
            await asyncio.sleep(RUNNING_INTERVAL)

    # ------------------------------------------------------------------ asking the pump

    async def _ask(self, request: Request, timeout: float = 5.0) -> Answer:  # noqa: ASYNC109
        if not self._link:
            raise PointUnreachable(self.pump, f"pump {self.pump} is offline")
        try:
            return await self._line.request(self.address, request, timeout)
        except GilbarcoCommandError as exc:
            if exc.reason.startswith("not ready for data"):
                raise PointRefused(self.pump, f"pump {self.pump}: {exc.reason}",
                                   "busy") from None
            raise PointUnreachable(self.pump, f"pump {self.pump}: {exc.reason}") from None

    async def _read_totals(self) -> PumpTotals:
        answer = await self._ask(ReadTotals())
        assert isinstance(answer, PumpTotals)
        places = self.decimals.price
        self._prices = {h.hose: from_raw(h.price_1, places) for h in answer.hoses}
        return answer

    def _fail_waiters(self, message: str) -> None:
        for _, future in self._waiters:
            if not future.done():
                future.set_exception(PointUnreachable(self.pump, message))
        self._waiters.clear()

    async def _wait_status(self, wanted: Callable[[PumpStatus], bool], what: str,
                           within: float) -> PumpStatus:
        current = self._bus_status
        if current is not None and wanted(current):
            return current
        future: asyncio.Future[PumpStatus] = asyncio.get_running_loop().create_future()
        entry = (wanted, future)
        self._waiters.append(entry)
        try:
            return await asyncio.wait_for(future, within)
        except TimeoutError:
            raise PointUnreachable(self.pump, f"pump {self.pump} did not show {what} in "
                                              "time") from None
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def _check_online(self) -> None:
        if not self._link:
            raise PointUnreachable(self.pump, f"pump {self.pump} is offline")


def _text(d: Decimals) -> str:
    return f"volume {d.volume}, amount {d.amount}, price {d.price}"
