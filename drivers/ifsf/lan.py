"""Sans-I/O core of the controller on one IFSF LAN: heartbeats, incoming streams, node links.

``LanCore`` holds a ``NodeLink`` per configured dispenser node and routes to them what the
shell hears: UDP datagrams (``datagram``) and the bytes of every TCP connection a dispenser
opened to our listening port (``stream_data``; one ``MessageSplitter`` per connection, since
each connection is its own byte stream). Messages are routed by their source node; one from a
node the configuration does not name, or a heartbeat from such a dispenser, is reported once as
``UnknownNode`` and otherwise ignored, so a stranger on the LAN never disturbs the others.
Heartbeats from other subnets (controllers, tank gauges) and our own are ignored.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from .address import Lna
from .errors import IfsfProtocolError
from .events import LanEvent, LinkNoise, UnknownNode
from .heartbeat import DEFAULT_HEARTBEAT_INTERVAL, Heartbeat
from .ids import DISPENSER_SUBNET
from .link import REPLY_TIMEOUT, UNANSWERED_LIMIT, NodeLink
from .stream import MessageSplitter

__all__ = ["LanCore", "LanStats", "NodeSettings"]


@dataclass(frozen=True)
class NodeSettings:
    """How to reach one dispenser node: by heartbeat (``endpoint`` None) or at host:port."""

    endpoint: tuple[str, int] | None = None
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL
    reply_timeout: float = REPLY_TIMEOUT
    unanswered_limit: int = UNANSWERED_LIMIT
    status_poll_interval: float | None = None  # None: only static nodes are polled


@dataclass
class LanStats:
    datagrams: int = 0
    bad_datagrams: int = 0
    streams: int = 0
    stream_errors: int = 0
    strangers: int = 0  # messages and heartbeats from nodes not configured


class LanCore:
    """Every node of one LAN, seen from the controller ``controller``."""

    def __init__(self, controller: Lna, nodes: Mapping[Lna, NodeSettings]) -> None:
        if not nodes:
            raise ValueError("a LAN needs at least one dispenser node")
        if controller in nodes:
            raise ValueError(f"node {controller} is both the controller and a dispenser")
        self.controller = controller
        self.links = {
            node: NodeLink(
                node,
                controller,
                endpoint=s.endpoint,
                heartbeat_interval=s.heartbeat_interval,
                reply_timeout=s.reply_timeout,
                unanswered_limit=s.unanswered_limit,
                status_poll_interval=s.status_poll_interval,
            )
            for node, s in nodes.items()
        }
        self._streams: dict[int, MessageSplitter] = {}
        self._told: set[Lna] = set()
        self._events: deque[LanEvent] = deque()
        self.stats = LanStats()

    def link(self, node: Lna) -> NodeLink:
        try:
            return self.links[node]
        except KeyError:
            raise ValueError(f"no node {node} on this LAN") from None

    # ------------------------------------------------------------ inputs

    def datagram(self, data: bytes, sender: tuple[str, int], now: float) -> None:
        """A UDP datagram heard on the heartbeat port."""
        self.stats.datagrams += 1
        try:
            heartbeat = Heartbeat.from_bytes(data)
        except IfsfProtocolError as error:
            self.stats.bad_datagrams += 1
            self._events.append(LinkNoise(None, IfsfProtocolError(
                f"bad heartbeat from {sender[0]}: {error.reason}", data)))
            return
        node = heartbeat.node
        if node == self.controller or node.subnet != DISPENSER_SUBNET:
            return
        link = self.links.get(node)
        if link is None:
            self._stranger(node, (str(heartbeat.ip), heartbeat.port))
            return
        link.heartbeat(heartbeat, now)

    def stream_opened(self, stream: int) -> None:
        """A dispenser opened a connection to our listening port (``stream`` is its id)."""
        self.stats.streams += 1
        self._streams[stream] = MessageSplitter(self.controller, frozenset({DISPENSER_SUBNET}))

    def stream_data(self, stream: int, data: bytes, now: float) -> None:
        splitter = self._streams.get(stream)
        if splitter is None:
            raise ValueError(f"stream {stream} was not opened")
        for item in splitter.feed(data):
            if isinstance(item, IfsfProtocolError):
                self.stats.stream_errors += 1
                self._events.append(LinkNoise(None, item))
                continue
            link = self.links.get(item.source)
            if link is None:
                self._stranger(item.source, None)
                continue
            link.receive(item, now)

    def stream_closed(self, stream: int) -> None:
        self._streams.pop(stream, None)

    def handle_timeout(self, now: float) -> None:
        for link in self.links.values():
            link.handle_timeout(now)

    # ------------------------------------------------------------ outputs

    def next_timeout(self) -> float | None:
        times = [t for link in self.links.values() if (t := link.next_timeout()) is not None]
        return min(times) if times else None

    def next_event(self) -> LanEvent | None:
        if self._events:
            return self._events.popleft()
        for link in self.links.values():
            event = link.next_event()
            if event is not None:
                return event
        return None

    def events(self) -> Iterator[LanEvent]:
        """Drain every pending event."""
        while (event := self.next_event()) is not None:
            yield event

    def _stranger(self, node: Lna, endpoint: tuple[str, int] | None) -> None:
        self.stats.strangers += 1
        if node not in self._told:
            self._told.add(node)
            self._events.append(UnknownNode(node, endpoint))
