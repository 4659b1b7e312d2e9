"""The station's state machines, as data.

Each lifecycle is an ``Enum`` of states and one transition table, so that the code, the docs
(``python -m domain.states`` prints the Mermaid diagrams in ``docs/state-machines.md``) and the
tests all read the same table (the h11 ``_state.py`` habit).

* ``FuellingPoint``: what the controller knows of one dispenser, driven by the neutral
  fuelling point's events (``domain.fuelling``), its own start-up and its sale recording.
* ``AuthorizationState``: one permission to fuel, from the request to its end.
* ``OrderStatus``: an app order (prepaid in the phone app), from ``order.create`` to its end.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class InvalidTransition(Exception):
    """An event that the current state does not allow; carries both for the log."""

    def __init__(self, machine: str, state: StrEnum, event: StrEnum) -> None:
        super().__init__(f"{machine}: {event.value!r} is not allowed in state {state.value!r}")
        self.machine = machine
        self.state = state
        self.event = event


class FuellingPoint(StrEnum):
    """The controller's view of one pump; the values are the API's ``state`` strings."""

    OFFLINE = "offline"  # the pump does not answer: shown as such, never guessed at
    NOT_PROGRAMMED = "not_programmed"  # online, starting up: recovery, prices, read-back
    IDLE = "idle"  # nozzles in, ready to be authorized
    CALLING = "calling"  # a nozzle is out, no authorization (attendant mode)
    AUTHORIZED = "authorized"  # released, waiting for fuel (nozzle in or just lifted)
    FUELLING = "fuelling"  # fuel is flowing
    COMPLETING = "completing"  # the filling ended; reading and recording the sale
    STOPPED = "stopped"  # closed, stopped or suspended at the pump or by the station


class PumpSignal(StrEnum):
    """What the controller learns: from the fuelling point (``domain.fuelling`` events, its
    ``PointState`` folded into five kinds) and from its own start-up and sale recording."""

    ONLINE = "online"  # the point announced itself: start-up begins
    OFFLINE = "offline"
    RESTARTED = "restarted"  # the pump lost its state (power cycle): start-up again
    NOT_READY = "not_ready"  # prices lost or refused, pump inoperative: start-up again
    READY = "ready"  # start-up done: recovered, prices confirmed
    POINT_IDLE = "point_idle"  # PointState idle
    POINT_CALLING = "point_calling"  # PointState calling
    POINT_AUTHORIZED = "point_authorized"  # PointState authorized or started
    POINT_FUELLING = "point_fuelling"  # PointState fuelling
    POINT_HALTED = "point_halted"  # PointState closed, stopped or suspended
    FILLING_ENDED = "filling_ended"  # the pump says the filling is over
    SALE_SETTLED = "sale_settled"  # the sale is durable (or nothing was dispensed)


_FP = FuellingPoint
_S = PumpSignal

_POINT_SIGNALS = (_S.POINT_IDLE, _S.POINT_CALLING, _S.POINT_AUTHORIZED, _S.POINT_FUELLING,
                  _S.POINT_HALTED)
# Where a pump goes when it says what it is doing, from a state that takes it as news.
_FOLLOW: dict[PumpSignal, FuellingPoint] = {
    _S.POINT_IDLE: _FP.IDLE,
    _S.POINT_CALLING: _FP.CALLING,
    _S.POINT_AUTHORIZED: _FP.AUTHORIZED,
    _S.POINT_FUELLING: _FP.FUELLING,
    _S.POINT_HALTED: _FP.STOPPED,
    _S.FILLING_ENDED: _FP.COMPLETING,  # a filling too short to be seen flowing
}
_ONLINE_STATES = [state for state in _FP if state is not _FP.OFFLINE]

FUELLING_POINT_TRANSITIONS: Mapping[tuple[FuellingPoint, PumpSignal], FuellingPoint] = {
    (_FP.OFFLINE, _S.ONLINE): _FP.NOT_PROGRAMMED,
    (_FP.OFFLINE, _S.OFFLINE): _FP.OFFLINE,
    # Nothing a pump says counts before it announced itself.
    **{(_FP.OFFLINE, signal): _FP.OFFLINE for signal in (*_POINT_SIGNALS, _S.FILLING_ENDED)},
    # Start-up reads the pump itself (recovery, prices) and decides what its state means.
    **{(_FP.NOT_PROGRAMMED, signal): _FP.NOT_PROGRAMMED
       for signal in (*_POINT_SIGNALS, _S.FILLING_ENDED)},
    (_FP.NOT_PROGRAMMED, _S.READY): _FP.IDLE,
    # Ready pumps follow what they say.
    **{(state, signal): target for state in (_FP.IDLE, _FP.CALLING, _FP.AUTHORIZED, _FP.STOPPED)
       for signal, target in _FOLLOW.items()},
    # Once fuel flows, the filling ends only through completing: leaving "fuelling" for idle
    # or calling means the pump finished it.
    (_FP.FUELLING, _S.POINT_FUELLING): _FP.FUELLING,
    (_FP.FUELLING, _S.POINT_AUTHORIZED): _FP.FUELLING,
    (_FP.FUELLING, _S.POINT_HALTED): _FP.STOPPED,
    (_FP.FUELLING, _S.POINT_IDLE): _FP.COMPLETING,
    (_FP.FUELLING, _S.POINT_CALLING): _FP.COMPLETING,
    (_FP.FUELLING, _S.FILLING_ENDED): _FP.COMPLETING,
    # While the sale is read and recorded, the pump may already serve the next customer's
    # nozzle; what it says is applied once the sale is settled.
    **{(_FP.COMPLETING, signal): _FP.COMPLETING
       for signal in (*_POINT_SIGNALS, _S.FILLING_ENDED)},
    (_FP.COMPLETING, _S.SALE_SETTLED): _FP.IDLE,
    # Everywhere online: the line, a restart, lost prices.
    **{(state, _S.OFFLINE): _FP.OFFLINE for state in _ONLINE_STATES},
    **{(state, _S.ONLINE): _FP.NOT_PROGRAMMED for state in _ONLINE_STATES},
    **{(state, _S.RESTARTED): _FP.NOT_PROGRAMMED for state in _ONLINE_STATES},
    **{(state, _S.NOT_READY): _FP.NOT_PROGRAMMED for state in _ONLINE_STATES},
}

#: States in which a new authorization may be given (the rest of the checks are the
#: controller's: storage, reservation, out of service).
AUTHORIZABLE = frozenset({_FP.IDLE, _FP.CALLING})


class AuthorizationState(StrEnum):
    REQUESTED = "requested"  # recorded, commands on their way to the pump
    AUTHORIZED = "authorized"  # the pump confirmed (DC1 authorized)
    FUELLING = "fuelling"  # fuel is flowing under it
    COMPLETED = "completed"  # its sale is durable
    UNUSED = "unused"  # ended without fuel (nozzle hung up before flow, or stopped)
    FAILED = "failed"  # the pump refused or did not confirm
    CANCELLED = "cancelled"  # cancelled before fuelling (attendant, app, or pump reset)
    EXPIRED = "expired"  # nozzle not lifted in time


class AuthorizationSignal(StrEnum):
    CONFIRMED = "pump_confirmed"
    REFUSED = "pump_refused"
    FLOW_STARTED = "flow_started"
    SALE_RECORDED = "sale_recorded"
    ENDED_EMPTY = "ended_without_fuel"
    CANCEL = "cancel"
    EXPIRE = "expire"


_A = AuthorizationState
_AS = AuthorizationSignal

AUTHORIZATION_TRANSITIONS: Mapping[tuple[AuthorizationState, AuthorizationSignal],
                                   AuthorizationState] = {
    (_A.REQUESTED, _AS.CONFIRMED): _A.AUTHORIZED,
    (_A.REQUESTED, _AS.REFUSED): _A.FAILED,
    (_A.REQUESTED, _AS.CANCEL): _A.CANCELLED,
    # A confirmation can be missed while fuel already flows (crash between the two).
    (_A.REQUESTED, _AS.FLOW_STARTED): _A.FUELLING,
    (_A.REQUESTED, _AS.SALE_RECORDED): _A.COMPLETED,
    (_A.REQUESTED, _AS.ENDED_EMPTY): _A.UNUSED,
    (_A.AUTHORIZED, _AS.FLOW_STARTED): _A.FUELLING,
    (_A.AUTHORIZED, _AS.SALE_RECORDED): _A.COMPLETED,
    (_A.AUTHORIZED, _AS.ENDED_EMPTY): _A.UNUSED,
    (_A.AUTHORIZED, _AS.CANCEL): _A.CANCELLED,
    (_A.AUTHORIZED, _AS.EXPIRE): _A.EXPIRED,
    (_A.FUELLING, _AS.SALE_RECORDED): _A.COMPLETED,
    (_A.FUELLING, _AS.ENDED_EMPTY): _A.UNUSED,
}

ACTIVE_AUTHORIZATION_STATES = frozenset({_A.REQUESTED, _A.AUTHORIZED, _A.FUELLING})


class OrderStatus(StrEnum):
    """An app order's status, as ``order.updated`` events report it (CONTRACT section 4)."""

    ACCEPTED = "accepted"  # checked and recorded; the nozzle is reserved for it
    REJECTED = "rejected"  # refused, with a reason; nothing was authorized
    AUTHORIZED = "authorized"  # the pump confirmed the preset
    FUELLING = "fuelling"  # fuel flows
    COMPLETED = "completed"  # its sale is durable; refund = paid - amount
    EXPIRED = "expired"  # the nozzle was not lifted in time; the pump was reset
    CANCELLED = "cancelled"  # cancelled before fuelling, or ended without fuel
    # Fuel flowed but the sale could not be rebuilt with two agreeing witnesses after a
    # restart: a person settles it (docs/runbook.md, "recovery needs review").
    PENDING_REVIEW = "pending_review"


class OrderSignal(StrEnum):
    AUTHORIZED = "pump_authorized"
    REFUSED = "refused"
    FLOW_STARTED = "flow_started"
    SALE_RECORDED = "sale_recorded"
    LIFT_TIMEOUT = "lift_timeout"
    CANCEL = "cancel"
    ENDED_EMPTY = "ended_without_fuel"
    NEEDS_REVIEW = "needs_review"
    REVIEW_DISMISSED = "review_dismissed"


_O = OrderStatus
_OS = OrderSignal

ORDER_TRANSITIONS: Mapping[tuple[OrderStatus, OrderSignal], OrderStatus] = {
    (_O.ACCEPTED, _OS.AUTHORIZED): _O.AUTHORIZED,
    (_O.ACCEPTED, _OS.REFUSED): _O.REJECTED,
    (_O.ACCEPTED, _OS.CANCEL): _O.CANCELLED,
    (_O.ACCEPTED, _OS.FLOW_STARTED): _O.FUELLING,
    (_O.AUTHORIZED, _OS.FLOW_STARTED): _O.FUELLING,
    (_O.AUTHORIZED, _OS.LIFT_TIMEOUT): _O.EXPIRED,
    (_O.AUTHORIZED, _OS.CANCEL): _O.CANCELLED,
    (_O.AUTHORIZED, _OS.ENDED_EMPTY): _O.CANCELLED,
    (_O.AUTHORIZED, _OS.SALE_RECORDED): _O.COMPLETED,
    (_O.FUELLING, _OS.SALE_RECORDED): _O.COMPLETED,
    (_O.FUELLING, _OS.ENDED_EMPTY): _O.CANCELLED,
    (_O.AUTHORIZED, _OS.NEEDS_REVIEW): _O.PENDING_REVIEW,
    (_O.FUELLING, _OS.NEEDS_REVIEW): _O.PENDING_REVIEW,
    (_O.PENDING_REVIEW, _OS.SALE_RECORDED): _O.COMPLETED,
    (_O.PENDING_REVIEW, _OS.REVIEW_DISMISSED): _O.CANCELLED,
}

OPEN_ORDER_STATUSES = frozenset({_O.ACCEPTED, _O.AUTHORIZED, _O.FUELLING, _O.PENDING_REVIEW})


def fuelling_point_next(state: FuellingPoint, signal: PumpSignal) -> FuellingPoint:
    try:
        return FUELLING_POINT_TRANSITIONS[(state, signal)]
    except KeyError:
        raise InvalidTransition("fuelling point", state, signal) from None


def authorization_next(state: AuthorizationState,
                       signal: AuthorizationSignal) -> AuthorizationState:
    try:
        return AUTHORIZATION_TRANSITIONS[(state, signal)]
    except KeyError:
        raise InvalidTransition("authorization", state, signal) from None


def order_next(status: OrderStatus, signal: OrderSignal) -> OrderStatus:
    try:
        return ORDER_TRANSITIONS[(status, signal)]
    except KeyError:
        raise InvalidTransition("order", status, signal) from None


def mermaid(table: Mapping[tuple[Any, Any], Any], *, skip_self: bool = True) -> str:
    """A Mermaid ``stateDiagram-v2`` of a transition table (self-loops left out for legibility)."""
    lines = ["stateDiagram-v2"]
    edges: dict[tuple[str, str], list[str]] = {}
    for (source, signal), target in table.items():
        if skip_self and source == target:
            continue
        edges.setdefault((source.value, target.value), []).append(signal.value)
    for (start, end), signals in sorted(edges.items()):
        lines.append(f"    {start} --> {end}: {', '.join(sorted(signals))}")
    return "\n".join(lines)


def _main() -> None:
    sys.stdout.write("## Fuelling point\n\n```mermaid\n")
    sys.stdout.write(mermaid(FUELLING_POINT_TRANSITIONS) + "\n```\n\n")
    sys.stdout.write("## Authorization\n\n```mermaid\n")
    sys.stdout.write(mermaid(AUTHORIZATION_TRANSITIONS) + "\n```\n\n")
    sys.stdout.write("## App order\n\n```mermaid\n")
    sys.stdout.write(mermaid(ORDER_TRANSITIONS) + "\n```\n")


if __name__ == "__main__":
    _main()
