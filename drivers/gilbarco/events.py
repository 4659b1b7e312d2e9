"""Events of the Gilbarco line core, read with ``GilbarcoBus.next_event``."""

from __future__ import annotations

from dataclasses import dataclass

from .commands import PumpStatus
from .errors import GilbarcoProtocolError
from .requests import Answer

__all__ = [
    "BusEvent",
    "CommandDone",
    "CommandFailed",
    "LineNoise",
    "PumpOffline",
    "PumpOnline",
    "StatusChanged",
]


@dataclass(frozen=True)
class StatusChanged:
    """A pump answered a status other than the last one (``previous`` None: the first)."""

    pump: int
    status: PumpStatus
    previous: PumpStatus | None


@dataclass(frozen=True)
class CommandDone:
    """The request ``request_id`` got its answer (None for requests that get none).

    ``pump`` is None for the line-wide all-stop.
    """

    pump: int | None
    request_id: int
    answer: Answer


@dataclass(frozen=True)
class CommandFailed:
    pump: int | None
    request_id: int
    reason: str


@dataclass(frozen=True)
class PumpOnline:
    pump: int


@dataclass(frozen=True)
class PumpOffline:
    pump: int


@dataclass(frozen=True)
class LineNoise:
    """Garbage, a bad checksum, a wrong echo or bytes nobody asked for."""

    error: GilbarcoProtocolError


BusEvent = StatusChanged | CommandDone | CommandFailed | PumpOnline | PumpOffline | LineNoise
