"""The simulated pump's status machine, as one table (DART rev 2.11, DC1 pump status).

PROTOCOLS.md, "A sale": prices take a pump from "not programmed" to "filling completed"; RESET is
accepted from "filling completed"; AUTHORIZE from "reset"; lifting an allowed nozzle while
authorized starts the filling; hanging it up (or reaching the preset) ends it. Where the spec is
silent the table records what the simulator does, so that a controller is tested against one
documented behaviour:

- RESET is also accepted in "reset", "authorized" (withdraws the authorization), "max reached"
  and "switched off"; it is refused while fuel can flow (filling, suspended).
- STOP while authorized withdraws the authorization (back to "reset"): nothing was dispensed, so
  there is no filling to complete.
- Hanging the nozzle up after "max reached" changes nothing: the filling is over and the pump waits
  for RESET.

A power failure is not in the table: from any status the pump comes back "not programmed".

An event that has no row for the current status is refused: the command is acknowledged on the
line (its frame was fine) and otherwise ignored, as a real pump does.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

from drivers.dart.transactions import PumpStatus

__all__ = ["FUEL_STATES", "TRANSITIONS", "PumpEvent", "mermaid", "next_status"]


class PumpEvent(Enum):
    """What makes a pump change status: a master command or something at the dispenser."""

    PRICES_LOADED = "prices loaded"
    RESET = "RESET"
    AUTHORIZE = "AUTHORIZE"
    NOZZLE_OUT = "allowed nozzle out"
    NOZZLE_IN = "filling nozzle in"
    LIMIT_REACHED = "preset or maximum reached"
    STOP = "STOP"
    SWITCH_OFF = "SWITCH OFF"
    SUSPEND = "SUSPEND"
    RESUME = "RESUME"


_S = PumpStatus
_E = PumpEvent

# A filling is in progress (fuel flows or may flow again) in these states.
FUEL_STATES = frozenset({_S.FILLING, _S.SUSPENDED})

_PROGRAMMED = (
    _S.RESET,
    _S.AUTHORIZED,
    _S.FILLING,
    _S.FILLING_COMPLETED,
    _S.MAX_REACHED,
    _S.SUSPENDED,
)

TRANSITIONS: Mapping[tuple[PumpStatus, PumpEvent], PumpStatus] = {
    (_S.NOT_PROGRAMMED, _E.PRICES_LOADED): _S.FILLING_COMPLETED,
    (_S.RESET, _E.RESET): _S.RESET,
    (_S.AUTHORIZED, _E.RESET): _S.RESET,
    (_S.FILLING_COMPLETED, _E.RESET): _S.RESET,
    (_S.MAX_REACHED, _E.RESET): _S.RESET,
    (_S.SWITCHED_OFF, _E.RESET): _S.RESET,
    (_S.RESET, _E.AUTHORIZE): _S.AUTHORIZED,
    (_S.AUTHORIZED, _E.NOZZLE_OUT): _S.FILLING,
    (_S.FILLING, _E.NOZZLE_IN): _S.FILLING_COMPLETED,
    (_S.SUSPENDED, _E.NOZZLE_IN): _S.FILLING_COMPLETED,
    (_S.FILLING, _E.LIMIT_REACHED): _S.MAX_REACHED,
    (_S.FILLING, _E.STOP): _S.FILLING_COMPLETED,
    (_S.SUSPENDED, _E.STOP): _S.FILLING_COMPLETED,
    (_S.AUTHORIZED, _E.STOP): _S.RESET,
    (_S.FILLING, _E.SUSPEND): _S.SUSPENDED,
    (_S.SUSPENDED, _E.RESUME): _S.FILLING,
    **{(status, _E.SWITCH_OFF): _S.SWITCHED_OFF for status in _PROGRAMMED},
}


def next_status(status: PumpStatus, event: PumpEvent) -> PumpStatus | None:
    """The status after `event`, or None when the pump refuses it in `status`."""
    return TRANSITIONS.get((status, event))


def mermaid() -> str:
    """The table as a Mermaid state diagram, for the docs."""
    lines = ["stateDiagram-v2"]
    for (source, event), target in TRANSITIONS.items():
        lines.append(f"    {source.name} --> {target.name}: {event.value}")
    return "\n".join(lines)
