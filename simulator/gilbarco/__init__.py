"""Simulated Gilbarco two-wire pumps, written from PROTOCOLS.md ("Gilbarco two-wire"), not from
the driver: a test peer for ``drivers.gilbarco`` and ``forecourt simulate --protocol gilbarco``.

``GilbarcoPump`` (the model) and ``GilbarcoSlave`` (the line's pump side) do no I/O and take time
as an argument; ``run_gilbarco_simulator`` serves them over TCP or a pty in the running loop, and
``GilbarcoSimulator`` is the handle that lifts and hangs nozzles, injects faults and reads back
every filling. The HTTP control API is ``simulator.gilbarco.app``, the command line
``simulator.gilbarco.cli``.
"""

from simulator.gilbarco.control import (
    GilbarcoSimulator,
    make_pumps,
    pumps_from_config,
    run_gilbarco_simulator,
)
from simulator.gilbarco.faults import GilbarcoFaultPlan, GilbarcoFaults
from simulator.gilbarco.pump import EndProfile, GilbarcoPump
from simulator.gilbarco.slave import GilbarcoSlave
from simulator.gilbarco.states import Status

__all__ = [
    "EndProfile",
    "GilbarcoFaultPlan",
    "GilbarcoFaults",
    "GilbarcoPump",
    "GilbarcoSimulator",
    "GilbarcoSlave",
    "Status",
    "make_pumps",
    "pumps_from_config",
    "run_gilbarco_simulator",
]
