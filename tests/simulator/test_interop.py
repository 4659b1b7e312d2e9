"""The simulator against the station's own DART master core, both sans I/O, on a fake clock.

If these pass, the simulator is a peer the controller can be tested against: a sale goes
through, and through a noisy line it still ends with exactly the same volume and amount.
"""

from __future__ import annotations

from drivers.dart.bus import DartBus
from drivers.dart.events import CommandDone, CommandFailed, PumpReplied, PumpRestarted
from drivers.dart.transactions import (
    CD1,
    CD2,
    CD4,
    CD5,
    CD101,
    DC1,
    DC2,
    DC101,
    Command,
    PumpCommand,
    PumpStatus,
)
from simulator.faults import FaultPlan
from simulator.pump import SimulatedPump
from simulator.slave import DartSlave

from .conftest import FakeClock

C = PumpCommand
S = PumpStatus
TURNAROUND = 0.003


class Line:
    """A master and the simulated pumps on one wire; time moves only in `run`."""

    def __init__(self, clock: FakeClock, *, seed: int = 1) -> None:
        self.clock = clock
        self.pumps = [SimulatedPump(a, {1: 92, 2: 95}) for a in (0x50, 0x51)]
        self.slave = DartSlave(self.pumps, faults=FaultPlan(seed), turnaround=TURNAROUND)
        self.bus = DartBus([0x50, 0x51], poll_interval=0.05)
        self.events: list[object] = []

    def run(self, seconds: float) -> None:
        end = self.clock.now + seconds
        while self.clock.now < end:
            now = self.clock.now
            sent = self.bus.data_to_send(now)
            if sent:
                self.slave.receive_data(sent, now)
            deadlines = [t for t in (self.bus.next_timeout(), self.slave.next_timeout()) if t]
            self.clock.now = min([end, *deadlines]) if deadlines else end
            self.clock.now = max(self.clock.now, now + 0.0005)
            reply = self.slave.data_to_send(self.clock.now)
            if reply:
                self.bus.receive_data(reply, self.clock.now)
            self.bus.handle_timeout(self.clock.now)
            while (event := self.bus.next_event()) is not None:
                self.events.append(event)

    def command(self, address: int, *commands: Command) -> None:
        request = self.bus.submit(address, commands)
        self.run(1.0)
        done = [e for e in self.events if getattr(e, "request_id", None) == request]
        assert done and isinstance(done[0], CommandDone), done

    def replies(self, address: int) -> list[object]:
        return [
            r
            for e in self.events
            if isinstance(e, PumpReplied) and e.address == address
            for r in e.replies
        ]


def sale(line: Line) -> None:
    line.run(0.5)
    line.command(0x50, CD5((750, 800)))
    line.command(0x50, CD1(C.RESET))
    line.command(0x50, CD2((1,)), CD4(10000), CD1(C.AUTHORIZE))
    line.pumps[0].lift(1, line.clock.now)
    line.run(25.0)
    line.command(0x50, CD101(0x01), CD101(0x11))
    line.run(1.0)


def test_a_sale_through_the_master_core(clock: FakeClock) -> None:
    line = Line(clock)
    sale(line)
    replies = line.replies(0x50)
    statuses = [r.status for r in replies if isinstance(r, DC1)]
    assert statuses == [
        S.NOT_PROGRAMMED,
        S.FILLING_COMPLETED,
        S.RESET,
        S.AUTHORIZED,
        S.FILLING,
        S.MAX_REACHED,
    ]
    volumes = [r for r in replies if isinstance(r, DC2)]
    assert volumes[-1] == DC2(1333, 10000)
    assert [v.volume for v in volumes] == sorted(v.volume for v in volumes)
    assert len(volumes) > 10  # the volume was reported while fuel flowed
    assert DC101(0x01, 1333, 1, 0) in replies and DC101(0x11, 10000, 1, 0) in replies
    assert line.bus.is_online(0x51)
    assert not any(isinstance(e, CommandFailed) for e in line.events)


def test_a_sale_through_a_noisy_line_ends_exactly_the_same(clock: FakeClock) -> None:
    line = Line(clock, seed=3)
    line.slave.faults.set(None, corrupt=0.2)
    sale(line)
    (fill,) = line.pumps[0].fills
    assert (fill.volume, fill.amount) == (1333, 10000)
    assert line.slave.stats.resent > 0  # the master did miss answers, and got them again
    dc2 = [r for r in line.replies(0x50) if isinstance(r, DC2)]
    assert dc2[-1] == DC2(1333, 10000)


def test_power_cycle_is_seen_as_a_restart(clock: FakeClock) -> None:
    line = Line(clock)
    line.run(0.5)
    line.command(0x50, CD5((750, 800)))
    line.run(0.5)
    line.slave.power_cycle(0x50, clock.now)
    line.run(0.5)
    assert any(isinstance(e, PumpRestarted) and e.address == 0x50 for e in line.events)
    assert line.replies(0x50)[-1] == DC1(S.NOT_PROGRAMMED)
