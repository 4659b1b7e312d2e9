"""Sans-I/O master core of one Gilbarco two-wire line (PROTOCOLS.md, "Gilbarco two-wire").

One ``GilbarcoBus`` per line, pumps 1..16 on it, one request in flight. It does no I/O and reads
no clock: the shell writes what ``data_to_send(now)`` returns, feeds what it reads to
``receive_data(data, now)``, calls ``handle_timeout(now)`` at ``next_timeout()`` and drains
``next_event()``.

Choices the notes leave open, made here:

* Queued requests go before status polls (the all-stop first of all, then round-robin among the
  pumps with requests), so a stop is never behind a round of polls. Polls go round-robin with
  ``poll_interval`` of idle time between rounds; an offline pump is probed once per
  ``offline_poll_interval`` only.
* On a current-loop converter the master's own bytes come back first (``echo``): the bytes just
  written, matched by content, are taken as the echo before anything counts as an answer, so the
  late answer of an exchange that timed out is noise, never this one's (``reader.Echo``). A
  status byte of another pump of the line is its late answer too: noise, not a miss.
* A request whose answer is missing or bad stays at the head of its pump's queue and goes again;
  ``offline_after`` misses in a row take the pump offline, which fails its queue. Reads are
  harmless to repeat; requests that get no answer (authorize, stop, blocks) cannot miss. The one
  exception: a pump that said READY_FOR_DATA and then does not answer a special function is alive
  and does not know the function, so that request fails at once ("no answer") and the pump stays
  online.
* ``DATA_FOLLOWS`` answered with a status other than READY_FOR_DATA fails the request with that
  status in the reason: the pump is busy (a price change outside idle, for one).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from .commands import (
    ALL_STOP,
    Command,
    DigitsMode,
    PumpStatus,
    check_pump,
    command_byte,
)
from .errors import GilbarcoProtocolError
from .events import (
    BusEvent,
    CommandDone,
    CommandFailed,
    LineNoise,
    PumpOffline,
    PumpOnline,
    StatusChanged,
)
from .reader import AnswerReader, Echo, Reading
from .requests import (
    AllStop,
    Answer,
    AnswerKind,
    ReadSpecialFunction,
    ReadStatus,
    Request,
    SendBlock,
)
from .timing import DEFAULT_BAUDRATE, INTER_BYTE_CHARACTERS, OFFLINE_AFTER, Timing, wire_time

__all__ = ["BusStats", "GilbarcoBus"]


@dataclass
class BusStats:
    """Counters for metrics; they only grow."""

    exchanges: int = 0  # requests written (polls included)
    timeouts: int = 0  # answers that did not come in their window
    bad_answers: int = 0  # answers that came wrong (checksum, length, another pump)
    checksum_errors: int = 0
    echo_errors: int = 0
    echoes_unexpected: int = 0  # our own bytes came back on a line set to no echo
    noise: int = 0  # LineNoise events


class _Link(Enum):
    UNKNOWN = "unknown"
    ONLINE = "online"
    OFFLINE = "offline"


class _Stage(Enum):
    ANSWER = "answer"  # waiting for the answer of the exchange's kind
    READY = "ready"  # DATA_FOLLOWS sent, waiting for READY_FOR_DATA
    BLOCK = "block"  # the pump is ready: the block goes next
    PAUSE = "pause"  # written something that gets no answer: quiet until the deadline
    DRAIN = "drain"  # the answer came wrong: let the rest of it pass, then count the miss


@dataclass
class _Item:
    request_id: int
    request: Request | AllStop


@dataclass
class _Pump:
    number: int
    link: _Link = _Link.UNKNOWN
    queue: deque[_Item] = field(default_factory=deque)
    status: PumpStatus | None = None
    missed: int = 0
    probe_at: float = 0.0


@dataclass
class _Exchange:
    pump: _Pump | None  # None: the line-wide all-stop
    item: _Item | None  # None: a status poll
    stage: _Stage
    kind: AnswerKind
    deadline: float
    written: bytes = b""  # the bytes of the latest write
    echo: Echo | None = None  # the converter's copy of them, still expected
    reader: AnswerReader | None = None


class GilbarcoBus:
    """Master side of one Gilbarco line; see the module docstring for the policies."""

    def __init__(
        self,
        pumps: Sequence[int],
        *,
        mode: DigitsMode = DigitsMode.STANDARD,
        baudrate: int = DEFAULT_BAUDRATE,
        echo: bool = False,
        timing: Timing | None = None,
        offline_after: int = OFFLINE_AFTER,
        poll_interval: float = 0.0,
        offline_poll_interval: float = 1.0,
    ) -> None:
        if not pumps:
            raise ValueError("a line needs at least one pump")
        if len(set(pumps)) != len(pumps):
            raise ValueError("the same pump twice on one line")
        for pump in pumps:
            check_pump(pump)
        if baudrate <= 0 or offline_after < 1 or poll_interval < 0:
            raise ValueError("baudrate and offline_after must be > 0, poll_interval >= 0")
        self._pumps = [_Pump(p) for p in pumps]
        self._by_number = {p.number: p for p in self._pumps}
        self.mode = mode
        self._baudrate = baudrate
        self._echo = echo
        self.timing = timing or Timing()
        self._inter_byte = wire_time(INTER_BYTE_CHARACTERS, baudrate)
        self._offline_after = offline_after
        self._poll_interval = poll_interval
        self._offline_poll_interval = offline_poll_interval
        self._line_queue: deque[_Item] = deque()
        self._events: deque[BusEvent] = deque()
        self._exchange: _Exchange | None = None
        self._poll_cursor = 0
        self._queue_cursor = 0
        self._round_at = 0.0
        self._now = 0.0
        self._last_request_id = 0
        self.stats = BusStats()

    # ------------------------------------------------------------ queries

    @property
    def pumps(self) -> tuple[int, ...]:
        return tuple(p.number for p in self._pumps)

    def is_online(self, pump: int) -> bool:
        return self._pump(pump).link is _Link.ONLINE

    def online(self) -> dict[int, bool]:
        return {p.number: p.link is _Link.ONLINE for p in self._pumps}

    def status(self, pump: int) -> PumpStatus | None:
        """The status the pump answered last (None before its first answer)."""
        return self._pump(pump).status

    def next_event(self) -> BusEvent | None:
        return self._events.popleft() if self._events else None

    def next_timeout(self) -> float | None:
        """When the core next wants ``handle_timeout`` and ``data_to_send`` called."""
        exchange = self._exchange
        if exchange is not None:
            return self._now if exchange.stage is _Stage.BLOCK else exchange.deadline
        if self._line_queue or any(p.queue for p in self._pumps):
            return self._now
        return min(
            max(self._round_at, p.probe_at) if p.link is _Link.OFFLINE else self._round_at
            for p in self._pumps
        )

    # ------------------------------------------------------------ inputs

    def submit(self, pump: int | None, request: Request | AllStop) -> int:
        """Queue a request for ``pump`` (None with ``AllStop``: the whole line).

        Its outcome is a ``CommandDone`` with the answer or a ``CommandFailed`` with the reason.
        """
        self._last_request_id += 1
        item = _Item(self._last_request_id, request)
        if isinstance(request, AllStop):
            if pump is not None:
                raise ValueError("all-stop is for the whole line")
            self._line_queue.append(item)
            return item.request_id
        if pump is None:
            raise ValueError(f"{type(request).__name__} needs a pump")
        target = self._pump(pump)
        if target.link is _Link.OFFLINE:
            self._events.append(CommandFailed(pump, item.request_id, "offline"))
        else:
            target.queue.append(item)
        return item.request_id

    def cancel(self, request_id: int) -> bool:
        """Withdraw a request not yet started; False if unknown, started or finished."""
        active = self._exchange.item if self._exchange is not None else None
        for queue in (self._line_queue, *(p.queue for p in self._pumps)):
            for item in queue:
                if item.request_id == request_id and item is not active:
                    queue.remove(item)
                    return True
        return False

    def data_to_send(self, now: float) -> bytes:
        """The next bytes to write: b"" while an answer or a pause is running, or nothing is due."""
        self._now = now
        exchange = self._exchange
        if exchange is not None:
            if exchange.stage is not _Stage.BLOCK:
                return b""
            assert exchange.item is not None
            request = exchange.item.request
            assert isinstance(request, SendBlock | ReadSpecialFunction)
            data = request.block.to_block().to_bytes()
            if exchange.kind is AnswerKind.SPECIAL_FUNCTION:
                self._start(exchange, _Stage.ANSWER, data, now, self.timing.special_function)
            else:
                self._start(exchange, _Stage.PAUSE, data, now, self.timing.pause)
            return data
        chosen = self._choose(now)
        if chosen is None:
            return b""
        pump, item = chosen
        self.stats.exchanges += 1
        if item is None:
            assert pump is not None
            return self._open(pump, None, ReadStatus(), now)
        return self._open(pump, item, item.request, now)

    def receive_data(self, data: bytes, now: float) -> None:
        self._now = now
        exchange = self._exchange
        if exchange is None:
            if data:
                self._noise(GilbarcoProtocolError("bytes nobody asked for", data[:64]))
            return
        if exchange.echo is not None and not exchange.echo.done:
            data, stray = exchange.echo.take(data)
            if stray:
                self.stats.echo_errors += 1
                self._noise(GilbarcoProtocolError("bytes before the echo", stray[:64]))
        elif self._unexpected_echo(exchange, data):
            data = data[len(exchange.written):]
        if not data:
            return
        exchange.deadline = max(exchange.deadline, now + self._inter_byte)
        if exchange.stage is _Stage.DRAIN:
            return  # the rest of a bad answer
        if exchange.reader is None:
            self._noise(GilbarcoProtocolError("bytes nobody asked for", data[:64]))
            return
        reading = exchange.reader.feed(data)
        for error in reading.noise:
            self._noise(error)
        if reading.bad is not None:
            self._bad_answer(exchange, reading.bad, now)
        elif reading.complete:
            self._answer(exchange, reading)

    def handle_timeout(self, now: float) -> None:
        self._now = now
        exchange = self._exchange
        if exchange is None or exchange.stage is _Stage.BLOCK or now < exchange.deadline:
            return
        self._exchange = None
        if exchange.stage is _Stage.PAUSE:
            self._finish(exchange, None)
            return
        pump = exchange.pump
        assert pump is not None
        if exchange.stage is _Stage.DRAIN:
            self._missed(pump, now)
            return
        if exchange.stage is _Stage.ANSWER and exchange.kind is AnswerKind.SPECIAL_FUNCTION:
            # READY_FOR_DATA proved the pump alive: it does not know this function.
            self._fail_item(pump, exchange.item, "no answer")
            return
        self.stats.timeouts += 1
        self._missed(pump, now)

    def connection_lost(self, now: float) -> None:
        """The port is gone: every pump is offline, every queued request fails."""
        self._now = now
        self._exchange = None
        while self._line_queue:
            item = self._line_queue.popleft()
            self._events.append(CommandFailed(None, item.request_id, "line down"))
        for pump in self._pumps:
            if pump.link is not _Link.OFFLINE:
                self._go_offline(pump, now, "line down")
            pump.probe_at = now

    # ------------------------------------------------------------ exchanges

    def _choose(self, now: float) -> tuple[_Pump | None, _Item | None] | None:
        if self._line_queue:
            return None, self._line_queue[0]
        count = len(self._pumps)
        for i in range(count):
            index = (self._queue_cursor + i) % count
            pump = self._pumps[index]
            if pump.queue:
                self._queue_cursor = (index + 1) % count
                return pump, pump.queue[0]
        if now < self._round_at:
            return None
        for _ in range(2):  # the rest of this round, then (unpaced) a fresh one
            while self._poll_cursor < count:
                pump = self._pumps[self._poll_cursor]
                self._poll_cursor += 1
                if pump.link is not _Link.OFFLINE or now >= pump.probe_at:
                    return pump, None
            self._poll_cursor = 0
            self._round_at = now + self._poll_interval
            if self._poll_interval > 0:
                return None
        return None

    def _open(
        self, pump: _Pump | None, item: _Item | None, request: Request | AllStop, now: float
    ) -> bytes:
        if isinstance(request, AllStop):
            exchange = _Exchange(None, item, _Stage.PAUSE, AnswerKind.NONE, now)
            self._exchange = exchange
            data = bytes((ALL_STOP,))
            self._start(exchange, _Stage.PAUSE, data, now, self.timing.pause)
            return data
        assert pump is not None
        data = bytes((command_byte(request.command, pump.number),))
        exchange = _Exchange(pump, item, _Stage.ANSWER, request.kind, now)
        self._exchange = exchange
        if request.command is Command.DATA_FOLLOWS:
            self._start(exchange, _Stage.READY, data, now, self.timing.status)
        elif request.kind is AnswerKind.NONE:
            self._start(exchange, _Stage.PAUSE, data, now, self.timing.pause)
        else:
            self._start(exchange, _Stage.ANSWER, data, now, self._window(request.kind))
        return data

    def _start(
        self, exchange: _Exchange, stage: _Stage, data: bytes, now: float, window: float
    ) -> None:
        exchange.stage = stage
        exchange.deadline = now + wire_time(len(data), self._baudrate) + window
        exchange.written = data
        exchange.echo = Echo(data) if self._echo else None
        exchange.reader = None
        pump = exchange.pump
        if pump is not None and stage in (_Stage.READY, _Stage.ANSWER):
            kind = AnswerKind.STATUS if stage is _Stage.READY else exchange.kind
            others = [p.number for p in self._pumps if p is not pump]
            exchange.reader = AnswerReader(kind, pump.number, self.mode, others)

    def _window(self, kind: AnswerKind) -> float:
        timing = self.timing
        return {
            AnswerKind.STATUS: timing.status,
            AnswerKind.TRANSACTION: timing.transaction,
            AnswerKind.TOTALS: timing.totals,
            AnswerKind.RUNNING_MONEY: timing.running_money,
            AnswerKind.SPECIAL_FUNCTION: timing.special_function,
            AnswerKind.NONE: timing.pause,
        }[kind]

    # ------------------------------------------------------------ answers

    def _unexpected_echo(self, exchange: _Exchange, data: bytes) -> bool:
        """Our own bytes back on a line set to no echo: a converter that echoes (``echo``
        should be on). Told apart from answers where no answer can look like them: not for a
        status poll, whose echo ``0p`` is exactly pump p's data-error status."""
        if self._echo or not exchange.written or not data.startswith(exchange.written):
            return False
        if exchange.stage is _Stage.READY or exchange.kind is AnswerKind.STATUS:
            return False
        exchange.written = b""
        self.stats.echoes_unexpected += 1
        self._noise(GilbarcoProtocolError("an echo on a line without echo", data[:16]))
        return True

    def _answer(self, exchange: _Exchange, reading: Reading) -> None:
        pump = exchange.pump
        assert pump is not None
        self._exchange = None
        self._answered(pump)
        status = reading.answer if isinstance(reading.answer, PumpStatus) else None
        if exchange.stage is _Stage.READY:
            assert status is not None
            if status is PumpStatus.READY_FOR_DATA:
                self._exchange = exchange
                exchange.stage, exchange.reader = _Stage.BLOCK, None
                return
            self._set_status(pump, status)
            self._fail_item(pump, exchange.item, f"not ready for data (status {status:X})")
            return
        if status is not None:
            self._set_status(pump, status)
        self._finish(exchange, reading.answer)

    # ------------------------------------------------------------ outcomes

    def _finish(self, exchange: _Exchange, answer: Answer) -> None:
        item = exchange.item
        if item is None:
            return  # a poll: its news went out as StatusChanged
        pump = exchange.pump
        queue = self._line_queue if pump is None else pump.queue
        if queue and queue[0] is item:
            queue.popleft()
        number = None if pump is None else pump.number
        self._events.append(CommandDone(number, item.request_id, answer))

    def _fail_item(self, pump: _Pump, item: _Item | None, reason: str) -> None:
        if item is None:
            return
        if pump.queue and pump.queue[0] is item:
            pump.queue.popleft()
        self._events.append(CommandFailed(pump.number, item.request_id, reason))

    def _bad_answer(self, exchange: _Exchange, error: GilbarcoProtocolError, now: float) -> None:
        """The answer came wrong: whatever else of it arrives is let pass before the next
        request (so its tail cannot pass for the next answer), then the miss counts."""
        self.stats.bad_answers += 1
        if error.reason in ("bad checksum", "bad record checksum"):
            self.stats.checksum_errors += 1
        self._noise(error)
        exchange.stage = _Stage.DRAIN
        exchange.deadline = now + self._inter_byte

    def _missed(self, pump: _Pump, now: float) -> None:
        pump.missed += 1
        if pump.link is _Link.OFFLINE:
            pump.probe_at = now + self._offline_poll_interval
        elif pump.missed >= self._offline_after:
            self._go_offline(pump, now, "offline")
        # Otherwise a request keeps its place at the head of the queue: it goes again.

    def _answered(self, pump: _Pump) -> None:
        pump.missed = 0
        if pump.link is not _Link.ONLINE:
            pump.link = _Link.ONLINE
            self._events.append(PumpOnline(pump.number))

    def _set_status(self, pump: _Pump, status: PumpStatus) -> None:
        if status is not pump.status:
            previous, pump.status = pump.status, status
            self._events.append(StatusChanged(pump.number, status, previous))

    def _go_offline(self, pump: _Pump, now: float, reason: str) -> None:
        pump.link = _Link.OFFLINE
        pump.status = None
        pump.probe_at = now + self._offline_poll_interval
        self._events.append(PumpOffline(pump.number))
        while pump.queue:
            item = pump.queue.popleft()
            self._events.append(CommandFailed(pump.number, item.request_id, reason))

    def _noise(self, error: GilbarcoProtocolError) -> None:
        self.stats.noise += 1
        self._events.append(LineNoise(error))

    def _pump(self, pump: int) -> _Pump:
        try:
            return self._by_number[pump]
        except KeyError:
            raise ValueError(f"no pump {pump} on this line") from None

