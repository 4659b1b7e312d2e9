"""The fuelling point's state machine, as one table on IFSF's nine states
(PROTOCOLS.md, IFSF "Fuelling point states", "A sale as PetroChina's controller runs it").

The dispenser owns the state and reports it; the controller sends commands. The table says,
for each state, which command the controller may send and which state it leads to, and which
things at the dispenser (a nozzle lifted, fuel flowing, a fault) move it where. It serves three
purposes:

* ``check_command`` refuses a command the table does not allow in the state last reported
  (``IfsfLocalError``), before anything goes on the wire. Terminate is the exception the caller
  makes: an emergency stop is sent whatever we believe the state is.
* ``explain`` names the event that takes a reported state to the next one; a change no row
  explains is adopted anyway (the dispenser is the truth) and counted as a protocol anomaly
  for the log.
* ``NEUTRAL`` maps each state onto the station's neutral ``PointState``.

Where the notes are silent the table records the choice made: a release while a nozzle is
already up goes straight to Started; a filling that ends (preset reached or nozzle back) goes
to Idle, its transaction to the buffer; a refused price change (0x37) makes the fuelling point
Inoperative until it is opened again.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

from domain.fuelling import PointState

from .errors import IfsfLocalError
from .ids import FpState

__all__ = ["NEUTRAL", "TRANSITIONS", "FpEvent", "check_command", "explain", "mermaid"]


class FpEvent(Enum):
    """What moves a fuelling point: a controller command, or something at the dispenser."""

    OPEN_FP = "Open_FP"
    CLOSE_FP = "Close_FP"
    RELEASE_FP = "Release_FP"
    TERMINATE_FP = "Terminate_FP"
    SUSPEND_FP = "Suspend_FP"
    RESUME_FP = "Resume_FP"
    NOZZLE_UP = "nozzle lifted"
    NOZZLE_DOWN = "nozzle hung up"
    AUTO_RELEASE = "released by the dispenser (stand-alone)"
    FUEL_FLOWS = "fuel flows"
    FILLING_DONE = "preset or limit reached"
    FAILURE = "pump failure"
    PRICE_REFUSED = "price change refused (0x37)"
    RECOVERED = "failure cleared"


COMMANDS = frozenset(
    {
        FpEvent.OPEN_FP,
        FpEvent.CLOSE_FP,
        FpEvent.RELEASE_FP,
        FpEvent.TERMINATE_FP,
        FpEvent.SUSPEND_FP,
        FpEvent.RESUME_FP,
    }
)

_S = FpState
_E = FpEvent

# "Idle or below": the states in which a node takes a price (PROTOCOLS.md, "Price change").
_PRICE_STATES = (_S.INOPERATIVE, _S.CLOSED, _S.IDLE)
_RELEASED = (_S.AUTHORISED, _S.STARTED, _S.SUSPENDED_STARTED, _S.FUELLING, _S.SUSPENDED_FUELLING)
_WORKING = (_S.IDLE, _S.CALLING, *_RELEASED)

TRANSITIONS: Mapping[tuple[FpState, FpEvent], FpState] = {
    (_S.INOPERATIVE, _E.OPEN_FP): _S.IDLE,
    (_S.INOPERATIVE, _E.RECOVERED): _S.CLOSED,
    (_S.CLOSED, _E.OPEN_FP): _S.IDLE,
    (_S.IDLE, _E.OPEN_FP): _S.IDLE,  # opening an open FP changes nothing (a controller restart)
    (_S.CALLING, _E.OPEN_FP): _S.CALLING,
    (_S.IDLE, _E.CLOSE_FP): _S.CLOSED,
    (_S.CALLING, _E.CLOSE_FP): _S.CLOSED,
    (_S.AUTHORISED, _E.CLOSE_FP): _S.CLOSED,
    (_S.IDLE, _E.NOZZLE_UP): _S.CALLING,
    (_S.CALLING, _E.NOZZLE_DOWN): _S.IDLE,
    (_S.IDLE, _E.RELEASE_FP): _S.AUTHORISED,
    (_S.CALLING, _E.RELEASE_FP): _S.STARTED,
    (_S.CALLING, _E.AUTO_RELEASE): _S.STARTED,
    (_S.AUTHORISED, _E.NOZZLE_UP): _S.STARTED,
    (_S.AUTHORISED, _E.TERMINATE_FP): _S.IDLE,
    (_S.STARTED, _E.FUEL_FLOWS): _S.FUELLING,
    (_S.STARTED, _E.NOZZLE_DOWN): _S.IDLE,
    (_S.STARTED, _E.TERMINATE_FP): _S.CALLING,
    (_S.STARTED, _E.SUSPEND_FP): _S.SUSPENDED_STARTED,
    (_S.SUSPENDED_STARTED, _E.RESUME_FP): _S.STARTED,
    (_S.SUSPENDED_STARTED, _E.NOZZLE_DOWN): _S.IDLE,
    (_S.SUSPENDED_STARTED, _E.TERMINATE_FP): _S.CALLING,
    (_S.FUELLING, _E.SUSPEND_FP): _S.SUSPENDED_FUELLING,
    (_S.SUSPENDED_FUELLING, _E.RESUME_FP): _S.FUELLING,
    (_S.FUELLING, _E.NOZZLE_DOWN): _S.IDLE,
    (_S.FUELLING, _E.FILLING_DONE): _S.IDLE,
    (_S.FUELLING, _E.TERMINATE_FP): _S.IDLE,
    (_S.SUSPENDED_FUELLING, _E.NOZZLE_DOWN): _S.IDLE,
    (_S.SUSPENDED_FUELLING, _E.TERMINATE_FP): _S.IDLE,
    **{(state, _E.FAILURE): _S.INOPERATIVE for state in (_S.CLOSED, *_WORKING)},
    **{(state, _E.PRICE_REFUSED): _S.INOPERATIVE for state in _PRICE_STATES},
}

NEUTRAL: Mapping[FpState, PointState] = {
    _S.INOPERATIVE: PointState.INOPERATIVE,
    _S.CLOSED: PointState.CLOSED,
    _S.IDLE: PointState.IDLE,
    _S.CALLING: PointState.CALLING,
    _S.AUTHORISED: PointState.AUTHORIZED,
    _S.STARTED: PointState.STARTED,
    _S.SUSPENDED_STARTED: PointState.SUSPENDED,
    _S.FUELLING: PointState.FUELLING,
    _S.SUSPENDED_FUELLING: PointState.SUSPENDED,
}


def check_command(state: FpState | None, event: FpEvent) -> FpState | None:
    """The state ``event`` (a command) leads to; ``IfsfLocalError`` if the table refuses it.

    With no state known yet (nothing reported) only Open_FP is allowed.
    """
    if event not in COMMANDS:
        raise IfsfLocalError(f"{event.value} is not a controller command")
    if state is None:
        if event is FpEvent.OPEN_FP:
            return None
        raise IfsfLocalError(f"{event.value} before the fuelling point reported its state")
    target = TRANSITIONS.get((state, event))
    if target is None:
        raise IfsfLocalError(f"{event.value} is not allowed in {state.name}")
    return target


def explain(old: FpState | None, new: FpState) -> FpEvent | None:
    """The event that takes ``old`` to ``new`` in one step, or None when no row does.

    A first report (``old`` None) and an unchanged state need no explanation: they return
    None too, and the caller tells them apart from an anomaly.
    """
    if old is None or old == new:
        return None
    for (source, event), target in TRANSITIONS.items():
        if source == old and target == new:
            return event
    return None


def mermaid() -> str:
    """The table as a Mermaid state diagram, for the docs."""
    lines = ["stateDiagram-v2"]
    for (source, event), target in TRANSITIONS.items():
        lines.append(f"    {source.name} --> {target.name}: {event.value}")
    return "\n".join(lines)
