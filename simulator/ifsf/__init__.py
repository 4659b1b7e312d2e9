"""Simulated IFSF dispenser nodes (Censtar TQC: one node, up to 4 fuelling points; DIT: a node
per nozzle), written from the field notes: a test peer for the IFSF driver and
``forecourt simulate --protocol ifsf``.

The fuelling point (``SimulatedFp``) and node (``SimulatedNode``) models do no I/O and take
time as an argument; ``IfsfServer`` puts nodes on the network (heartbeats, two TCP links per
node); ``run_ifsf_simulator`` serves them in the running loop and ``IfsfSimulator`` is the
handle that lifts and hangs nozzles, injects faults and reads back every filling. The HTTP
control API is ``simulator.ifsf.app``, the command line ``simulator.ifsf.cli``.
"""

from .control import IfsfSimulator, Layout, make_nodes, run_ifsf_simulator
from .fuelling_point import BufferedTransaction, SimulatedFp
from .node import NodeFaults, SimulatedNode
from .server import IfsfServer

__all__ = [
    "BufferedTransaction",
    "IfsfServer",
    "IfsfSimulator",
    "Layout",
    "NodeFaults",
    "SimulatedFp",
    "SimulatedNode",
    "make_nodes",
    "run_ifsf_simulator",
]
