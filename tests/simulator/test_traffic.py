"""Simulated customers, on a fake clock."""

from __future__ import annotations

from decimal import Decimal

from drivers.dart.transactions import CD1, CD2, CD4, CD5, PumpCommand
from simulator.control import Simulator, make_pumps
from simulator.lines.dart import DartLine
from simulator.traffic import CustomerTraffic, TrafficSettings

from .conftest import FakeClock

SETTINGS = TrafficSettings(mean_interval=10.0, patience=20.0)


def run(traffic: CustomerTraffic, clock: FakeClock, seconds: float, on_step: object = None) -> None:
    end = clock.now + seconds
    while clock.now < end:
        due = traffic.step(clock.now)
        if callable(on_step):
            on_step()
        clock.now = min(max(due, clock.now + 0.01), end)


def test_unattended_customers_give_up_and_dispense_nothing(clock: FakeClock) -> None:
    sim = Simulator(make_pumps(2), clock=clock)
    traffic = CustomerTraffic(DartLine.wrap(sim), seed=4, settings=SETTINGS)
    lifted: set[int] = set()

    def watch() -> None:
        lifted.update(p.address for p in sim.pumps.values() if p.nozzle_out is not None)

    run(traffic, clock, 300.0, watch)
    assert traffic.visits >= 5
    assert lifted == {0x50, 0x51}
    assert sim.fills() == []


def test_authorized_customers_fuel_and_leave(clock: FakeClock) -> None:
    sim = Simulator(make_pumps(1), clock=clock)
    pump = sim.pumps[0x50]
    pump.apply([CD5((750, 800))], clock.now)
    traffic = CustomerTraffic(DartLine.wrap(sim), seed=11, settings=SETTINGS)

    served = [False]  # this lift was authorized already

    def attendant() -> None:
        # An auto-mode controller: authorize each lift once, with a preset every other time.
        now = clock.now
        if pump.nozzle_out is None:
            served[0] = False
        elif not served[0]:
            served[0] = True
            preset = [CD4(5000)] if len(pump.fills) % 2 else []
            pump.apply([CD1(PumpCommand.RESET), CD2((pump.nozzle_out,)), *preset], now)
            pump.apply([CD1(PumpCommand.AUTHORIZE)], now)

    run(traffic, clock, 600.0, attendant)
    fills = sim.fills()
    assert len(fills) >= 5
    for fill in fills:
        assert fill.end.value in ("nozzle_in", "preset")
        if fill.end.value == "nozzle_in":
            # The customer hung up once they had what they wanted (checked every 0.25 s).
            assert Decimal("5") <= fill.volume_decimal <= Decimal("50.5")
        else:
            assert fill.amount == 5000
    assert any(f.end.value == "preset" for f in fills)
    assert any(f.end.value == "nozzle_in" for f in fills)


def test_same_seed_same_customers(clock: FakeClock) -> None:
    def lifts(seed: int) -> list[tuple[float, int, int]]:
        local = FakeClock(0.0)
        sim = Simulator(make_pumps(2, nozzles_per_pump=3), clock=local)
        traffic = CustomerTraffic(DartLine.wrap(sim), seed=seed, settings=SETTINGS)
        seen: list[tuple[float, int, int]] = []

        def watch() -> None:
            for p in sim.pumps.values():
                lift = (round(local.now, 3), p.address, p.nozzle_out)
                if p.nozzle_out is not None and (not seen or seen[-1][1:] != lift[1:]):
                    seen.append((lift[0], lift[1], p.nozzle_out))

        run(traffic, local, 200.0, watch)
        return seen

    assert lifts(1) == lifts(1)
    assert lifts(1) != lifts(2)


def test_customer_gives_way_to_a_person_at_the_pump(clock: FakeClock) -> None:
    sim = Simulator(make_pumps(1), clock=clock)
    sim.lift(0x50, 1)  # someone at the pump through the control API
    traffic = CustomerTraffic(DartLine.wrap(sim), seed=1, settings=SETTINGS)
    run(traffic, clock, 120.0)
    assert traffic.visits == 0
    assert sim.pumps[0x50].nozzle_out == 1
