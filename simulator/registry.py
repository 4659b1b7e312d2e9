"""The pump simulators the project has, by protocol: how to run a simulated line for given pumps.

``forecourt simulate --protocol NAME`` and ``forecourt demo`` pick a simulator here by name, the
way the station picks a driver from ``drivers.registry``. Each protocol's entry (a
``Simulation``) runs a simulated line for a list of station pumps (``SimPump``: pump number,
nozzles, the protocol's firmware or profile, decimals, where the meters start) and hands back a
``SimulatedLine``: what the station's configuration must say to reach it (the line's and each
pump's protocol keys), its HTTP control API, and a **customer control** that speaks the
station's own words (pump number as painted, logical nozzle): lift, hang, what is being
dispensed, the fillings that really happened, the nozzles' meters. Simulated customers
(``simulator.traffic``), the demo's app orders and the tank gauge simulator use only that, so
they work on every protocol alike.

    async with simulation("ifsf").run(pumps, control_port=0) as line:
        line.line_keys()      # {"udp_port": ..., "listen": ..., "products": [...], ...}
        line.pump_keys(5)     # {"node": 1, "fuelling_point": 1}
        line.lift(5, 1)
"""

from __future__ import annotations

from collections.abc import Mapping

from simulator.lines.base import Fill, SimNozzle, SimPump, SimulatedLine, Simulation
from simulator.lines.dart import SIMULATION as DART
from simulator.lines.gilbarco import SIMULATION as GILBARCO
from simulator.lines.ifsf import SIMULATION as IFSF

__all__ = [
    "SIMULATIONS",
    "Fill",
    "SimNozzle",
    "SimPump",
    "SimulatedLine",
    "Simulation",
    "names",
    "simulation",
]


SIMULATIONS: Mapping[str, Simulation] = {s.name: s for s in (DART, IFSF, GILBARCO)}


def simulation(name: str) -> Simulation:
    """The simulator of ``protocol = name``; KeyError for a protocol without one."""
    return SIMULATIONS[name]


def names() -> list[str]:
    return list(SIMULATIONS)
