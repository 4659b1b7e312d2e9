"""Following one IFSF fuelling point from what its node says (PROTOCOLS.md, IFSF "Unsolicited
messages", "A sale as PetroChina's controller runs it").

``FpFollower`` takes the messages of one fuelling point (status, running transaction, buffer
status, error) and the answers to status reads, keeps its state, and says what happened in a
few plain outcomes (``Outcome``) with the station's logical nozzle numbers; the fuelling point
(``drivers.ifsf.point``) turns them into the station's events. No I/O, no clock.

How the end of a filling is told: the buffer status of a payable transaction released by us
(its controller id, or our release when the message has none) ends our filling; one released
by nobody (controller id 0.0: stand-alone mode) or by another controller is a sale the pump
made on its own. A filling whose buffer status never came ends when the point leaves Fuelling.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .address import Lna
from .codec import DataItem
from .config import Member
from .ids import ErrorCode, FpState, TrState
from .messages import BufferStatus, ErrorReport, FpStatus, NozzleForm, RunningTransaction
from .states import explain

__all__ = [
    "AlarmsSeen",
    "Ended",
    "ErrorSeen",
    "FpFollower",
    "Lifted",
    "Outcome",
    "Running",
    "StandAlone",
    "StateSeen",
]

_FLOWING = frozenset({FpState.FUELLING, FpState.SUSPENDED_FUELLING})
_RELEASED = frozenset({FpState.AUTHORISED, FpState.STARTED, FpState.SUSPENDED_STARTED,
                       *_FLOWING})


@dataclass(frozen=True)
class Lifted:
    logical: int | None  # the station's logical nozzle now up; None: every nozzle is in
    previous: int | None


@dataclass(frozen=True)
class StateSeen:
    state: FpState
    previous: FpState | None
    expected: bool  # a row of the state table explains the change


@dataclass(frozen=True)
class Running:
    volume: Decimal
    amount: Decimal
    logical: int | None


@dataclass(frozen=True)
class Ended:
    logical: int | None
    sequence: int | None


@dataclass(frozen=True)
class StandAlone:
    sequence: int
    controller: Lna | None


@dataclass(frozen=True)
class ErrorSeen:
    report: ErrorReport


@dataclass(frozen=True)
class AlarmsSeen:
    """The 8 alarm bytes of a status message changed; None or all zero: no alarm."""

    alarms: bytes | None


Outcome = Lifted | StateSeen | Running | Ended | StandAlone | ErrorSeen | AlarmsSeen


class FpFollower:
    """One IFSF fuelling point as its node reports it; see the module docstring."""

    def __init__(self, member: Member, controller: Lna, form: NozzleForm) -> None:
        self.member = member
        self.controller = controller
        self.form = form
        self.state: FpState | None = None
        self.lifted: int | None = None  # the IFSF logical nozzle up
        self.owner: Lna | None = None
        self.alarms: bytes | None = None
        self.released = False  # we released it and its filling has not ended
        self.flowed = False  # fuel flowed since the release (or the stand-alone start)
        self.nozzle: int | None = None  # the IFSF logical nozzle of the current filling
        self.anomalies = 0
        self.price_refused = False  # 0x37: out of service until a person opens it again
        self._told: set[int] = set()  # sequences whose end was told
        self._end_told = False  # an end was told before its transaction's buffer status
        self._station = {ifsf: station for station, ifsf in member.nozzles.items()}

    # ------------------------------------------------------------ queries

    def station_logical(self, ifsf: int | None) -> int | None:
        return None if ifsf is None else self._station.get(ifsf)

    @property
    def busy(self) -> bool:
        return self.state in _RELEASED

    # ------------------------------------------------------------ inputs

    def released_by_us(self) -> None:
        """Our release was acknowledged: the next filling is ours."""
        self.released = True
        self.flowed = False
        self._end_told = False

    def withdrawn(self) -> None:
        """Our release was taken back (terminate before fuel)."""
        self.released = False

    def status(self, items: tuple[DataItem, ...]) -> list[Outcome]:
        """An FP status message, or the answer to a status read."""
        report = FpStatus.from_items(items)
        out: list[Outcome] = []
        if report.controller is not None:
            self.owner = report.controller
        if report.alarms is not None and report.alarms != self.alarms:
            self.alarms = report.alarms
            out.append(AlarmsSeen(report.alarms if any(report.alarms) else None))
        if report.lifted is not None:
            up = min(report.lifted) if report.lifted else None
            if up != self.lifted:
                previous, self.lifted = self.lifted, up
                out.append(Lifted(self.station_logical(up), self.station_logical(previous)))
        if report.state is not None and report.state != self.state:
            out.extend(self._state(report.state))
        return out

    def running(self, items: tuple[DataItem, ...]) -> list[Outcome]:
        figures = RunningTransaction.from_items(items, self.form)
        if figures.nozzle is not None:
            self.nozzle = figures.nozzle
        if figures.volume is None or figures.amount is None:
            return []
        if figures.volume > 0:
            self.flowed = True
        return [Running(figures.volume, figures.amount, self.station_logical(self.nozzle))]

    def buffer(self, items: tuple[DataItem, ...]) -> list[Outcome]:
        status = BufferStatus.from_items(items)
        if status.state != TrState.PAYABLE or status.sequence is None:
            return []
        if status.sequence in self._told:
            return []
        self._told.add(status.sequence)
        ours = (status.controller == self.controller if status.controller is not None
                or not self.released else True)
        if self._end_told:
            # The end was told when the point left Fuelling: this is that filling's
            # transaction, and only a sale nobody here released is news.
            self._end_told = False
            return [] if ours else [StandAlone(status.sequence, status.controller)]
        if not ours:
            self._over()
            return [StandAlone(status.sequence, status.controller)]
        return self._ended(status.sequence)

    def error(self, error: int, items: tuple[DataItem, ...]) -> list[Outcome]:
        report = ErrorReport.from_items(error, items)
        code = report.error_type if report.error_type is not None else error
        if code == ErrorCode.PRICE_REFUSED:
            self.price_refused = True
        out: list[Outcome] = [ErrorSeen(report)]
        if report.state is not None and report.state != self.state:
            out.extend(self._state(report.state))
        return out

    def opened(self) -> None:
        """Open_FP was accepted: a price refusal no longer holds it."""
        self.price_refused = False

    def reset(self) -> None:
        """The node went away or restarted: nothing of its state is known any more."""
        self.state = None
        self.lifted = None
        self.released = False
        self.flowed = False
        self.nozzle = None

    # ------------------------------------------------------------ internals

    def _state(self, state: FpState) -> list[Outcome]:
        previous, self.state = self.state, state
        expected = previous is None or explain(previous, state) is not None
        if not expected:
            self.anomalies += 1
        out: list[Outcome] = []
        if state in (FpState.STARTED, FpState.FUELLING) and self.nozzle is None:
            self.nozzle = self.lifted
            if not self.released:
                self._end_told = False  # a stand-alone filling starts
        if state in _FLOWING:
            self.flowed = True
        if previous in _FLOWING and state not in _RELEASED and (self.released or self.flowed):
            # The filling is over and no buffer status told it (it may still come: its
            # sequence is then known as told already only if it was ours; see buffer()).
            out.extend(self._ended(None))
        elif previous in _RELEASED and state not in _RELEASED:
            self.released = False
            self.nozzle = None
        out.append(StateSeen(state, previous, expected))
        return out

    def _ended(self, sequence: int | None) -> list[Outcome]:
        if not (self.released or self.flowed) and sequence is None:
            return []
        logical = self.station_logical(self.nozzle if self.nozzle is not None else self.lifted)
        self._over()
        self._end_told = sequence is None
        return [Ended(logical, sequence)]

    def _over(self) -> None:
        self.released = False
        self.flowed = False
        self.nozzle = None
