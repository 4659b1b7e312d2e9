"""Simulated Wayne DART pumps: a test peer for the controller and `forecourt simulate`.

The pump model (`SimulatedPump`) and the line's pump side (`DartSlave`) do no I/O and take time
as an argument; `run_simulator` serves them over TCP or a pty in the running event loop, and
`Simulator` is the handle that lifts and hangs nozzles, injects faults and reads back every
filling. Each pump runs a firmware profile (`simulator.firmware`: rev211, legacy, milli, bare,
plus quirks), one for the line or one per address. The HTTP control API lives in
`simulator.app`, the command line in `simulator.cli`.

The IFSF (`simulator.ifsf`) and Gilbarco (`simulator.gilbarco`) simulators sit beside it;
`simulator.registry` picks any of them by protocol and runs a simulated line for given station
pumps behind one customer control (`forecourt simulate`, the demo, simulated customers and the
tank gauge simulator use it).
"""

from simulator.control import Simulator, make_pumps, pumps_from_config, run_simulator
from simulator.faults import FaultPlan, Faults
from simulator.firmware import PROFILES, Firmware, FirmwarePlan, Quirk, parse_firmware
from simulator.metering import Decimals
from simulator.pump import SimulatedPump
from simulator.records import FillEnd, FillRecord, SimulationError
from simulator.slave import DartSlave
from simulator.traffic import CustomerTraffic, TrafficSettings

__all__ = [
    "PROFILES",
    "CustomerTraffic",
    "DartSlave",
    "Decimals",
    "FaultPlan",
    "Faults",
    "FillEnd",
    "FillRecord",
    "Firmware",
    "FirmwarePlan",
    "Quirk",
    "SimulatedPump",
    "SimulationError",
    "Simulator",
    "TrafficSettings",
    "make_pumps",
    "parse_firmware",
    "pumps_from_config",
    "run_simulator",
]
