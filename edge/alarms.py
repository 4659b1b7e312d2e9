"""The station's alarm list: what was raised, whether it still holds, and who has seen it.

Built from the stored events (`pump.alarm`, `tank.alert`, `printer.alarm`, `voice.alarm`,
`cloud.alarm`, `reconciliation.discrepancy`) so that it survives restarts. An alarm is *cleared*
by the thing that raised it (the pump clears its alarm, the tank's level comes back, the printer
prints again) and *acknowledged* by a person (`POST /api/v1/alarms/{seq}/ack`, audited); the two
are independent: an acknowledged alarm that still holds stays on the list as active. Discrepancies
and cloud alarms are one-off: they have nothing to clear, only to acknowledge.

A pump's alarms live in the pump too (the forecourt view): one the pump no longer has (it was
reset, or the daemon restarted since) counts as cleared even without a clearing event.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any

from domain.model import rfc3339
from edge.store.console import Ack, AlarmEvent

#: Event types that raise something a person should see.
RAISING = ("pump.alarm", "tank.alert", "printer.alarm", "voice.alarm", "cloud.alarm",
           "reconciliation.discrepancy")
#: Event types that only clear what another raised.
CLEARING = ("pump.alarm_cleared", "pump.released")
TYPES = RAISING + CLEARING


def _key(event: AlarmEvent) -> tuple[Any, ...] | None:
    """What a later event must match to clear this one; None for one-off alarms."""
    data = event.data
    if event.type in ("pump.alarm", "pump.alarm_cleared"):
        return ("pump", data.get("pump"), data.get("kind"))
    if event.type == "pump.released":
        return ("pump", data.get("pump"), "out_of_service")
    if event.type == "tank.alert":
        return ("tank", data.get("tank"), data.get("kind"))
    if event.type == "printer.alarm":
        return ("printer", data.get("printer"))
    if event.type == "voice.alarm":
        return ("voice", data.get("kind"))
    return None


def _clears(event: AlarmEvent) -> bool:
    data = event.data
    return (event.type in CLEARING
            or (event.type == "tank.alert" and data.get("status") == "cleared")
            or (event.type == "printer.alarm" and data.get("alarm") == "recovered")
            or (event.type == "voice.alarm" and data.get("active") is False))


def _kind(event: AlarmEvent) -> str:
    data = event.data
    if event.type == "printer.alarm":
        return str(data.get("alarm"))
    return str(data.get("kind") or event.type)


def alarm_list(events: list[AlarmEvent], acks: Mapping[int, Ack], *,
               pump_alarms: Mapping[int, set[str]], zone: tzinfo | None,
               limit: int = 200) -> dict[str, Any]:
    """The alarms among `events` (oldest first), newest first, at most `limit`.

    `pump_alarms` is each pump's active alarm kinds now (the forecourt view)."""
    open_by_key: dict[tuple[Any, ...], int] = {}
    cleared_at: dict[int, datetime | None] = {}
    raised: list[AlarmEvent] = []
    for event in events:
        key = _key(event)
        if _clears(event):
            if key is not None and key in open_by_key:
                cleared_at[open_by_key.pop(key)] = event.ts
            continue
        if key is not None and key in open_by_key:
            # A new raise of the same thing (a printer's next condition) ends the previous one.
            cleared_at[open_by_key.pop(key)] = event.ts
        raised.append(event)
        if key is not None:
            open_by_key[key] = event.seq
    shown = []
    for event in reversed(raised[-limit:]):
        key = _key(event)
        if key is None:
            status = "event"
        elif event.seq in cleared_at:
            status = "cleared"
        elif key[0] == "pump" and key[2] not in pump_alarms.get(key[1], set()):
            status = "cleared"  # the pump no longer has it (reset, or the daemon restarted)
        else:
            status = "active"
        ack = acks.get(event.seq)
        when = cleared_at.get(event.seq)
        shown.append({
            "seq": event.seq, "type": event.type, "kind": _kind(event),
            "pump": event.data.get("pump"), "tank": event.data.get("tank"),
            "at": _local(event.ts, zone), "status": status,
            "cleared_at": None if when is None else _local(when, zone),
            "acknowledged": None if ack is None else {"by": ack.user,
                                                      "at": _local(ack.at, zone)},
            "data": event.data,
        })
    return {"alarms": shown,
            "active": sum(1 for a in shown if a["status"] == "active"),
            "unacknowledged": sum(1 for a in shown if a["acknowledged"] is None)}


def _local(value: datetime, zone: tzinfo | None) -> str:
    return rfc3339(value.astimezone(zone) if zone is not None else value)
