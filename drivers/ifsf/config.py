"""The IFSF driver's configuration keys and checks (docs/config.md, "IFSF lines and pumps").

An IFSF *line* is one LAN of dispenser nodes with the controller as one node of subnet 2
(PROTOCOLS.md, IFSF "Nodes", "Heartbeat", "Links"). A *pump* is a dispenser side as painted:
a fuelling point of a Censtar TQC node (``node`` and ``fuelling_point``), or the nodes of a DIT
dispenser, one per nozzle (``nodes``: the node of logical nozzle 1, 2, ...). Each grade sold on
the line has an IFSF product number (``[[lines.products]]``), which is where its price lives on
every dispenser.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum

from domain.config_reader import Findings, Table, quote
from domain.config_values import listen_address
from domain.equipment import LineConfig, PumpConfig

from .address import MAX_FUELLING_POINTS, MAX_NOZZLES, Lna
from .heartbeat import DEFAULT_UDP_PORT
from .ids import CONTROLLER_SUBNET, DISPENSER_SUBNET
from .messages import NozzleForm

__all__ = [
    "MAX_PRICE_DIGITS",
    "FullMode",
    "IfsfLineSettings",
    "IfsfPumpSettings",
    "Member",
    "check_line",
    "members",
    "read_line",
    "read_pump",
]

MAX_PRICE_DIGITS = 6  # a price is a 4-byte number: a control byte and 6 digits
MAX_PRODUCT_NUMBER = 99_999_999  # 4 BCD bytes

_MS = timedelta(milliseconds=1)
_SECOND = timedelta(seconds=1)


class FullMode(StrEnum):
    """How a "fill up" (no preset) is released."""

    AUTO = "auto"  # a plain release with the nozzle up, else the maximum preset
    PRESET = "preset"  # always the maximum preset
    RELEASE = "release"  # always a plain release (for dispensers that take one)


@dataclass(frozen=True)
class IfsfLineSettings:
    node: int = 1  # our node number in subnet 2
    udp_port: int = DEFAULT_UDP_PORT
    heartbeat_interval: timedelta = timedelta(seconds=10)
    heartbeat_to: str = "255.255.255.255"
    listen: tuple[str, int] = ("0.0.0.0", DEFAULT_UDP_PORT)
    advertise: str | None = None  # the IPv4 address our heartbeat carries; None: found out
    reply_timeout: timedelta = timedelta(seconds=2)
    status_poll_interval: timedelta = timedelta(seconds=10)  # static nodes
    nozzle_form: NozzleForm = NozzleForm.NUMBER
    full: FullMode = FullMode.AUTO
    full_preset_amount: Decimal = Decimal("9999.00")
    price_wait: timedelta = timedelta(seconds=300)
    static_nodes: dict[int, tuple[str, int]] = field(default_factory=dict)
    products: dict[str, int] = field(default_factory=dict)  # grade code -> product number

    @property
    def controller(self) -> Lna:
        return Lna(CONTROLLER_SUBNET, self.node)


@dataclass(frozen=True)
class IfsfPumpSettings:
    node: int | None = None  # TQC: the node of the fuelling point
    fuelling_point: int = 1
    nodes: tuple[int, ...] = ()  # DIT: the node of logical nozzle 1, 2, ...


@dataclass(frozen=True)
class Member:
    """One IFSF fuelling point behind a station pump, and the pump's nozzles on it."""

    node: Lna
    fp: int
    nozzles: dict[int, int]  # the station's logical nozzle -> the IFSF logical nozzle


def members(pump: PumpConfig) -> tuple[Member, ...]:
    """The IFSF fuelling points a pump stands on: one (TQC) or one per nozzle (DIT)."""
    settings: IfsfPumpSettings = pump.settings
    if settings.nodes:
        return tuple(Member(Lna(DISPENSER_SUBNET, settings.nodes[n.logical - 1]), 1,
                            {n.logical: 1})
                     for n in sorted(pump.nozzles, key=lambda n: n.logical)
                     if n.logical <= len(settings.nodes))
    assert settings.node is not None
    return (Member(Lna(DISPENSER_SUBNET, settings.node), settings.fuelling_point,
                   {n.logical: n.logical for n in pump.nozzles}),)


def _listen(value: str) -> tuple[str, int]:
    """``host:port``; port 0 takes any free port (our heartbeat tells the nodes which)."""
    host, sep, port = value.rpartition(":")
    if sep and port == "0":
        return listen_address(f"{host}:1")[0], 0
    return listen_address(value)


def _ipv4(value: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise ValueError(f"{quote(value)} is not an IPv4 address") from None


def read_line(t: Table) -> IfsfLineSettings | None:
    d = IfsfLineSettings
    node = t.integer("node", d.node, low=1, high=255)
    udp_port = t.integer("udp_port", d.udp_port, low=1, high=65535)
    interval = t.duration("heartbeat_interval_seconds", _SECOND, d.heartbeat_interval,
                          low=1, high=600)
    heartbeat_to = t.parsed("heartbeat_to", _ipv4, d.heartbeat_to)
    listen = t.parsed("listen", _listen, None)
    advertise = t.parsed("advertise", _ipv4, None)
    reply = t.duration("reply_timeout_ms", _MS, d.reply_timeout, low=100, high=30_000)
    poll = t.duration("status_poll_seconds", _SECOND, d.status_poll_interval, low=1, high=600)
    form = t.choice("nozzle_form", NozzleForm, d.nozzle_form)
    full = t.choice("full", FullMode, d.full)
    full_amount = t.decimal("full_preset_amount", d.full_preset_amount, low=Decimal("0.01"),
                            high=Decimal("999999.99"))
    price_wait = t.duration("price_wait_seconds", _SECOND, d.price_wait, low=1, high=86_400)
    static = _static_nodes(t)
    products = _products(t)
    values = (node, udp_port, interval, heartbeat_to, reply, poll, form, full, full_amount,
              price_wait, static, products)
    if any(v is None for v in values) or (t.has("listen") and listen is None) or (
            t.has("advertise") and advertise is None):
        return None
    assert node is not None and udp_port is not None and interval is not None
    assert heartbeat_to is not None and reply is not None and poll is not None
    assert form is not None and full is not None and full_amount is not None
    assert price_wait is not None and static is not None and products is not None
    return IfsfLineSettings(
        node=node, udp_port=udp_port, heartbeat_interval=interval, heartbeat_to=heartbeat_to,
        listen=listen or ("0.0.0.0", udp_port), advertise=advertise, reply_timeout=reply,
        status_poll_interval=poll, nozzle_form=form, full=full,
        full_preset_amount=full_amount, price_wait=price_wait, static_nodes=static,
        products=products)


def _static_nodes(t: Table) -> dict[int, tuple[str, int]] | None:
    found: dict[int, tuple[str, int]] = {}
    ok = True
    for item in t.tables("nodes", label="node"):
        node = item.integer("node", low=1, high=255)
        address = item.parsed("address", listen_address)
        item.done()
        if node is None or address is None:
            ok = False
            continue
        if node in found:
            item.error("node", f"node {node} is given twice")
            ok = False
        found[node] = address
    return found if ok else None


def _products(t: Table) -> dict[str, int] | None:
    found: dict[str, int] = {}
    ok = True
    for item in t.tables("products"):
        grade = item.text("grade")
        number = item.integer("number", low=0, high=MAX_PRODUCT_NUMBER)
        item.done()
        if grade is None or number is None:
            ok = False
            continue
        if grade in found:
            item.error("grade", f"grade {quote(grade)} has a product number already")
            ok = False
        found[grade] = number
    return found if ok else None


def read_pump(t: Table) -> IfsfPumpSettings | None:
    has_node, has_nodes = t.has("node"), t.has("nodes")
    node = t.integer("node", None, low=1, high=255)
    fp = t.integer("fuelling_point", 1, low=1, high=MAX_FUELLING_POINTS)
    nodes = t.peek("nodes")
    if has_nodes:
        t.allow(frozenset({"nodes"}))
    if has_node == has_nodes:
        t.error("node", "an IFSF pump names its node (and fuelling_point), or the nodes of "
                        "its nozzles (nodes = [...]), one of the two")
        return None
    if has_nodes:
        if (not isinstance(nodes, list) or not nodes or len(nodes) > MAX_NOZZLES
                or not all(isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 255
                           for n in nodes)):
            t.error("nodes", "expected a list of 1..8 node numbers 1..255, the node of logical "
                             "nozzle 1 first")
            return None
        if len(set(nodes)) != len(nodes):
            t.error("nodes", "a node is listed twice")
            return None
        if t.has("fuelling_point"):
            t.error("fuelling_point", "a DIT node has one fuelling point; leave it out")
            return None
        return IfsfPumpSettings(nodes=tuple(nodes))
    if node is None or fp is None:
        return None
    return IfsfPumpSettings(node=node, fuelling_point=fp)


def check_line(line: LineConfig, pumps: Sequence[PumpConfig], prices: dict[str, Decimal],
               findings: Findings) -> None:
    settings: IfsfLineSettings | None = line.settings
    if settings is None:
        return  # its keys were refused: those problems are reported already
    owners: dict[tuple[int, int], PumpConfig] = {}
    used_nodes: set[int] = set()
    for pump in pumps:
        ps: IfsfPumpSettings = pump.settings
        for nozzle in pump.nozzles:
            limit = len(ps.nodes) if ps.nodes else MAX_NOZZLES
            if nozzle.logical > limit:
                what = (f"the pump names {len(ps.nodes)} nodes" if ps.nodes
                        else "an IFSF fuelling point has logical nozzles 1..8")
                findings.error(f"{nozzle.where}.logical", f"{nozzle.logical}: {what}")
            if nozzle.grade not in settings.products:
                findings.error(f"{nozzle.where}.grade",
                               f"grade {quote(nozzle.grade)} has no IFSF product number on "
                               f"line {line.id}: add a [[lines.products]] entry for it")
            _price_fits(pump, nozzle.where, nozzle.grade, prices, findings)
        places = [(n, 1) for n in ps.nodes] if ps.nodes else [(ps.node or 0,
                                                                ps.fuelling_point)]
        for place in places:
            owner = owners.setdefault(place, pump)
            if owner is not pump:
                findings.error(f"{pump.where}.node", f"node {place[0]} fuelling point "
                               f"{place[1]} is already pump {owner.number} on {line.id}")
            used_nodes.add(place[0])
    for node in settings.static_nodes:
        if node not in used_nodes:
            findings.warn(f"{line.where}.nodes", f"node {node} is given an address but no "
                          "pump stands on it")


def _price_fits(pump: PumpConfig, where: str, grade: str, prices: dict[str, Decimal],
                findings: Findings) -> None:
    price = prices.get(grade)
    if price is None:
        return
    places = pump.decimals.price
    units = price.scaleb(places)
    text = f"grade {quote(grade)} costs {price}"
    if units != units.to_integral_value():
        findings.error(where, f"{text}, finer than pump {pump.number} shows "
                              f"(decimals.price = {places})")
    elif units >= Decimal(10) ** MAX_PRICE_DIGITS:
        findings.error(where, f"{text}, more than pump {pump.number} shows "
                              f"({MAX_PRICE_DIGITS} digits)")
