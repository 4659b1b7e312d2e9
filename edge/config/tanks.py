"""The `[[gauges]]`, `[[tanks]]` and `[wetstock]` sections: tank gauges and what they measure.

    settings = read_tanks(root, ctx)       # root: the document's Table, before root.done()
    check_tanks(settings, grade_codes=..., pumps=..., findings=ctx.findings)

The register map of a gauge is configuration (there is no standard Chinese map): per gauge the
register table, word order and address base; per tank which register holds the level, water,
temperature and volume, with type and scale. docs/tanks.md describes every key.

Measurements (litres, millimetres, scales) are numbers: integers, floats or quoted decimals. A
float is taken as written (`850.5` is 850.5 L): its shortest form is the literal in the file,
and unlike a price nothing is charged by it.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from domain.config_reader import REQUIRED, Findings, Required, Table, one_of, quote
from drivers.gauges import (
    GaugeUrl,
    ProbeMap,
    Register,
    RegisterKind,
    StrappingTable,
    Transport,
    ValueType,
    WordOrder,
)

from .model import Pump

if TYPE_CHECKING:  # sections.py imports this module: no import back at run time
    from .sections import Context

_GAUGE_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")  # it goes into logs and alerts
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_MS = timedelta(milliseconds=1)
_SECOND = timedelta(seconds=1)
_MINUTE = timedelta(minutes=1)
MAX_TANK = 99
MAX_LITRES = Decimal(1_000_000)  # a forecourt tank holds up to about 60,000 L
MAX_MM = Decimal(10_000)


@dataclass(frozen=True)
class Gauge:
    """One Modbus device that reports tanks: a console, or one probe of a probe bus."""

    id: str
    url: GaugeUrl
    device_id: int = 1
    poll_interval: timedelta = timedelta(seconds=10)
    timeout: timedelta = timedelta(milliseconds=1000)
    offline_after: int = 3  # failed polls in a row before the gauge is offline
    word_order: WordOrder = WordOrder.ABCD
    register_type: RegisterKind = RegisterKind.HOLDING
    address_base: int = 0  # 1: the gauge's manual numbers registers from 1
    where: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class Tank:
    number: int  # as painted on the manhole: "1号罐"
    grade: str
    gauge: str
    capacity: Decimal  # litres
    probe: ProbeMap
    low_stock: Decimal | None = None  # litres; None: no low-stock alert
    high_water_mm: Decimal | None = None  # None: no water alert
    nozzles: tuple[int, ...] | None = None  # None: every nozzle of its grade
    where: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class Wetstock:
    """How readings become events, deliveries and the daily reconciliation."""

    noise: Decimal = Decimal(20)  # litres: smaller changes are not news
    delivery_min: Decimal = Decimal(300)  # litres: a smaller rise is not a delivery
    delivery_settle: timedelta = timedelta(minutes=5)
    reading_interval: timedelta = timedelta(minutes=60)  # a tank.reading at least this often
    tolerance: Decimal = Decimal(20)  # litres, plus...
    tolerance_percent: Decimal = Decimal("0.5")  # ...this much of the day's sales

    def tolerance_for(self, sales: Decimal) -> Decimal:
        return self.tolerance + abs(sales) * self.tolerance_percent / 100


@dataclass(frozen=True)
class TankSettings:
    gauges: tuple[Gauge, ...] = ()
    tanks: tuple[Tank, ...] = ()
    wetstock: Wetstock = Wetstock()

    def gauge(self, gauge_id: str) -> Gauge:
        for gauge in self.gauges:
            if gauge.id == gauge_id:
                return gauge
        raise KeyError(f"no gauge {gauge_id!r}")

    def tank(self, number: int) -> Tank:
        for tank in self.tanks:
            if tank.number == number:
                return tank
        raise KeyError(f"no tank {number}")

    def tanks_on(self, gauge_id: str) -> tuple[Tank, ...]:
        return tuple(tank for tank in self.tanks if tank.gauge == gauge_id)


# -- reading ------------------------------------------------------------------------------------


def read_tanks(t: Table, ctx: Context) -> TankSettings | None:
    """`[[gauges]]`, `[[tanks]]` and `[wetstock]` of the document table `t`; empty settings
    when there are none, None when anything in them is wrong (every problem recorded)."""
    errors_before = len(ctx.findings.errors)
    gauge_tables = t.tables("gauges")
    tank_tables = t.tables("tanks", label="number")
    wetstock = _wetstock(t.table_or_empty("wetstock"))
    gauges = [g for table in gauge_tables if (g := _gauge(table)) is not None]
    # Address bases as written, so a gauge refused for another reason hides no tank problem.
    bases = {
        str(table.peek("id")): base if isinstance(base := table.peek("address_base"), int) else 0
        for table in gauge_tables
    }
    tanks = [tk for table in tank_tables if (tk := _tank(table, bases)) is not None]
    _check_names(gauge_tables, tank_tables, ctx.findings)
    _check_buses(gauges, ctx.findings)
    _check_shared_registers(tanks, ctx.findings)
    for gauge in gauges:
        if not any(tank.gauge == gauge.id for tank in tanks):
            ctx.findings.warn(gauge.where, f"no tank uses gauge {gauge.id}; it is not polled")
    if len(ctx.findings.errors) > errors_before or wetstock is None:
        return None
    return TankSettings(gauges=tuple(gauges), tanks=tuple(tanks), wetstock=wetstock)


def _gauge(t: Table) -> Gauge | None:
    gauge_id = t.text("id", pattern=_GAUGE_ID, rule='letters, digits, "_" and "-", 1 to 32')
    url = t.parsed("url", GaugeUrl.parse)
    # Modbus over serial line, section 2.2: devices are 1..247. Over TCP the unit id is a byte
    # that gateways route by and single devices often ignore (0 and 255 are common).
    serial = url is not None and url.transport is Transport.RTU
    device_id = t.integer("device_id", Gauge.device_id, low=1 if serial else 0,
                          high=247 if serial else 255)  # fmt: skip
    poll_interval = t.duration(
        "poll_interval_seconds", _SECOND, Gauge.poll_interval, low=1, high=3600
    )
    timeout = t.duration("timeout_ms", _MS, Gauge.timeout, low=50, high=10000)
    offline_after = t.integer("offline_after", Gauge.offline_after, low=1, high=100)
    word_order = t.choice("word_order", WordOrder, Gauge.word_order)
    register_type = t.choice("register_type", RegisterKind, Gauge.register_type)
    address_base = t.integer("address_base", Gauge.address_base, low=0, high=1)
    t.done()
    if timeout is not None and poll_interval is not None and timeout >= poll_interval:
        t.warn("timeout_ms", "a timeout as long as the poll interval delays every other gauge")
    if (
        gauge_id is None
        or url is None
        or device_id is None
        or poll_interval is None
        or timeout is None
        or offline_after is None
        or word_order is None
        or register_type is None
        or address_base is None
    ):
        return None
    return Gauge(
        id=gauge_id,
        url=url,
        device_id=device_id,
        poll_interval=poll_interval,
        timeout=timeout,
        offline_after=offline_after,
        word_order=word_order,
        register_type=register_type,
        address_base=address_base,
        where=t.where,
    )


def _tank(t: Table, bases: Mapping[str, int]) -> Tank | None:
    number = t.integer("number", low=1, high=MAX_TANK)
    grade = t.text("grade")
    gauge = t.text("gauge")
    capacity = _number(t, "capacity", REQUIRED, low=Decimal(1), high=MAX_LITRES)
    low_stock = _number(t, "low_stock", None, low=Decimal(0), high=MAX_LITRES)
    high_water = _number(t, "high_water_mm", None, low=Decimal(0), high=MAX_MM)
    nozzles = _nozzles(t)
    strapping = _strapping(t)
    base = bases.get(gauge or "", 0)
    registers = t.table("registers", required=True)
    refused = t.has("strapping") and strapping is None
    probe = _probe(registers, base, strapping, refused) if registers is not None else None
    t.done()
    if capacity is not None and low_stock is not None and low_stock >= capacity:
        t.error("low_stock", f"{low_stock} L is not below the capacity ({capacity} L)")
        return None
    if (
        number is None
        or grade is None
        or gauge is None
        or capacity is None
        or probe is None
        or (t.has("low_stock") and low_stock is None)
        or (t.has("high_water_mm") and high_water is None)
        or (t.has("nozzles") and nozzles is None)
    ):
        return None
    return Tank(
        number=number,
        grade=grade,
        gauge=gauge,
        capacity=capacity,
        probe=probe,
        low_stock=low_stock,
        high_water_mm=high_water,
        nozzles=nozzles,
        where=t.where,
    )


def _probe(
    t: Table, base: int, strapping: StrappingTable | None, strapping_refused: bool
) -> ProbeMap | None:
    level = _register(t, "level", base, required=True)
    water = _register(t, "water", base)
    temperature = _register(t, "temperature", base)
    volume = _register(t, "volume", base)
    t.done()
    if level is None or strapping_refused or any(
        t.has(key) and found is None
        for key, found in (("water", water), ("temperature", temperature), ("volume", volume))
    ):
        return None
    if volume is None and strapping is None:
        t.error("volume", "missing: the tank needs a volume register or a strapping table")
        return None
    if volume is not None and strapping is not None:
        t.error("volume", "give a volume register or a strapping table, not both")
        return None
    try:
        return ProbeMap(
            level=level, water=water, temperature=temperature, volume=volume, strapping=strapping
        )
    except ValueError as exc:
        t.error("", str(exc))
        return None


def _register(t: Table, key: str, base: int, *, required: bool = False) -> Register | None:
    """An address (integer) or {address, type, scale}; None when absent or refused."""
    if not isinstance(t.peek(key), dict):
        address = t.integer(key, REQUIRED if required else None, low=base, high=0xFFFF)
        kind, scale = ValueType.UINT16, Decimal(1)
    else:
        sub = t.table(key)
        assert sub is not None
        address = sub.integer("address", low=base, high=0xFFFF)
        found_kind = sub.choice("type", ValueType, ValueType.UINT16)
        found_scale = _number(sub, "scale", Decimal(1), low=-MAX_LITRES, high=MAX_LITRES)
        sub.done()
        if found_scale == 0:
            sub.error("scale", "must not be 0")
            return None
        if found_kind is None or found_scale is None:
            return None
        kind, scale = found_kind, found_scale
    if address is None:
        return None
    try:
        return Register(address - base, kind, scale)
    except ValueError as exc:
        t.error(key, str(exc))
        return None


def _nozzles(t: Table) -> tuple[int, ...] | None:
    raw = _raw(t, "nozzles", (list,), "an array of nozzle numbers")
    if not isinstance(raw, list):
        return None
    if not raw:
        t.error("nozzles", "must not be empty; leave it out for every nozzle of the grade")
        return None
    numbers = []
    for index, item in enumerate(raw):
        if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= 999:
            t.error(f"nozzles[{index}]", f"expected a nozzle number 1..999, got {item!r}")
            return None
        numbers.append(item)
    repeated = [n for n, seen in Counter(numbers).items() if seen > 1]
    if repeated:
        t.error("nozzles", f"nozzle {repeated[0]} is listed twice")
        return None
    return tuple(numbers)


def _strapping(t: Table) -> StrappingTable | None:
    raw = _raw(t, "strapping", (list,), "an array of [level_mm, litres] pairs")
    if not isinstance(raw, list):
        return None
    points = []
    for index, item in enumerate(raw):
        where = f"strapping[{index}]"
        if not isinstance(item, list) or len(item) != 2:
            t.error(where, f"expected a [level_mm, litres] pair, got {item!r}")
            return None
        try:
            points.append((_decimal(item[0]), _decimal(item[1])))
        except ValueError as exc:
            t.error(where, str(exc))
            return None
    try:
        return StrappingTable(tuple(points))
    except ValueError as exc:
        t.error("strapping", str(exc))
        return None


def _wetstock(t: Table) -> Wetstock | None:
    noise = _number(t, "noise", Wetstock.noise, low=Decimal(0), high=Decimal(10000))
    delivery_min = _number(
        t, "delivery_min", Wetstock.delivery_min, low=Decimal(1), high=MAX_LITRES
    )
    settle = t.duration(
        "delivery_settle_minutes", _MINUTE, Wetstock.delivery_settle, low=1, high=120
    )
    interval = t.duration(
        "reading_interval_minutes", _MINUTE, Wetstock.reading_interval, low=1, high=1440
    )
    tolerance = _number(t, "tolerance", Wetstock.tolerance, low=Decimal(0), high=MAX_LITRES)
    percent = _number(
        t, "tolerance_percent", Wetstock.tolerance_percent, low=Decimal(0), high=Decimal(100)
    )
    t.done()
    if noise is not None and delivery_min is not None and delivery_min <= noise:
        t.error("delivery_min", f"{delivery_min} L must be more than noise ({noise} L)")
        return None
    if (
        noise is None
        or delivery_min is None
        or settle is None
        or interval is None
        or tolerance is None
        or percent is None
    ):
        return None
    return Wetstock(
        noise=noise,
        delivery_min=delivery_min,
        delivery_settle=settle,
        reading_interval=interval,
        tolerance=tolerance,
        tolerance_percent=percent,
    )


# -- numbers and arrays -------------------------------------------------------------------------


def _raw(t: Table, key: str, types: tuple[type, ...], expected: str) -> object:
    # Table has getters for strings, integers and tables but none for arrays or for numbers that
    # may be floats; `_value` is its typed access to a raw value (the key counts as read).
    return t._value(key, types, expected, required=False)


def _decimal(value: object) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value} is not a measurement")
        return Decimal(repr(value))  # the shortest repr is the literal as written
    if isinstance(value, str):
        if not _NUMBER.fullmatch(value):
            raise ValueError(f'{quote(value)} is not a number like "850.5"')
        return Decimal(value)
    raise ValueError(f"expected a number, got {type(value).__name__}")


def _number(
    t: Table,
    key: str,
    default: Decimal | Required | None,
    *,
    low: Decimal,
    high: Decimal,
) -> Decimal | None:
    raw = t._value(key, (int, float, str), "a number", required=default is REQUIRED)
    if raw is None:
        return None if t.has(key) or default is REQUIRED else default
    try:
        number = _decimal(raw)
    except ValueError as exc:
        t.error(key, str(exc))
        return None
    if not low <= number <= high:
        t.error(key, f"{number} is out of range {low}..{high}")
        return None
    return number


# -- checks inside the sections -----------------------------------------------------------------


def _check_names(gauge_tables: list[Table], tank_tables: list[Table], findings: Findings) -> None:
    gauge_ids: dict[object, str] = {}
    for table in gauge_tables:
        value = table.peek("id")
        if isinstance(value, str):
            first = gauge_ids.setdefault(value, table.where)
            if first != table.where:
                findings.error(f"{table.where}.id", f"{quote(value)} is already used by {first}")
    numbers: dict[object, str] = {}
    for table in tank_tables:
        value = table.peek("number")
        if isinstance(value, int) and not isinstance(value, bool):
            first = numbers.setdefault(value, table.where)
            if first != table.where:
                findings.error(f"{table.where}.number", f"{value} is already used by {first}")
        gauge = table.peek("gauge")
        if isinstance(gauge, str) and gauge not in gauge_ids:
            known = one_of(sorted(str(g) for g in gauge_ids)) or "none"
            findings.error(f"{table.where}.gauge", f"no gauge {quote(gauge)} (gauges: {known})")


def _check_buses(gauges: Sequence[Gauge], findings: Findings) -> None:
    """Gauges on one port or host share one connection: same settings, distinct device ids."""
    by_endpoint: dict[str, list[Gauge]] = defaultdict(list)
    for gauge in gauges:
        by_endpoint[gauge.url.endpoint].append(gauge)
    for endpoint, sharing in by_endpoint.items():
        first = sharing[0]
        ids: dict[int, Gauge] = {}
        for gauge in sharing:
            if gauge.url != first.url:
                message = (f"{endpoint} is used by gauge {first.id} as {first.url}; gauges "
                           "sharing a port or host must use the same URL")  # fmt: skip
                findings.error(f"{gauge.where}.url", message)
            owner = ids.setdefault(gauge.device_id, gauge)
            if owner is not gauge:
                message = f"{gauge.device_id} on {endpoint} is already used by gauge {owner.id}"
                findings.error(f"{gauge.where}.device_id", message)


def _check_shared_registers(tanks: Sequence[Tank], findings: Findings) -> None:
    """Two tanks of one gauge cannot read the same register."""
    owners: dict[tuple[str, int], Tank] = {}
    for tank in tanks:
        addresses = [a for r in tank.probe.registers().values() for a in r.addresses]
        taken = [(a, owners[(tank.gauge, a)]) for a in addresses if (tank.gauge, a) in owners]
        if taken:
            address, owner = taken[0]
            message = (f"wire address {address} of gauge {tank.gauge} is already read for "
                       f"tank {owner.number}")  # fmt: skip
            findings.error(f"{tank.where}.registers", message)
        for address in addresses:
            owners.setdefault((tank.gauge, address), tank)


# -- checks against the rest of the station -----------------------------------------------------


def tank_nozzles(settings: TankSettings, pumps: Sequence[Pump]) -> dict[int, int]:
    """Nozzle number -> the tank it draws from (nozzles of no tank are left out)."""
    by_grade: dict[str, list[int]] = defaultdict(list)
    for pump in pumps:
        for nozzle in pump.nozzles:
            by_grade[nozzle.grade].append(nozzle.number)
    result: dict[int, int] = {}
    for tank in settings.tanks:
        numbers = tank.nozzles if tank.nozzles is not None else by_grade.get(tank.grade, [])
        for number in numbers:
            result.setdefault(number, tank.number)
    return result


def check_tanks(
    settings: TankSettings,
    *,
    grade_codes: Collection[str],
    pumps: Sequence[Pump],
    findings: Findings,
) -> None:
    """What the tank sections cannot see alone: grades, nozzles and who feeds whom."""
    nozzle_grades = {n.number: n.grade for pump in pumps for n in pump.nozzles}
    known = one_of(sorted(grade_codes)) or "none"
    claimed: dict[int, Tank] = {}
    by_grade: dict[str, list[Tank]] = defaultdict(list)
    for tank in settings.tanks:
        by_grade[tank.grade].append(tank)
        if tank.grade not in grade_codes:
            findings.error(f"{tank.where}.grade", f"no grade {quote(tank.grade)} (grades: {known})")
        for number in tank.nozzles or ():
            grade = nozzle_grades.get(number)
            if grade is None:
                findings.error(f"{tank.where}.nozzles", f"no nozzle {number}")
            elif grade != tank.grade:
                message = f"nozzle {number} sells grade {quote(grade)}, not {quote(tank.grade)}"
                findings.error(f"{tank.where}.nozzles", message)
            owner = claimed.setdefault(number, tank)
            if owner is not tank:
                message = f"nozzle {number} already draws from tank {owner.number}"
                findings.error(f"{tank.where}.nozzles", message)
    for grade, tanks in by_grade.items():
        if len(tanks) > 1 and any(tank.nozzles is None for tank in tanks):
            numbers = ", ".join(str(tank.number) for tank in tanks)
            for tank in tanks:
                if tank.nozzles is None:
                    message = (f"tanks {numbers} all hold grade {quote(grade)}: list the nozzles "
                               "each one feeds")  # fmt: skip
                    findings.error(f"{tank.where}.nozzles", message)
    fed = tank_nozzles(settings, pumps)
    for tank in settings.tanks:
        if tank.nozzles is None and tank.grade in grade_codes and tank.number not in fed.values():
            message = f"no nozzle sells grade {quote(tank.grade)}: no sale counts against it"
            findings.warn(tank.where, message)
    for number, grade in sorted(nozzle_grades.items()):
        if grade in by_grade and number not in fed:
            message = f"nozzle {number} sells grade {quote(grade)} but draws from no tank"
            findings.warn("tanks", message)


__all__ = [
    "Gauge",
    "Tank",
    "TankSettings",
    "Wetstock",
    "check_tanks",
    "read_tanks",
    "tank_nozzles",
]
