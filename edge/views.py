"""How a pump and its nozzles look from outside: the API's forecourt and the live events."""

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
    dv, da = pump.settings.decimals.volume, pump.settings.decimals.amount
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
            "volume": decimal_str(pump.volume if live else Decimal(0), dv),
            "amount": decimal_str(pump.amount if live else Decimal(0), da),
        })
    return {
        "number": pump.number, "online": pump.online, "state": pump.state.value,
        "status": pump.status.name.lower() if pump.status is not None else None,
        "alarm": pump.alarm, "authorization_id": pump.auth.id if pump.auth else None,
        "nozzles": nozzles,
    }
