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
    CD3,
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
from simulator.firmware import parse_firmware
from simulator.pump import SimulatedPump
from simulator.slave import DartSlave

from .conftest import FakeClock

C = PumpCommand
S = PumpStatus
TURNAROUND = 0.003


class Line:
    """A master and the simulated pumps on one wire; time moves only in `run`."""

    def __init__(
        self,
        clock: FakeClock,
        *,
        seed: int = 1,
        firmware: str = "rev211",
        ack_poll: bool = False,
        addresses: tuple[int, ...] = (0x50, 0x51),
        poll_interval: float = 0.05,
    ) -> None:
        self.clock = clock
        self.pumps = [
            SimulatedPump(a, {1: 92, 2: 95}, firmware=parse_firmware(firmware))
            for a in addresses
        ]
        self.slave = DartSlave(self.pumps, faults=FaultPlan(seed), turnaround=TURNAROUND)
        self.bus = DartBus(
            list(addresses), poll_interval=poll_interval, ack_poll=addresses if ack_poll else ()
        )
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


def test_every_profile_sells_through_the_master_core(clock: FakeClock) -> None:
    """The station's bus core (ACK then POLL by default) and one command per block: a sale goes
    through on every firmware profile, the totals in the form each one answers."""
    for firmware in ("rev211", "legacy", "milli", "bare", "rev211+first-command-only"):
        line = Line(clock, firmware=firmware)
        line.run(0.5)
        for commands in ((CD5((750, 800)),), (CD1(C.RESET),), (CD2((1,)),), (CD3(1000),),
                         (CD1(C.AUTHORIZE),)):
            line.command(0x50, *commands)
        line.pumps[0].lift(1, clock.now)
        line.run(25.0)
        line.command(0x50, CD101(0x01))
        line.run(1.0)
        (fill,) = line.pumps[0].fills
        assert (fill.volume, fill.amount) == (1000, 7500 if firmware != "milli" else 75)
        replies = line.replies(0x50)
        assert DC1(S.MAX_REACHED) in replies, firmware
        totals = [r for r in replies if isinstance(r, DC101)]
        assert [t.total for t in totals] == [1000], firmware
        assert totals[0].short == (firmware in ("legacy", "bare")), firmware
        assert line.slave.stats.ackpolls_ignored == 0, firmware
        assert not any(isinstance(e, CommandFailed) for e in line.events), firmware


def test_a_master_that_ackpolls_a_legacy_pump_hears_the_same_block_forever(
    clock: FakeClock,
) -> None:
    """Configured for ACKPOLL on a one-pump line, the master never gets past a legacy pump's
    first block: every ACKPOLL brings it back (the same TX#: a retransmission, not news)."""
    line = Line(clock, firmware="legacy", ack_poll=True, addresses=(0x50,), poll_interval=0)
    line.run(2.0)
    assert line.slave.stats.ackpolls_ignored > 20
    assert line.bus.stats.retransmissions > 20
    assert line.replies(0x50) == [DC1(S.NOT_PROGRAMMED)]  # reported once, then only repeated
