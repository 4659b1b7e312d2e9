"""Sans-I/O core of the controller's link to one dispenser node (PROTOCOLS.md, IFSF "Links",
"Heartbeat", "Message").

One ``NodeLink`` per node. It does no I/O and reads no clock: the shell tells it about
heartbeats (``heartbeat``), our client connection (``link_up``/``link_down``) and the
messages the node sent us (``receive``, already cut by a ``MessageSplitter`` and routed by
source), writes what ``next_message(now)`` returns on our client connection, calls
``handle_timeout(now)`` at ``next_timeout()``, and drains ``next_event()``.

Policies, each from the notes or a choice they leave open:

* **One message in flight.** Some dispenser firmware takes each TCP read as exactly one
  message, so the next request goes only once the last is answered, acknowledged or timed out.
  Acknowledges we owe (type-3 messages) are the only thing sent meanwhile.
* **Tokens.** Every request takes the next token 1..31 (0 is what unsolicited messages carry);
  an answer or acknowledge matches the request in flight by source and token, anything else is
  reported as noise and changes nothing.
* **Answers.** A read of one address ends with its answer, or with an acknowledge (status 6
  for an unknown address). A read of an "all" address (every fuelling point, every unpaid
  transaction) collects answers until the acknowledge; a write ends with its acknowledge.
* **Online** means: our client link is up, the node answered since it came up, and (for a node
  found by heartbeat) its heartbeat is fresh. A heartbeat node is offline after
  ``MISSED_HEARTBEATS`` intervals without one; any node is offline when its link drops, or when
  ``unanswered_limit`` requests in a row get no answer (the link is then reset). A status read
  of every fuelling point goes out when the link comes up and every ``status_poll_interval``,
  which is what notices a static node (given as host:port, for networks that drop broadcasts)
  that stopped answering.
* A request submitted while the node is offline fails at once; one in flight when the link
  drops fails with "link down" (the node may have carried it out: read its state, never
  assume).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .address import Address, AllFuellingPoints, Lna, TransactionAddress
from .codec import MAX_TOKEN, Ack, Answer, DataItem, Message, Read, Unsolicited, Write
from .errors import IfsfProtocolError
from .events import (
    ConfigurationNeeded,
    LanEvent,
    LinkNoise,
    NodeOffline,
    NodeOnline,
    Polled,
    Received,
    Replied,
    RequestFailed,
)
from .heartbeat import DEFAULT_HEARTBEAT_INTERVAL, MISSED_HEARTBEATS, Heartbeat
from .ids import FpId

__all__ = [
    "REPLY_TIMEOUT",
    "STATUS_POLL_INTERVAL",
    "UNANSWERED_LIMIT",
    "LinkStats",
    "NodeLink",
]

REPLY_TIMEOUT = 2.0
"""Seconds a request waits for its answer or acknowledge."""

UNANSWERED_LIMIT = 3
"""Requests in a row without an answer after which the node is offline and the link reset."""

STATUS_POLL_INTERVAL = 10.0
"""Seconds between status reads of a static node (one heartbeat interval at PetroChina)."""


@dataclass
class LinkStats:
    """Counters for metrics; they only grow."""

    requests: int = 0
    timeouts: int = 0
    noise: int = 0
    unsolicited: int = 0
    heartbeats: int = 0
    resets: int = 0


@dataclass
class _Request:
    request_id: int
    address: Address
    ids: tuple[int, ...] | None  # a read
    items: tuple[DataItem, ...] | None  # a write
    collect: bool  # an "all" read: answers until the acknowledge
    internal: bool = False  # the link's own status read
    token: int | None = None
    deadline: float = 0.0
    answers: list[Answer] = field(default_factory=list)


def _collects(address: Address) -> bool:
    return isinstance(address, AllFuellingPoints) or (
        isinstance(address, TransactionAddress) and address.all_unpaid
    )


class NodeLink:
    """The controller's side of one dispenser node; see the module docstring."""

    def __init__(
        self,
        node: Lna,
        controller: Lna,
        *,
        endpoint: tuple[str, int] | None = None,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
        reply_timeout: float = REPLY_TIMEOUT,
        unanswered_limit: int = UNANSWERED_LIMIT,
        status_poll_interval: float | None = None,
    ) -> None:
        if heartbeat_interval <= 0 or reply_timeout <= 0 or unanswered_limit < 1:
            raise ValueError("heartbeat_interval, reply_timeout, unanswered_limit must be > 0")
        self.node = node
        self.controller = controller
        self.static = endpoint is not None
        self._endpoint = endpoint
        self._heartbeat_interval = heartbeat_interval
        self._reply_timeout = reply_timeout
        self._unanswered_limit = unanswered_limit
        if status_poll_interval is None and self.static:
            status_poll_interval = STATUS_POLL_INTERVAL
        self._poll_interval = status_poll_interval
        self._heard_at: float | None = None
        self._configuration_needed = False
        self._connected = False
        self._answered = False
        self._online = False
        self._reset_wanted = False
        self._queue: deque[_Request] = deque()
        self._inflight: _Request | None = None
        self._acks: deque[Ack] = deque()
        self._token = 0
        self._unanswered = 0
        self._poll_at: float | None = None
        self._last_id = 0
        self._events: deque[LanEvent] = deque()
        self._now = 0.0
        self.stats = LinkStats()

    # ------------------------------------------------------------ queries

    @property
    def online(self) -> bool:
        return self._online

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def endpoint(self) -> tuple[str, int] | None:
        """Where our client link goes: the static host:port, or the last heartbeat's."""
        return self._endpoint

    def wants_connection(self, now: float) -> bool:
        """Whether our client link should be up: the node is static or its heartbeat fresh."""
        return self._endpoint is not None and (self.static or self._fresh(now))

    def take_reset(self) -> bool:
        """True once after the core decided the client link must be dropped and reopened."""
        wanted, self._reset_wanted = self._reset_wanted, False
        return wanted

    def next_event(self) -> LanEvent | None:
        return self._events.popleft() if self._events else None

    def next_timeout(self) -> float | None:
        times: list[float] = []
        if self._inflight is not None:
            times.append(self._inflight.deadline)
        elif self._connected and (self._queue or self._acks):
            times.append(self._now)
        if self._connected and self._inflight is None and self._poll_at is not None:
            times.append(self._poll_at)
        if self._heard_at is not None and not self.static and self._fresh(self._now):
            times.append(self._heard_at + MISSED_HEARTBEATS * self._heartbeat_interval)
        return min(times) if times else None

    # ------------------------------------------------------------ inputs

    def heartbeat(self, heartbeat: Heartbeat, now: float) -> None:
        self._now = now
        self.stats.heartbeats += 1
        if not self.static:
            endpoint = (str(heartbeat.ip), heartbeat.port)
            if self._endpoint is not None and endpoint != self._endpoint and self._connected:
                self._reset("endpoint changed")
            self._endpoint = endpoint
        self._heard_at = now
        if heartbeat.configuration_needed and not self._configuration_needed:
            self._events.append(ConfigurationNeeded(self.node))
        self._configuration_needed = heartbeat.configuration_needed
        self._update()

    def link_up(self, now: float) -> None:
        """Our client link to the node is up."""
        self._now = now
        self._connected = True
        self._answered = False
        self._unanswered = 0
        self._poll_at = now  # read every fuelling point's state at once
        self._update()

    def link_down(self, now: float, reason: str = "link down") -> None:
        """Our client link to the node is gone."""
        self._now = now
        if not self._connected:
            return
        self._connected = False
        self._answered = False
        self._poll_at = None
        self._acks.clear()
        self._fail_all(reason)
        self._update(reason)

    def close(self, now: float) -> None:
        """The controller is shutting down: every request fails with "closed"."""
        self._now = now
        self._connected = False
        self._answered = False
        self._fail_all("closed")
        self._update("closed")

    def submit_read(self, address: Address, ids: tuple[int, ...]) -> int:
        """Queue a read; the outcome is ``Replied`` or ``RequestFailed`` with the returned id."""
        return self._submit(_Request(self._next_id(), address, tuple(ids), None,
                                     _collects(address)))

    def submit_write(self, address: Address, items: tuple[DataItem, ...]) -> int:
        return self._submit(_Request(self._next_id(), address, None, tuple(items), False))

    def cancel(self, request_id: int) -> bool:
        """Withdraw a request not yet sent; False when unknown, done, or already on the wire."""
        for request in self._queue:
            if request.request_id == request_id:
                self._queue.remove(request)
                return True
        return False

    def receive(self, message: Message, now: float) -> None:
        """A message the node sent us (the shell routed it here by its source)."""
        self._now = now
        if isinstance(message, Unsolicited):
            self.stats.unsolicited += 1
            if message.ack_required:
                self._acks.append(Ack(message.source, self.controller, message.token,
                                      message.address))
            self._events.append(Received(self.node, message))
            return
        request = self._inflight
        if (
            not isinstance(message, Answer | Ack)
            or request is None
            or message.token != request.token
        ):
            what = "answer nobody asked for" if isinstance(message, Answer | Ack) else (
                f"{message.type.name.lower()} message sent to the controller")
            self._noise(IfsfProtocolError(f"{what} (token {message.token})", message.to_bytes()))
            return
        self._unanswered = 0
        self._answered = True
        if isinstance(message, Answer) and request.collect:
            request.answers.append(message)
            self._update()
            return
        self._inflight = None
        self._finish(request, (*request.answers, message), complete=True)
        self._update()

    def handle_timeout(self, now: float) -> None:
        self._now = now
        request = self._inflight
        if request is not None and now >= request.deadline:
            self._inflight = None
            if request.answers:
                # An "all" read without its closing acknowledge: hand over what came.
                self._finish(request, tuple(request.answers), complete=False)
            else:
                self.stats.timeouts += 1
                self._unanswered += 1
                self._fail(request, "timeout")
                if self._unanswered >= self._unanswered_limit:
                    self._reset("no answer")
        if self._heard_at is not None and not self.static and not self._fresh(now):
            if self._connected:
                self._reset("heartbeat lost")
            self._update("heartbeat lost")

    def next_message(self, now: float) -> bytes | None:
        """The next message to write on our client link, or None."""
        self._now = now
        if not self._connected:
            return None
        if self._acks:
            return self._acks.popleft().to_bytes()
        if self._inflight is not None:
            return None
        request: _Request | None = None
        if self._queue and self._online:
            request = self._queue.popleft()
        elif self._poll_at is not None and now >= self._poll_at:
            request = _Request(0, AllFuellingPoints(), (FpId.FP_STATE,), None, True, True)
            self._poll_at = (now + self._poll_interval) if self._poll_interval else None
        if request is None:
            return None
        self._token = self._token % MAX_TOKEN + 1
        request.token = self._token
        request.deadline = now + self._reply_timeout
        self._inflight = request
        self.stats.requests += 1
        return self._build(request).to_bytes()

    # ------------------------------------------------------------ internals

    def _build(self, request: _Request) -> Read | Write:
        assert request.token is not None
        if request.ids is not None:
            return Read(self.node, self.controller, request.token, request.address, request.ids)
        assert request.items is not None
        return Write(self.node, self.controller, request.token, request.address, request.items)

    def _next_id(self) -> int:
        self._last_id += 1
        return self._last_id

    def _submit(self, request: _Request) -> int:
        if not self._online:
            self._events.append(RequestFailed(self.node, request.request_id, "offline"))
        else:
            self._queue.append(request)
        return request.request_id

    def _fresh(self, now: float) -> bool:
        limit = MISSED_HEARTBEATS * self._heartbeat_interval
        return self._heard_at is not None and now < self._heard_at + limit

    def _finish(self, request: _Request, messages: tuple[Answer | Ack, ...],
                complete: bool) -> None:
        if request.internal:
            self._events.append(Polled(self.node, messages))
            if not self._poll_interval:
                self._poll_at = None
        else:
            self._events.append(Replied(self.node, request.request_id, messages, complete))

    def _fail(self, request: _Request, reason: str) -> None:
        if request.internal:
            if not self._answered:
                # Not proven alive yet: ask again after one more reply window.
                self._poll_at = self._now + self._reply_timeout
            return
        self._events.append(RequestFailed(self.node, request.request_id, reason))

    def _fail_all(self, reason: str) -> None:
        if self._inflight is not None:
            request, self._inflight = self._inflight, None
            self._fail(request, reason)
        while self._queue:
            self._fail(self._queue.popleft(), reason)

    def _reset(self, reason: str) -> None:
        self.stats.resets += 1
        self._reset_wanted = True
        self._answered = False
        self._fail_all(reason)
        self._update(reason)

    def _update(self, reason: str = "link down") -> None:
        online = (
            self._connected
            and self._answered
            and (self.static or self._fresh(self._now))
        )
        if online == self._online:
            return
        self._online = online
        if online:
            assert self._endpoint is not None
            self._events.append(NodeOnline(self.node, self._endpoint))
        else:
            self._fail_all(reason)
            self._events.append(NodeOffline(self.node, reason))

    def _noise(self, error: IfsfProtocolError) -> None:
        self.stats.noise += 1
        self._events.append(LinkNoise(self.node, error))
