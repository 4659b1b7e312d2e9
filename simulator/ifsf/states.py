"""The simulated fuelling point's states, as one table (PROTOCOLS.md, IFSF "Fuelling point
states", "A sale as PetroChina's controller runs it", "Price change").

Written from the field notes for the simulator alone. The sale the notes describe: a release
(with a preset) moves an idle fuelling point to Authorised (5); the nozzle lifted, Started (6);
fuel flowing, Fuelling (8); at the end the transaction goes to the buffer and the point is Idle
(3) again. A dispenser starts Closed (2) and takes no command but Open_FP until it is opened; a
price change refused with 0x37 makes it Inoperative (1) until it is opened again. Where the
notes are silent the table records what the simulator does, so that a controller is tested
against one documented behaviour:

- A release while a nozzle is already up (Calling) starts at once (Started).
- Terminate while released and no fuel has flowed: back to Idle (nozzle in) or Calling (up);
  while fuel flowed: the filling ends, its transaction goes to the buffer, Idle.
- Hanging up after Started without fuel: Idle, no transaction.
- In stand-alone mode the dispenser releases itself when a nozzle is lifted.

An event without a row in the current state is refused: a command gets item code 3 ("command
refused in this state"), a customer action changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

from drivers.ifsf.ids import FpState

__all__ = ["OPEN_STATES", "PRICE_STATES", "TRANSITIONS", "SimEvent", "mermaid", "next_state"]


class SimEvent(Enum):
    OPEN = "Open_FP"
    CLOSE = "Close_FP"
    RELEASE = "Release_FP"
    TERMINATE = "Terminate_FP"
    TERMINATE_EMPTY = "Terminate_FP, nozzle up, no fuel"
    SUSPEND = "Suspend_FP"
    RESUME = "Resume_FP"
    LIFT = "nozzle lifted"
    HANG = "nozzle hung up"
    AUTO_RELEASE = "stand-alone release"
    FLOW = "fuel flows"
    END = "filling ended"
    PRICE_REFUSED = "price change refused (0x37)"


_S = FpState
_E = SimEvent

# A price change waits until every fuelling point of the node is in one of these ("Idle or below").
PRICE_STATES = frozenset({_S.INOPERATIVE, _S.CLOSED, _S.IDLE})
# Opened: takes presets and releases.
OPEN_STATES = frozenset({_S.IDLE, _S.CALLING})

TRANSITIONS: Mapping[tuple[FpState, SimEvent], FpState] = {
    (_S.CLOSED, _E.OPEN): _S.IDLE,
    (_S.INOPERATIVE, _E.OPEN): _S.IDLE,
    (_S.IDLE, _E.OPEN): _S.IDLE,
    (_S.CALLING, _E.OPEN): _S.CALLING,
    (_S.IDLE, _E.CLOSE): _S.CLOSED,
    (_S.CALLING, _E.CLOSE): _S.CLOSED,
    (_S.AUTHORISED, _E.CLOSE): _S.CLOSED,
    (_S.IDLE, _E.LIFT): _S.CALLING,
    (_S.CALLING, _E.HANG): _S.IDLE,
    (_S.CALLING, _E.AUTO_RELEASE): _S.STARTED,
    (_S.IDLE, _E.RELEASE): _S.AUTHORISED,
    (_S.CALLING, _E.RELEASE): _S.STARTED,
    (_S.AUTHORISED, _E.LIFT): _S.STARTED,
    (_S.AUTHORISED, _E.TERMINATE): _S.IDLE,
    (_S.STARTED, _E.FLOW): _S.FUELLING,
    (_S.STARTED, _E.HANG): _S.IDLE,
    (_S.STARTED, _E.TERMINATE_EMPTY): _S.CALLING,
    (_S.STARTED, _E.SUSPEND): _S.SUSPENDED_STARTED,
    (_S.SUSPENDED_STARTED, _E.RESUME): _S.STARTED,
    (_S.SUSPENDED_STARTED, _E.HANG): _S.IDLE,
    (_S.SUSPENDED_STARTED, _E.TERMINATE_EMPTY): _S.CALLING,
    (_S.FUELLING, _E.SUSPEND): _S.SUSPENDED_FUELLING,
    (_S.SUSPENDED_FUELLING, _E.RESUME): _S.FUELLING,
    (_S.FUELLING, _E.END): _S.IDLE,
    (_S.SUSPENDED_FUELLING, _E.END): _S.IDLE,
    (_S.IDLE, _E.PRICE_REFUSED): _S.INOPERATIVE,
    (_S.CLOSED, _E.PRICE_REFUSED): _S.INOPERATIVE,
    (_S.INOPERATIVE, _E.PRICE_REFUSED): _S.INOPERATIVE,
}


def next_state(state: FpState, event: SimEvent) -> FpState | None:
    """The state after ``event``, or None when the fuelling point refuses it in ``state``."""
    return TRANSITIONS.get((state, event))


def mermaid() -> str:
    lines = ["stateDiagram-v2"]
    for (source, event), target in TRANSITIONS.items():
        lines.append(f"    {source.name} --> {target.name}: {event.value}")
    return "\n".join(lines)
