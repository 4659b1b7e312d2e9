"""The simulated nodes of a station config's IFSF line (``forecourt simulate --protocol ifsf
--config FILE``).

Only what a dispenser knows is read: the line's heartbeat port, interval and destination, its
nozzle form, the product number of each grade, and the pumps' nodes, fuelling points, nozzles
and decimals; prices come from ``[[grades]]``. The rest of the file is the controller's
business and may be missing. A node given an address (``[[lines.nodes]]``) listens on that
address's port.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from drivers.ifsf.heartbeat import DEFAULT_UDP_PORT
from drivers.ifsf.messages import NozzleForm
from simulator.metering import DEFAULT_DECIMALS, Decimals

from .node import SimulatedNode

__all__ = ["StationNodes", "nodes_from_config"]


@dataclass
class StationNodes:
    nodes: list[SimulatedNode]
    udp_port: int = DEFAULT_UDP_PORT
    heartbeat_interval: float = 10.0
    heartbeat_to: str = "255.255.255.255"
    ports: dict[int, int] = field(default_factory=dict)  # node -> TCP port


def _table(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where} is not a table")
    return value


def nodes_from_config(path: str | Path, line: str | None = None, **options: Any
                      ) -> StationNodes:
    """The nodes of ``line`` (or of the one IFSF line); ``options`` go to every node."""
    with open(path, "rb") as file:
        document = tomllib.load(file)
    lines = [_table(t, f"{path}: lines") for t in document.get("lines", [])
             if isinstance(t, dict) and t.get("protocol") == "ifsf"
             and (line is None or t.get("id") == line)]
    if len(lines) != 1:
        what = f"no IFSF line {line!r}" if line else (
            "no IFSF line" if not lines else "several IFSF lines; choose one with --line")
        raise ValueError(f"{path}: {what}")
    table = lines[0]
    products = {str(p["grade"]): int(p["number"]) for p in table.get("products", [])}
    prices = {products[str(g["code"])]: Decimal(str(g["price"]))
              for g in document.get("grades", []) if str(g.get("code")) in products}
    form = NozzleForm(table.get("nozzle_form", NozzleForm.NUMBER.value))
    fps: dict[int, dict[int, dict[int, int]]] = {}
    decimals: dict[int, Decimals] = {}
    for index, pump in enumerate(p for p in document.get("pumps", [])
                                 if p.get("line") == table.get("id")):
        where = f"{path}: pumps[{index}]"
        pump_decimals = Decimals(**{k: int(v) for k, v in pump.get("decimals", {}).items()})
        try:
            nozzles = {int(n["logical"]): products[str(n["grade"])] for n in pump["nozzles"]}
        except KeyError as missing:
            raise ValueError(f"{where}: {missing} is missing or has no product number") from None
        if "nodes" in pump:
            for logical, node in enumerate(pump["nodes"], start=1):
                if logical in nozzles:
                    fps.setdefault(int(node), {})[1] = {1: nozzles[logical]}
                    decimals[int(node)] = pump_decimals
        else:
            node = int(pump["node"])
            fps.setdefault(node, {})[int(pump.get("fuelling_point", 1))] = nozzles
            decimals[node] = pump_decimals
    if not fps:
        raise ValueError(f"{path}: no pump on IFSF line {table.get('id')!r}")
    nodes = [SimulatedNode(node, points, prices, decimals=decimals.get(node, DEFAULT_DECIMALS),
                           nozzle_form=form, **options)
             for node, points in sorted(fps.items())]
    ports = {}
    for entry in table.get("nodes", []):
        port = str(entry.get("address", "")).rpartition(":")[2]
        if port.isdigit():
            ports[int(entry["node"])] = int(port)
    return StationNodes(nodes, int(table.get("udp_port", DEFAULT_UDP_PORT)),
                        float(table.get("heartbeat_interval_seconds", 10)),
                        str(table.get("heartbeat_to", "255.255.255.255")), ports)
