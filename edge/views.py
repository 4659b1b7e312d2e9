"""How a pump and its nozzles look from outside: the API's forecourt and the live events.

The states are the API's strings (docs/api.md, "Pump and nozzle states"); what only one
protocol knows (DART's DC1 status, an IFSF node) is in the ``protocol`` object.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from domain.model import decimal_str
from domain.states import FuellingPoint

if TYPE_CHECKING:
    from edge.pump import PumpController

# Pump states every nozzle of the pump shares.
_WHOLE_PUMP = (FuellingPoint.NOT_PROGRAMMED, FuellingPoint.STOPPED)
_FLOWING = (FuellingPoint.FUELLING, FuellingPoint.COMPLETING)


def pump_view(pump: PumpController) -> dict[str, Any]:
    caps = pump.capabilities
    decimals = (caps.decimals if caps is not None and caps.decimals else pump.settings.decimals)
    active = pump.nozzle_out or (pump.selected if pump.state in _FLOWING else None)
    auth_nozzle = pump.auth.nozzle if pump.auth else None
    nozzles = []
    for nozzle in sorted(pump.settings.nozzles, key=lambda n: n.number):
        live = nozzle.logical == active or auth_nozzle == nozzle.number
        if not pump.online:
            state = "offline"
        elif live or pump.state in _WHOLE_PUMP:
            state = pump.state.value
        elif pump.reserved_by is not None:
            state = "reserved"
        else:
            state = "idle"
        nozzles.append({
            "number": nozzle.number, "logical": nozzle.logical, "grade": nozzle.grade,
            "state": state,
            "volume": decimal_str(pump.volume if live else Decimal(0), decimals.volume),
            "amount": decimal_str(pump.amount if live else Decimal(0), 2),
        })
    alarms = list(pump.alarms.values())
    service = pump.out_of_service
    state = pump.state
    if pump.latched is not None and state in (FuellingPoint.IDLE, FuellingPoint.CALLING,
                                              FuellingPoint.AUTHORIZED):
        state = FuellingPoint.STOPPED  # held by the station's emergency stop until reset
    return {
        "number": pump.number, "online": pump.online, "state": state.value,
        "stopped_by_station": pump.latched,
        "alarm": alarms[-1]["kind"] if alarms else None,
        "alarms": alarms,
        "out_of_service": None if service is None else {
            "reason": service.reason, "since": service.since.isoformat(),
            "details": service.details},
        "blocked": sorted(pump.blocked.values()),
        "authorization_id": pump.auth.id if pump.auth else None,
        "checks": list(caps.checks) if caps is not None else [],
        "protocol": dict(pump.point.detail()),
        "nozzles": nozzles,
    }
