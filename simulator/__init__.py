"""Simulated Wayne DART pumps: a test peer for the controller and `forecourt simulate`.

The pump model (`SimulatedPump`) and the line's pump side (`DartSlave`) do no I/O and take time
as an argument; `run_simulator` serves them over TCP or a pty in the running event loop, and
`Simulator` is the handle that lifts and hangs nozzles, injects faults and reads back every
filling. The HTTP control API lives in `simulator.app`, the command line in `simulator.cli`.
"""

from simulator.control import Simulator, make_pumps, pumps_from_config, run_simulator
from simulator.faults import FaultPlan, Faults
from simulator.metering import Decimals
from simulator.pump import SimulatedPump
from simulator.records import FillEnd, FillRecord, SimulationError
from simulator.slave import DartSlave
from simulator.traffic import CustomerTraffic, TrafficSettings

__all__ = [
    "CustomerTraffic",
    "DartSlave",
    "Decimals",
    "FaultPlan",
    "Faults",
    "FillEnd",
    "FillRecord",
    "SimulatedPump",
    "SimulationError",
    "Simulator",
    "TrafficSettings",
    "make_pumps",
    "pumps_from_config",
    "run_simulator",
]
