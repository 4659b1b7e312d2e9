"""Errors the station core raises toward its users (API, cloud commands).

Each carries a stable ``code`` (what the API puts in ``{"error": {"code": ...}}``), an HTTP status
and a message a person can act on. Lower layers (DART, store) raise their own errors; the
controller translates them here.
"""

from __future__ import annotations


class StationError(Exception):
    code = "station_error"
    status = 409

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownNozzle(StationError):
    code = "unknown_nozzle"
    status = 404


class UnknownPump(StationError):
    code = "unknown_pump"
    status = 404


class NozzleBusy(StationError):
    code = "nozzle_busy"


class NozzleReserved(StationError):
    code = "nozzle_reserved"


class PumpOffline(StationError):
    code = "pump_offline"


class PumpNotReady(StationError):
    code = "pump_not_ready"


class InvalidPreset(StationError):
    code = "invalid_preset"
    status = 400


class PumpDidNotConfirm(StationError):
    code = "pump_no_confirmation"
    status = 504


class StorageUnavailable(StationError):
    code = "storage_unavailable"
    status = 503


class PumpOutOfService(StationError):
    """Taken out of service (impossible figures): a person releases it (API or CLI)."""

    code = "pump_out_of_service"


class PumpStopped(StationError):
    """An emergency stop from the station holds the pump until an attendant resets it."""

    code = "pump_stopped"


class PumpRefused(StationError):
    """The pump answered no to an authorization (its state, a full sale buffer, its own rule):
    the message carries the protocol's reason."""

    code = "pump_refused"
