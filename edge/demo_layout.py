"""The demo station's forecourt: which lines and pumps it has, and the configuration that
drives them.

Three lines side by side, each served by its protocol's simulator from ``simulator.registry``:

- **dart1**, a Wayne DART line whose pumps run mixed firmware (rev 2.11, an older pump without
  price read-back or suspend, one counting millilitres with 3/2/3 decimals, a bare one);
- **ifsf1**, an IFSF LAN with a Censtar TQC board (two fuelling points: two pumps) and a DIT
  dispenser (a node per nozzle), on 127.0.0.1 with heartbeats to 127.255.255.255;
- **gilbarco1**, a Gilbarco two-wire line.

On each line the first half of the pumps (rounded up) is sold by the attendant, the rest
authorize themselves on nozzle lift. Every pump sells 92; even pumps add 95, odd ones diesel.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from domain.fuelling import Decimals
from edge.store import Store
from simulator.gauge import demo_tanks_toml
from simulator.registry import SimNozzle, SimPump, SimulatedLine

__all__ = [
    "DART_PROFILES",
    "GRADES",
    "PROTOCOLS",
    "DemoLine",
    "DemoPump",
    "demo_config",
    "layout",
    "nozzle_number",
    "sim_pumps",
    "toml_table",
]

GRADES = (("92", "92号汽油", "7.50"), ("95", "95号汽油", "8.02"), ("0", "0号柴油", "7.16"))
PROTOCOLS = ("dart", "ifsf", "gilbarco")
#: The DART line's pumps run these firmware profiles in turn.
DART_PROFILES = ("rev211", "legacy", "milli", "bare")
#: What a firmware counts with where it imposes its own decimals (the config must agree).
_FIRMWARE_DECIMALS = {"milli": Decimals(volume=3, amount=2, price=3)}
_IFSF_PUMPS = ("tqc", "tqc", "dit")  # a TQC board's two fuelling points, a DIT dispenser
_GILBARCO_PUMPS = 2


@dataclass(frozen=True)
class DemoPump:
    number: int
    profile: str  # the protocol's firmware or layout
    authorize: str  # "attendant" or "auto"
    grades: tuple[str, ...]  # by logical nozzle, from 1
    decimals: Decimals = field(default_factory=Decimals)


@dataclass(frozen=True)
class DemoLine:
    id: str
    protocol: str
    pumps: tuple[DemoPump, ...]
    options: str = ""  # the simulator's line options


def _grades(pump: int) -> tuple[str, ...]:
    return (GRADES[0][0], GRADES[1][0] if pump % 2 == 0 else GRADES[2][0])


def _line(id_: str, protocol: str, first: int, profiles: Sequence[str]) -> DemoLine:
    attendant = (len(profiles) + 1) // 2
    return DemoLine(id_, protocol, tuple(
        DemoPump(first + i, profile, "attendant" if i < attendant else "auto",
                 _grades(first + i), _FIRMWARE_DECIMALS.get(profile, Decimals()))
        for i, profile in enumerate(profiles)))


def layout(*, dart_pumps: int = 4, protocols: Sequence[str] = PROTOCOLS) -> list[DemoLine]:
    """The demo's lines: ``dart_pumps`` DART pumps (1..32, firmware in turn), then the IFSF
    and Gilbarco pumps, numbered on across the lines."""
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown or not protocols:
        raise ValueError(f"the demo runs some of {', '.join(PROTOCOLS)}, not {unknown}")
    if "dart" in protocols and not 1 <= dart_pumps <= 32:
        raise ValueError("a DART line has 1..32 pumps")
    lines = []
    number = 1
    for protocol in PROTOCOLS:
        if protocol not in protocols:
            continue
        if protocol == "dart":
            profiles: Sequence[str] = [DART_PROFILES[i % len(DART_PROFILES)]
                                       for i in range(dart_pumps)]
        elif protocol == "ifsf":
            profiles = _IFSF_PUMPS
        else:
            profiles = ["standard"] * _GILBARCO_PUMPS
        lines.append(_line(f"{protocol}1", protocol, number, profiles))
        number += len(profiles)
    return lines


def sim_pumps(line: DemoLine, db: Path) -> list[SimPump]:
    """The simulated pumps of ``line``, their meters where the station last read them (real
    dispensers keep their totalizers; the demo's database persists between runs)."""
    prices = {code: Decimal(price) for code, _, price in GRADES}
    made = []
    with Store.open(db) as store:
        for pump in line.pumps:
            nozzles = []
            for logical, grade in enumerate(pump.grades, start=1):
                last = store.last_totals(pump.number, nozzle_number(pump.number, logical))
                totals = ((last.volume_total, last.amount_total) if last is not None
                          else (Decimal(0), Decimal(0)))
                nozzles.append(SimNozzle(logical, grade, prices[grade], totals))
            made.append(SimPump(pump.number, tuple(nozzles), pump.profile, pump.decimals))
    return made


def nozzle_number(pump: int, logical: int) -> int:
    """The station's nozzle number ("3号枪"): two nozzles a pump, numbered on from pump 1."""
    return 2 * (pump - 1) + logical


# ----------------------------------------------------------------------------- the config


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string
    if isinstance(value, Decimals):
        return (f"{{ volume = {value.volume}, amount = {value.amount}, "
                f"price = {value.price} }}")
    if isinstance(value, list | tuple) and all(not isinstance(v, dict) for v in value):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def toml_table(name: str, keys: Mapping[str, object], *, array: bool = True) -> str:
    """``[[name]]`` (or ``[name]``) with ``keys``; a list of tables becomes ``[[name.key]]``
    tables after the plain keys."""
    head = f"[[{name}]]" if array else f"[{name}]"
    plain = [f"{k} = {_value(v)}" for k, v in keys.items() if not _is_tables(v)]
    nested = [toml_table(f"{name}.{k}", item) for k, v in keys.items() if _is_tables(v)
              for item in v]  # type: ignore[attr-defined]
    return "\n".join([head, *plain, *nested])


def _is_tables(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def demo_config(data: Path, port: int, lines: Sequence[tuple[DemoLine, SimulatedLine]], *,
                broker: str | None = None, public_key: Path | None = None,
                gauge_url: str | None = None) -> str:
    """The station's configuration for the running simulated ``lines``."""
    root = data.resolve()
    parts = [
        "# Written by `forecourt demo` at every start; edit config/station.example.toml instead.",
        toml_table("station", {"id": "XJ-DEMO-0001", "name": "乌鲁木齐演示加油站",
                               "timezone": "Asia/Shanghai"}, array=False),
        toml_table("storage", {"path": str(root / "station.db")}, array=False),
        toml_table("api", {"listen": f"127.0.0.1:{port}"}, array=False),
    ]
    for code, name, price in GRADES:
        parts.append(toml_table("grades", {"code": code, "name": name, "price": price}))
    for line, simulated in lines:
        parts.append(toml_table("lines", {"id": line.id, "protocol": line.protocol,
                                          **simulated.line_keys()}))
    parts.append(toml_table("printer", {
        "kind": "file", "address": str(root / "receipts.bin"),
        "preview_dir": str(root / "receipts"),
        "invoice_url": "https://fapiao.example.com/i/{sale_id}"}, array=False))
    parts.append(toml_table("voice", {"output": "files", "folder": str(root / "voice")},
                            array=False))
    if broker is not None:
        parts.append(toml_table("sync", {"broker": broker,
                                         "cloud_public_key": str(public_key)}, array=False))
    if gauge_url is not None:
        parts.append(demo_tanks_toml(gauge_url))
    for line, simulated in lines:
        for pump in line.pumps:
            keys: dict[str, object] = {"number": pump.number, "line": line.id,
                                       **simulated.pump_keys(pump.number),
                                       "authorize": pump.authorize}
            decimals = simulated.decimals(pump.number)
            if decimals != Decimals():
                keys["decimals"] = decimals
            keys["nozzles"] = [{"number": nozzle_number(pump.number, logical), "logical": logical,
                                "grade": grade}
                               for logical, grade in enumerate(pump.grades, start=1)]
            parts.append(toml_table("pumps", keys))
    return "\n\n".join(parts) + "\n"
