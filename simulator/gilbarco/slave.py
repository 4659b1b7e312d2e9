"""The pump side of a Gilbarco two-wire line, sans I/O (PROTOCOLS.md, "Gilbarco two-wire").

One ``GilbarcoSlave`` answers for every simulated pump of a line. Bytes from the master go in
with ``receive_data(data, now)``; what the line carries back comes out of ``data_to_send(now)``
once due; ``next_timeout()`` says when the next is.

- A command byte addresses one pump by its low nibble (pump 16 by 0): ``0p`` status, ``1p``
  authorize, ``2p`` data follows (READY_FOR_DATA, or the status when the pump cannot take a
  block), ``3p`` stop, ``4p`` transaction, ``5p`` totals, ``6p`` running money. ``0xFC`` stops
  every pump. Authorize, stop and all-stop get no answer.
- A block is taken only by the pump that just answered READY_FOR_DATA, within ``ready_timeout``
  and before any other command; a special-function block is answered with hex records.
- With ``echo`` on, the line behaves as a current-loop converter: every byte the master sends
  comes back at once, ahead of any answer.
- Faults (``GilbarcoFaultPlan``) silence pumps, break checksums, cut or delay answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from simulator.gilbarco.faults import GilbarcoFaultPlan
from simulator.gilbarco.pump import GilbarcoPump
from simulator.gilbarco.states import Status
from simulator.gilbarco.wire import HeardBlock, HeardByte, HeardCommand, MasterStream, status

__all__ = ["GilbarcoSlave", "SlaveStats"]

ALL_STOP_COMMAND = 0xF
READY_TIMEOUT = 0.5  # seconds a pump waits for the block after READY_FOR_DATA


@dataclass
class SlaveStats:
    commands: int = 0  # command bytes for one of our pumps
    blocks: int = 0  # blocks taken by a ready pump
    line_errors: int = 0  # noise, blocks nobody was ready for
    ignored: int = 0  # commands left unanswered because of a fault
    answers: int = 0


@dataclass(order=True)
class _Due:
    due: float
    seq: int
    pump: int | None = field(compare=False)  # None: the converter's echo
    data: bytes = field(compare=False)


class GilbarcoSlave:
    """Every simulated pump of one line, answering the master as Gilbarco pumps do."""

    def __init__(
        self,
        pumps: Iterable[GilbarcoPump],
        *,
        faults: GilbarcoFaultPlan | None = None,
        echo: bool = False,
        turnaround: float = 0.0,
        ready_timeout: float = READY_TIMEOUT,
    ) -> None:
        self.pumps: dict[int, GilbarcoPump] = {}
        for pump in pumps:
            if pump.number in self.pumps:
                raise ValueError(f"two pumps numbered {pump.number}")
            self.pumps[pump.number] = pump
        self.faults = faults if faults is not None else GilbarcoFaultPlan()
        self.echo = echo
        self.turnaround = turnaround
        self.ready_timeout = ready_timeout
        self.stats = SlaveStats()
        self._stream = MasterStream()
        self._ready: tuple[int, float] | None = None  # pump that awaits a block, until when
        self._due: list[_Due] = []
        self._seq = 0

    # ---- the line ----------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> None:
        if self.echo and data:
            self._schedule(None, data, now)
        for heard in self._stream.feed(data):
            if isinstance(heard, HeardCommand):
                self._command(heard, now)
            elif isinstance(heard, HeardBlock):
                self._block(heard, now)
            else:
                self._noise(heard)

    def data_to_send(self, now: float) -> bytes:
        due = [d for d in self._due if d.due <= now]
        if not due:
            return b""
        self._due = [d for d in self._due if d.due > now]
        return b"".join(d.data for d in due)

    def next_timeout(self) -> float | None:
        return self._due[0].due if self._due else None

    def reset_line(self) -> None:
        """The master went away: drop half-heard blocks and pending answers."""
        self._stream.reset()
        self._due.clear()
        self._ready = None

    # ---- internals ---------------------------------------------------------------------------

    def _pump_for(self, nibble: int) -> GilbarcoPump | None:
        return self.pumps.get(nibble or 16)

    def _command(self, heard: HeardCommand, now: float) -> None:
        self._ready = None  # any command ends a pump's wait for data
        if heard.command == ALL_STOP_COMMAND:
            for each in self.pumps.values():
                if not self.faults.for_pump(each.number).silent:
                    each.stop(now)
            return
        pump = self._pump_for(heard.nibble)
        if pump is None:
            return
        self.stats.commands += 1
        if self.faults.for_pump(pump.number).silent:
            self.stats.ignored += 1
            return
        command = heard.command
        answer: bytes | None = None
        if command == 0x0:
            answer = status(pump.status_answer(now), pump.number)
        elif command == 0x1:
            pump.authorize(now)
        elif command == 0x2:
            if pump.ready_for_data(now):
                answer = status(Status.READY_FOR_DATA, pump.number)
                self._ready = (pump.number, now + self.ready_timeout)
            else:
                answer = status(pump.status_answer(now), pump.number)
        elif command == 0x3:
            pump.stop(now)
        elif command == 0x4:
            answer = pump.transaction(now)
        elif command == 0x5:
            answer = pump.totals_answer(now)
        elif command == 0x6:
            answer = pump.running_money(now)
        if answer is not None:
            self._answer(pump.number, answer, now)

    def _block(self, heard: HeardBlock, now: float) -> None:
        ready, self._ready = self._ready, None
        if ready is None or now > ready[1]:
            self.stats.line_errors += 1
            return
        pump = self.pumps[ready[0]]
        self.stats.blocks += 1
        answer = pump.take_block(heard.body, heard.checksum_ok, heard.length_ok, now)
        if answer is not None:
            self._answer(pump.number, answer, now)

    def _noise(self, heard: HeardByte) -> None:
        self.stats.line_errors += 1

    def _answer(self, pump: int, data: bytes, now: float) -> None:
        faults = self.faults.for_pump(pump)
        damaged = self.faults.apply(data, faults)
        self.stats.answers += 1
        if damaged:
            self._schedule(pump, damaged, now + self.turnaround + faults.delay)

    def _schedule(self, pump: int | None, data: bytes, due: float) -> None:
        self._seq += 1
        self._due.append(_Due(due, self._seq, pump, data))
        self._due.sort()
