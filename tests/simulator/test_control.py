"""The in-process control API, station configs, and the fault plan."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from drivers.dart.transactions import CD1, CD5, PumpCommand, PumpStatus
from simulator.control import Simulator, make_pumps, pumps_from_config
from simulator.faults import FaultPlan, Faults
from simulator.metering import Decimals
from simulator.pump import SimulationError

from .conftest import FakeClock

EXAMPLE = Path(__file__).parents[2] / "config" / "station.example.toml"

STATION = """
[station]
id = "T-1"

[[pumps]]
number = 1
line = "line1"
address = 0x52
decimals = { volume = 2, amount = 2, price = 3 }
[[pumps.nozzles]]
number = 1
logical = 1
grade = "95"
[[pumps.nozzles]]
number = 2
logical = 2
grade = "0"

[[pumps]]
number = 2
line = "line2"
address = 0x53
[[pumps.nozzles]]
number = 3
logical = 1
grade = "E10"
"""


def test_make_pumps() -> None:
    pumps = make_pumps(3, nozzles_per_pump=4, flow_lpm=Decimal(30))
    assert [p.address for p in pumps] == [0x50, 0x51, 0x52]
    assert pumps[0].nozzles == {1: 92, 2: 95, 3: 98, 4: 92}
    assert pumps[2].flow_lpm == Decimal(30)
    with pytest.raises(ValueError):
        make_pumps(33)


def test_pumps_from_a_station_config(tmp_path: Path) -> None:
    path = tmp_path / "station.toml"
    path.write_text(STATION)
    pumps = pumps_from_config(path)
    assert [p.address for p in pumps] == [0x52, 0x53]
    # "95" is used as it is; "0" and "E10" get the lowest free grade numbers.
    assert pumps[0].nozzles == {1: 95, 2: 1}
    assert pumps[1].nozzles == {1: 2}
    assert pumps[0].decimals == Decimals(volume=2, amount=2, price=3)
    assert [p.address for p in pumps_from_config(path, line="line2")] == [0x53]
    assert pumps_from_config(path, line="nowhere") == []


def test_pumps_from_the_example_config() -> None:
    if not EXAMPLE.exists():
        pytest.skip("no example config in this tree")
    line1 = pumps_from_config(EXAMPLE, line="line1")
    assert [p.address for p in line1] == [0x50, 0x51]


def test_config_without_pumps_or_nozzles(tmp_path: Path) -> None:
    path = tmp_path / "station.toml"
    path.write_text("[station]\nid = 'x'\n")
    assert pumps_from_config(path) == []
    for text, problem in [
        ("[[pumps]]\naddress = 0x50\n", "'nozzles' is missing"),
        ("[[pumps]]\naddress = 0x50\n[[pumps.nozzles]]\ngrade = '92'\n", "'logical'"),
        ("[[pumps]]\naddress = 0x20\n[[pumps.nozzles]]\nlogical = 1\n", "0x50..0x6F"),
        ("[[pumps]]\naddress = 0x50\n[[pumps.nozzles]]\nlogical = 16\n", "1..15"),
        (
            "[[pumps]]\naddress = 0x50\ndecimals = { volume = 5 }\n"
            "[[pumps.nozzles]]\nlogical = 1\n",
            "0..3",
        ),
    ]:
        path.write_text(text)
        with pytest.raises(ValueError, match="pumps\\[0\\]") as error:
            pumps_from_config(path)
        assert problem in str(error.value)


def test_simulator_drives_pumps_by_address(clock: FakeClock) -> None:
    sim = Simulator(make_pumps(2), clock=clock)
    pump = sim.pumps[0x51]
    pump.apply([CD5((750, 800)), CD1(PumpCommand.RESET), CD1(PumpCommand.AUTHORIZE)], clock.now)
    sim.lift(0x51, 2)
    clock.advance(1.5)  # the ramp: 0.5 L
    sim.set_flow(0x51, Decimal(0))  # the customer lets go of the trigger
    clock.advance(10)
    assert sim.state()["pumps"][1]["volume"] == "0.50"
    sim.hang(0x51, 2)
    (fill,) = sim.fills()
    assert (fill.pump, fill.nozzle, fill.volume, fill.amount) == (0x51, 2, 50, 400)
    sim.alarm(0x51, 0x0B)
    assert pump.alarms == [0x0B]
    sim.power_cycle(0x51)
    assert pump.status == PumpStatus.NOT_PROGRAMMED
    with pytest.raises(SimulationError):
        sim.lift(0x60, 1)
    with pytest.raises(SimulationError):
        sim.alarm(0x50, 256)
    with pytest.raises(SimulationError):
        sim.set_fault(0x50, corrupt=2.0)
    with pytest.raises(RuntimeError):
        _ = sim.url  # not served


def test_fault_plan_per_pump_and_line() -> None:
    plan = FaultPlan(seed=1)
    plan.set(0x50, delay=0.1)
    plan.set(None, corrupt=0.2)
    assert plan.for_pump(0x50) == Faults(silent=False, corrupt=0.2, delay=0.1)
    assert plan.for_pump(0x51) == Faults(corrupt=0.2)
    plan.set(0x50, silent=True)
    assert plan.for_pump(0x50).silent and plan.for_pump(0x50).delay == 0.1
    plan.clear(0x50)
    assert plan.for_pump(0x50) == Faults(corrupt=0.2)
    plan.clear()
    assert plan.for_pump(0x50) == Faults()
    with pytest.raises(ValueError):
        Faults(delay=-1)


def test_damage_is_random_but_replayable() -> None:
    frame = bytes.fromhex("50 31 01 01 05 00 00 03 FA")
    one, two = FaultPlan(seed=9), FaultPlan(seed=9)
    damaged = [one.damage(frame, 0.5) for _ in range(50)]
    assert damaged == [two.damage(frame, 0.5) for _ in range(50)]
    assert 10 < sum(d != frame for d in damaged) < 40
    assert all(FaultPlan(seed=1).damage(frame, 0.0) == frame for _ in range(10))


def test_dropped_bytes_leave_a_prefix_of_the_answer() -> None:
    frame = bytes.fromhex("50 31 01 01 05 00 00 03 FA")
    plan = FaultPlan(seed=4)
    cut = [plan.cut(frame, 0.5) for _ in range(60)]
    assert all(frame.startswith(c) for c in cut)
    short = [c for c in cut if c != frame]
    assert 15 < len(short) < 45
    assert all(len(c) < len(frame) for c in short)
    assert b"" in [plan.cut(frame, 1.0) for _ in range(60)]  # sometimes nothing arrives at all
    assert all(plan.cut(frame, 0.0) == frame for _ in range(10))
    with pytest.raises(ValueError, match="drop"):
        Faults(drop=1.5)
    plan.set(None, drop=0.3)
    assert plan.for_pump(0x50) == Faults(drop=0.3)
