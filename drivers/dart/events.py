"""Events of the DART master core (PROTOCOLS.md, DART section), read with ``DartBus.next_event``."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import DartProtocolError
from .transactions import Reply, UnknownTransaction

__all__ = [
    "BusEvent",
    "CommandDone",
    "CommandFailed",
    "LineNoise",
    "PumpOffline",
    "PumpOnline",
    "PumpReplied",
    "PumpRestarted",
]


@dataclass(frozen=True)
class PumpReplied:
    """A new DATA block from a pump (a retransmitted one is ACKed but not reported again)."""

    address: int
    replies: tuple[Reply | UnknownTransaction, ...]


@dataclass(frozen=True)
class CommandDone:
    """The pump ACKed the command block ``request_id``."""

    address: int
    request_id: int


@dataclass(frozen=True)
class CommandFailed:
    """The command block ``request_id`` did not reach the pump."""

    address: int
    request_id: int
    reason: str


@dataclass(frozen=True)
class PumpOnline:
    address: int


@dataclass(frozen=True)
class PumpOffline:
    address: int


@dataclass(frozen=True)
class PumpRestarted:
    """The pump sent TX# 0 after a non-zero one: it restarted and may have lost its state."""

    address: int


@dataclass(frozen=True)
class LineNoise:
    """Garbage, a bad CRC, or a frame nobody asked for, seen on the line."""

    error: DartProtocolError


BusEvent = (
    PumpReplied | CommandDone | CommandFailed | PumpOnline | PumpOffline | PumpRestarted | LineNoise
)
