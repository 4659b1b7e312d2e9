"""The station's state machines, as data.

Each lifecycle is an ``Enum`` of states and one transition table, so that the code, the docs
(``python -m domain.states`` prints the Mermaid diagrams in ``docs/state-machines.md``) and the
tests all read the same table (the h11 ``_state.py`` habit).

* ``FuellingPoint``: what the controller knows of one dispenser, driven by the pump's DART
  status (DC1), its nozzle (DC3) and the line (online/offline).
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
    OFFLINE = "offline"  # the pump does not answer: shown as such, never guessed at
    NOT_PROGRAMMED = "not_programmed"  # online, waiting for its prices
    IDLE = "idle"  # nozzles in, ready to be authorized
    CALLING = "calling"  # a nozzle is out, no authorization (attendant mode)
    AUTHORIZED = "authorized"  # authorized, waiting for the nozzle to be lifted
    FUELLING = "fuelling"  # fuel is flowing
    COMPLETING = "completing"  # the pump finished; reading final figures and totals
    STOPPED = "stopped"  # switched off or suspended at the pump or by an emergency stop


class PumpSignal(StrEnum):
    """What the controller learns from the line and the pump."""

    ONLINE = "online"
    OFFLINE = "offline"
    NOT_PROGRAMMED = "status_not_programmed"
    READY = "status_ready"  # DC1 reset or filling completed, nozzle in
    NOZZLE_OUT = "nozzle_out"
    NOZZLE_IN = "nozzle_in"
    AUTHORIZED = "status_authorized"
    FILLING = "status_filling"
    FILLING_ENDED = "status_filling_ended"  # DC1 filling completed or max reached after a filling
    SALE_SETTLED = "sale_settled"  # final figures read and the sale durable (or nothing dispensed)
    SWITCHED_OFF = "status_switched_off"


_FP = FuellingPoint
_S = PumpSignal

# Signals valid in every online state.
_ANYWHERE: dict[PumpSignal, FuellingPoint] = {
    _S.OFFLINE: _FP.OFFLINE,
    _S.NOT_PROGRAMMED: _FP.NOT_PROGRAMMED,
    _S.SWITCHED_OFF: _FP.STOPPED,
}

FUELLING_POINT_TRANSITIONS: Mapping[tuple[FuellingPoint, PumpSignal], FuellingPoint] = {
    (_FP.OFFLINE, _S.ONLINE): _FP.NOT_PROGRAMMED,
    (_FP.OFFLINE, _S.OFFLINE): _FP.OFFLINE,
    (_FP.NOT_PROGRAMMED, _S.READY): _FP.IDLE,
    (_FP.NOT_PROGRAMMED, _S.NOZZLE_OUT): _FP.NOT_PROGRAMMED,
    (_FP.NOT_PROGRAMMED, _S.NOZZLE_IN): _FP.NOT_PROGRAMMED,
    # A controller (re)starting finds the pump in whatever state it is in.
    (_FP.NOT_PROGRAMMED, _S.AUTHORIZED): _FP.AUTHORIZED,
    (_FP.NOT_PROGRAMMED, _S.FILLING): _FP.FUELLING,
    (_FP.NOT_PROGRAMMED, _S.FILLING_ENDED): _FP.COMPLETING,
    (_FP.IDLE, _S.READY): _FP.IDLE,
    (_FP.IDLE, _S.NOZZLE_OUT): _FP.CALLING,
    (_FP.IDLE, _S.NOZZLE_IN): _FP.IDLE,
    (_FP.IDLE, _S.AUTHORIZED): _FP.AUTHORIZED,
    (_FP.IDLE, _S.FILLING): _FP.FUELLING,
    (_FP.IDLE, _S.FILLING_ENDED): _FP.COMPLETING,
    (_FP.CALLING, _S.NOZZLE_OUT): _FP.CALLING,
    (_FP.CALLING, _S.NOZZLE_IN): _FP.IDLE,
    (_FP.CALLING, _S.READY): _FP.CALLING,
    (_FP.CALLING, _S.AUTHORIZED): _FP.AUTHORIZED,
    (_FP.CALLING, _S.FILLING): _FP.FUELLING,
    (_FP.AUTHORIZED, _S.AUTHORIZED): _FP.AUTHORIZED,
    (_FP.AUTHORIZED, _S.NOZZLE_OUT): _FP.AUTHORIZED,
    (_FP.AUTHORIZED, _S.NOZZLE_IN): _FP.AUTHORIZED,
    (_FP.AUTHORIZED, _S.FILLING): _FP.FUELLING,
    (_FP.AUTHORIZED, _S.READY): _FP.IDLE,  # authorization reset or expired before any fuel
    (_FP.AUTHORIZED, _S.FILLING_ENDED): _FP.COMPLETING,
    (_FP.FUELLING, _S.FILLING): _FP.FUELLING,
    (_FP.FUELLING, _S.NOZZLE_OUT): _FP.FUELLING,
    (_FP.FUELLING, _S.NOZZLE_IN): _FP.FUELLING,
    (_FP.FUELLING, _S.FILLING_ENDED): _FP.COMPLETING,
    (_FP.COMPLETING, _S.FILLING_ENDED): _FP.COMPLETING,
    (_FP.COMPLETING, _S.NOZZLE_OUT): _FP.COMPLETING,
    (_FP.COMPLETING, _S.NOZZLE_IN): _FP.COMPLETING,
    (_FP.COMPLETING, _S.SALE_SETTLED): _FP.IDLE,
    (_FP.COMPLETING, _S.READY): _FP.COMPLETING,
    (_FP.STOPPED, _S.READY): _FP.IDLE,
    (_FP.STOPPED, _S.NOZZLE_OUT): _FP.STOPPED,
    (_FP.STOPPED, _S.NOZZLE_IN): _FP.STOPPED,
    (_FP.STOPPED, _S.FILLING_ENDED): _FP.COMPLETING,
    **{(state, signal): target for state in _FP if state is not _FP.OFFLINE
       for signal, target in _ANYWHERE.items()},
}


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


class OrderSignal(StrEnum):
    AUTHORIZED = "pump_authorized"
    REFUSED = "refused"
    FLOW_STARTED = "flow_started"
    SALE_RECORDED = "sale_recorded"
    LIFT_TIMEOUT = "lift_timeout"
    CANCEL = "cancel"
    ENDED_EMPTY = "ended_without_fuel"


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
}

OPEN_ORDER_STATUSES = frozenset({_O.ACCEPTED, _O.AUTHORIZED, _O.FUELLING})


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
