"""Events of the IFSF link cores (``NodeLink``, ``LanCore``), read with ``next_event()``."""

from __future__ import annotations

from dataclasses import dataclass

from .address import Lna
from .codec import Ack, Answer, Unsolicited
from .errors import IfsfProtocolError

__all__ = [
    "ConfigurationNeeded",
    "LanEvent",
    "LinkNoise",
    "NodeOffline",
    "NodeOnline",
    "Polled",
    "Received",
    "Replied",
    "RequestFailed",
    "UnknownNode",
]


@dataclass(frozen=True)
class NodeOnline:
    """The node is reachable: our link is up and it answered."""

    node: Lna
    endpoint: tuple[str, int]


@dataclass(frozen=True)
class NodeOffline:
    node: Lna
    reason: str  # "heartbeat lost", "link down", "no answer", "closed"


@dataclass(frozen=True)
class ConfigurationNeeded:
    """The node's heartbeat says "configuration needed": it (re)started and wants Open_FP."""

    node: Lna


@dataclass(frozen=True)
class Replied:
    """Request ``request_id`` got its answers (and the acknowledge that ends it, if any).

    ``complete`` is False when an "all" read timed out after some answers but before the
    acknowledge that should end it: what came is handed over, and may be all there is.
    """

    node: Lna
    request_id: int
    messages: tuple[Answer | Ack, ...]
    complete: bool = True


@dataclass(frozen=True)
class RequestFailed:
    node: Lna
    request_id: int
    reason: str  # "timeout", "offline", "link down", "closed"


@dataclass(frozen=True)
class Received:
    """An unsolicited message from the node (status, running transaction, buffer, error)."""

    node: Lna
    message: Unsolicited


@dataclass(frozen=True)
class Polled:
    """The answers to the link's own periodic status read (FP_State of every FP)."""

    node: Lna
    messages: tuple[Answer | Ack, ...]


@dataclass(frozen=True)
class LinkNoise:
    """Bytes or a message that made no sense here; ``node`` when it is known who sent it."""

    node: Lna | None
    error: IfsfProtocolError


@dataclass(frozen=True)
class UnknownNode:
    """A heartbeat or message from a node the configuration does not name (told once)."""

    node: Lna
    endpoint: tuple[str, int] | None


LanEvent = (
    NodeOnline
    | NodeOffline
    | ConfigurationNeeded
    | Replied
    | RequestFailed
    | Received
    | Polled
    | LinkNoise
    | UnknownNode
)
