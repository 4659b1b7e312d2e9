"""The simulated Gilbarco pump's status machine, as one table (PROTOCOLS.md, "Gilbarco
two-wire": "Status answer", "A sale").

From the notes: 6 idle; lifting a nozzle calls (7); authorize (1p) releases the pump (8) and fuel
flows (9); the sale ends in A or B; the pump returns to 6. Stop: from 8 the pump goes to 6, from 9
to C; authorize resumes a stopped pump. Where the notes are silent the table records what the
simulator does:

- A pump can be authorized before the nozzle is lifted (6 -> 8: the station's prepaid sales), and
  with the nozzle already up (7 -> 8), in which case the motor starts after ``start_delay``.
- A filling ends in A when it stops with the nozzle still up (the preset or the pump's maximum
  was reached) and in B when the nozzle is hung up (hanging up in A goes on to B). The notes do
  not say how A and B really differ.
- When A/B return to 6 is an unknown of the notes, so it is the pump's *end profile*: by default
  after the controller read the transaction and the nozzle is back; or without the read, after
  ``end_hold`` seconds; or without the hang-up (the pump then calls again only once the nozzle has
  been hung up and lifted). The model applies the profile; the table has its one row (SETTLED).
- Hanging up while authorized keeps the authorization (the customer may lift again).

A data error (status 0) is not in the table: it is a flag over the status, set by a block with a
bad checksum (or the control API) and cleared by a totals read.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum, IntEnum

__all__ = ["TRANSITIONS", "PumpEvent", "Status", "mermaid", "next_status"]


class Status(IntEnum):
    """The status nibble a pump answers (PROTOCOLS.md, "Status answer")."""

    DATA_ERROR = 0x0
    IDLE = 0x6
    CALLING = 0x7
    AUTHORIZED = 0x8
    FUELLING = 0x9
    END_A = 0xA
    END_B = 0xB
    STOPPED = 0xC
    READY_FOR_DATA = 0xD


class PumpEvent(Enum):
    LIFT = "nozzle lifted"
    HANG = "nozzle hung up"
    AUTHORIZE = "authorize (1p)"
    STOP = "stop (3p or 0xFC)"
    MOTOR_STARTED = "motor started"
    LIMIT = "preset or maximum reached"
    SETTLED = "end of sale settled (end profile)"


_S = Status
_E = PumpEvent

TRANSITIONS: Mapping[tuple[Status, PumpEvent], Status] = {
    (_S.IDLE, _E.LIFT): _S.CALLING,
    (_S.CALLING, _E.HANG): _S.IDLE,
    (_S.IDLE, _E.AUTHORIZE): _S.AUTHORIZED,
    (_S.CALLING, _E.AUTHORIZE): _S.AUTHORIZED,
    (_S.AUTHORIZED, _E.MOTOR_STARTED): _S.FUELLING,
    (_S.AUTHORIZED, _E.STOP): _S.IDLE,
    (_S.AUTHORIZED, _E.HANG): _S.AUTHORIZED,
    (_S.FUELLING, _E.HANG): _S.END_B,
    (_S.FUELLING, _E.LIMIT): _S.END_A,
    (_S.FUELLING, _E.STOP): _S.STOPPED,
    (_S.STOPPED, _E.AUTHORIZE): _S.FUELLING,
    (_S.STOPPED, _E.HANG): _S.END_B,
    (_S.END_A, _E.HANG): _S.END_B,
    (_S.END_A, _E.SETTLED): _S.IDLE,
    (_S.END_B, _E.SETTLED): _S.IDLE,
}


def next_status(status: Status, event: PumpEvent) -> Status | None:
    """The status after ``event``, or None when the pump ignores it in ``status``."""
    return TRANSITIONS.get((status, event))


def mermaid() -> str:
    """The table as a Mermaid state diagram, for the docs."""
    lines = ["stateDiagram-v2"]
    for (source, event), target in TRANSITIONS.items():
        lines.append(f"    {source.name} --> {target.name}: {event.value}")
    return "\n".join(lines)
