"""The protocol-neutral fuelling point: what the station core asks of any pump driver.

A *fuelling point* is one dispenser side as painted on the island ("3号泵"): a set of logical
nozzles that fill one vehicle at a time. The station core (``edge/``) speaks only this
interface; each protocol driver (``drivers/dart``, ``drivers/ifsf``, ``drivers/gilbarco``)
implements it and keeps its own words (TX#, DC1, data ids, status nibbles) behind it.

Three parts, all without I/O of their own:

* **States** (``PointState``), close to IFSF's nine: every driver maps its pump's status onto
  them; the controller's tables (``domain.states``) decide what they mean for sales.
* **Events** (``PointEvent`` and its subclasses) a driver emits for a fuelling point: online
  with identity and capabilities, offline, restarted, nozzle up/down, running figures, filling
  ended, a sale the pump started on its own, alarms.
* **Operations** (``FuellingPoint``) that return only once the pump confirmed, or raise a
  ``FuellingPointError``: authorize, cancel, stop, suspend, resume, close, read the finished
  sales, clear one, read totals, set prices (read back where the pump can), identity.

A ``FuellingLine`` owns one transport (an RS-485 line, an IFSF LAN) and its fuelling points;
``drivers.registry`` builds lines from the configuration's ``protocol``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from types import TracebackType
from typing import Literal, Protocol, Self, runtime_checkable

from domain.model import Preset

__all__ = [
    "AlarmKind",
    "Capabilities",
    "Decimals",
    "FillingEnded",
    "FinishedSale",
    "FuellingLine",
    "FuellingPoint",
    "FuellingPointError",
    "Identity",
    "InvalidValue",
    "NotSupported",
    "NozzleDown",
    "NozzleUp",
    "PointAlarm",
    "PointAlarmCleared",
    "PointEvent",
    "PointOffline",
    "PointOnline",
    "PointRefused",
    "PointRestarted",
    "PointState",
    "PointUnreachable",
    "PresetKind",
    "PriceMismatch",
    "PumpSale",
    "RunningFigures",
    "StateChanged",
    "Totals",
    "TotalsScope",
]


# ----------------------------------------------------------------------------- states


class PointState(StrEnum):
    """Where a fuelling point is, as its pump says (IFSF's nine states, named for people)."""

    INOPERATIVE = "inoperative"  # out of order, or waiting for prices before it can sell
    CLOSED = "closed"  # switched off / closed: takes no authorization until opened
    IDLE = "idle"  # nozzles in, nothing authorized
    CALLING = "calling"  # a nozzle is up, no authorization
    AUTHORIZED = "authorized"  # released, nozzle still in
    STARTED = "started"  # released and the nozzle up, no fuel yet
    FUELLING = "fuelling"  # fuel flows
    SUSPENDED = "suspended"  # a filling paused by suspend (resumable)
    STOPPED = "stopped"  # a filling halted by stop (IFSF terminated, Gilbarco "stopped")


# ----------------------------------------------------------------------------- what a pump is


class TotalsScope(StrEnum):
    """What one totals counter of the pump covers."""

    NOZZLE = "nozzle"  # one counter per logical nozzle (DART rev 2.11, IFSF, Gilbarco hoses)
    GRADE = "grade"  # one counter per grade: nozzles of a grade share it
    PUMP = "pump"  # one counter for the whole pump: a consistency check, never a witness


PresetKind = Literal["amount", "volume"]


@dataclass(frozen=True)
class Decimals:
    """Where the pump puts the decimal point in volumes, amounts and unit prices."""

    volume: int = 2
    amount: int = 2
    price: int = 2


@dataclass(frozen=True)
class Capabilities:
    """What a fuelling point can do; drivers declare it and refine it as they learn the pump.

    The station asks instead of assuming: with ``price_readback`` False the controller checks
    the price the pump shows when a nozzle is lifted (``NozzleUp.price``); without ``suspend``
    the console offers no pause; ``decimals`` is the pump's own setting when it reports one
    (a configured value that disagrees blocks sales on that pump).
    """

    nozzles: frozenset[int]  # logical nozzles the protocol can address on this pump
    totals: TotalsScope = TotalsScope.NOZZLE
    totals_amount: bool = True  # the totals carry an amount beside the volume
    price_readback: bool = True  # prices can be read back after they are set
    suspend: bool = False  # suspend/resume a filling
    presets: frozenset[PresetKind] = frozenset({"amount", "volume"})
    full_needs_preset: bool = False  # a "fill up" is sent as the largest preset
    decimals: Decimals | None = None  # the pump's own decimals, when it told us
    sale_buffer: bool = False  # keeps finished sales until the controller clears them
    sells_by_itself: bool = False  # may start a sale nobody authorized (stand-alone mode)
    checks: tuple[str, ...] = ()  # how prices are proven on this pump, for logs and the console


@dataclass(frozen=True)
class Identity:
    """Who answered: enough for commissioning and the log."""

    protocol: str
    address: str  # in the protocol's own form: "0x50", "1.1/FP1", "pump 3"
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    details: Mapping[str, str] = field(default_factory=dict)


# ----------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class Totals:
    """A counter's electronic totals as the pump reads them (they only grow, then wrap)."""

    logical: int | None  # the nozzle the counter belongs to; None for a pump-wide counter
    volume: Decimal
    amount: Decimal | None
    scope: TotalsScope = TotalsScope.NOZZLE


@dataclass(frozen=True)
class FinishedSale:
    """A filling the pump finished and still holds, read back from it.

    ``key`` is the pump's own key for it where the protocol has one (IFSF: node, fuelling point
    and transaction number), else None. ``volume`` and ``amount`` carry the pump's decimals.
    """

    logical: int | None
    volume: Decimal
    amount: Decimal
    price: Decimal | None
    key: str | None = None
    authorized: bool = True  # False: the pump sold it by itself, nobody here released it
    details: Mapping[str, str] = field(default_factory=dict)


# ----------------------------------------------------------------------------- alarms


class AlarmKind(StrEnum):
    """Pump alarms in the station's words; drivers translate their codes to these."""

    CPU_RESET = "cpu_reset"
    MEMORY = "memory"  # RAM/PROM errors
    PULSER = "pulser"  # meter pulser faults
    EMERGENCY_STOP = "emergency_stop"  # the pump's own emergency stop
    POWER = "power"  # power failure
    PRESSURE = "pressure"
    LEAK = "leak"
    PRICE = "price"  # a price was refused, or the pump shows another price
    DATA = "data"  # the pump reports a data error
    BLOCKED = "blocked"  # the pump refuses to sell (locked, buffer full)
    OTHER = "other"


# ----------------------------------------------------------------------------- events


@dataclass(frozen=True)
class PointEvent:
    """Something a fuelling point did; ``pump`` is the station's pump number."""

    pump: int


@dataclass(frozen=True)
class PointOnline(PointEvent):
    identity: Identity
    capabilities: Capabilities


@dataclass(frozen=True)
class PointOffline(PointEvent):
    reason: str = ""


@dataclass(frozen=True)
class PointRestarted(PointEvent):
    """The pump lost its state (power cycle): prices and any authorization are gone."""


@dataclass(frozen=True)
class StateChanged(PointEvent):
    state: PointState
    raw: str = ""  # the protocol's own status, for the protocol detail object


@dataclass(frozen=True)
class NozzleUp(PointEvent):
    logical: int
    price: Decimal | None = None  # the unit price the pump shows for it, where it says


@dataclass(frozen=True)
class NozzleDown(PointEvent):
    logical: int | None = None


@dataclass(frozen=True)
class RunningFigures(PointEvent):
    volume: Decimal
    amount: Decimal
    logical: int | None = None


@dataclass(frozen=True)
class FillingEnded(PointEvent):
    """The filling is over at the pump; the controller reads it with ``read_sales``."""

    logical: int | None = None


@dataclass(frozen=True)
class PumpSale(PointEvent):
    """A sale the pump started on its own and finished (stand-alone, card terminal)."""

    sale: FinishedSale


@dataclass(frozen=True)
class PointAlarm(PointEvent):
    kind: AlarmKind
    code: str  # the protocol's own code, as it came ("09", "0x37")
    text: str = ""


@dataclass(frozen=True)
class PointAlarmCleared(PointEvent):
    kind: AlarmKind


# ----------------------------------------------------------------------------- errors


class FuellingPointError(Exception):
    """An operation the pump did not carry out; ``pump`` is the station's pump number."""

    def __init__(self, pump: int, message: str) -> None:
        super().__init__(message)
        self.pump = pump
        self.message = message


class PointUnreachable(FuellingPointError):
    """Offline, or no confirmation in time: nothing is known to have happened."""


class PointRefused(FuellingPointError):
    """The pump answered no (a protocol refusal code rides along)."""

    def __init__(self, pump: int, message: str, code: str = "") -> None:
        super().__init__(pump, message)
        self.code = code


class NotSupported(FuellingPointError):
    """The pump (or its protocol) cannot do this."""


class InvalidValue(FuellingPointError):
    """A value the pump cannot take (too many decimals, too large): nothing was sent."""


class PriceMismatch(FuellingPointError):
    """Prices were sent, but the pump shows others."""

    def __init__(self, pump: int, expected: Mapping[int, Decimal],
                 shown: Mapping[int, Decimal]) -> None:
        super().__init__(pump, "the pump shows other prices than it was sent")
        self.expected = dict(expected)
        self.shown = dict(shown)


# ----------------------------------------------------------------------------- operations


@runtime_checkable
class FuellingPoint(Protocol):
    """One fuelling point; every operation returns once the pump confirmed, or raises."""

    @property
    def pump(self) -> int: ...

    @property
    def online(self) -> bool: ...

    @property
    def state(self) -> PointState | None: ...

    @property
    def capabilities(self) -> Capabilities: ...

    def detail(self) -> Mapping[str, object]:
        """The protocol's own view (raw status, address...), for the API's protocol object."""
        ...

    async def authorize(self, nozzles: frozenset[int], preset: Preset | None) -> None:
        """Release the pump for one filling on one of ``nozzles`` (logical), up to ``preset``."""
        ...

    async def cancel(self) -> None:
        """Take back an authorization before fuel flows."""
        ...

    async def stop(self) -> None:
        """Emergency stop: halt the filling now (harmless when nothing flows)."""
        ...

    async def suspend(self) -> None: ...

    async def resume(self) -> None: ...

    async def close(self) -> None:
        """Switch the fuelling point off: no sale until it is opened again."""
        ...

    async def open(self) -> None:
        """Open a closed fuelling point for sales (IFSF Open_FP; DART reset)."""
        ...

    async def read_sales(self) -> Sequence[FinishedSale]:
        """The finished fillings the pump still holds, oldest first."""
        ...

    async def clear_sale(self, sale: FinishedSale) -> None:
        """Tell the pump a finished filling is recorded (IFSF clears its buffer; others no-op)."""
        ...

    async def read_totals(self, logical: int) -> Totals:
        """The totals counter that covers ``logical`` (see ``Capabilities.totals``)."""
        ...

    async def read_pump_totals(self) -> Totals | None:
        """The pump-wide counter where there is one: a consistency check only."""
        ...

    async def set_prices(self, prices: Mapping[int, Decimal]) -> None:
        """Program the unit price of every logical nozzle; read back where the pump can.

        Raises ``PriceMismatch`` when the read-back differs, ``PointRefused`` when refused.
        """
        ...

    async def identity(self) -> Identity: ...


class FuellingLine(Protocol):
    """One transport and its fuelling points; an async context manager that owns its tasks."""

    @property
    def id(self) -> str: ...

    @property
    def points(self) -> Mapping[int, FuellingPoint]: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None: ...

    def events(self) -> AsyncIterator[PointEvent]: ...

    async def stop_all(self) -> None:
        """Stop every pump of the line at once (where the protocol can, in one command)."""
        ...

    def health(self) -> Mapping[str, object]:
        """Counters for health and metrics: connected, noise, failures."""
        ...
