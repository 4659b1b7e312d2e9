"""Cross-field checks: what no single entry shows wrong but the station as a whole does.

Each check reads the entries that parsed and records every problem it sees. docs/config.md
lists them; a controller that drives fuel refuses to start on any error here rather than
dropping the entry in question.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from domain.config_reader import Findings, one_of, quote

from .model import Grade, Line, Nozzle, Pump

MAX_PUMPS_PER_LINE = 32  # DART addresses 0x50..0x6F
MAX_PRICE_DIGITS = 6  # DART carries a unit price as 3 bytes of packed BCD


class Name(NamedTuple):
    """A name as written (a grade code, a line id, a pump number) and where."""

    where: str  # the entry's place: "grades[1]"
    value: str | int


@dataclass(frozen=True)
class Parts:
    """The entries of one file that parsed, and the names every entry declares.

    Names come from every entry, even one refused for another problem, so a bad price does
    not also make each nozzle of that grade "unknown", and duplicates are found all the same.
    """

    grades: Sequence[Grade]
    lines: Sequence[Line]
    pumps: Sequence[Pump]
    grade_codes: Sequence[Name]
    line_ids: Sequence[Name]
    pump_numbers: Sequence[Name]


def _duplicates(names: Sequence[Name], key: str, findings: Findings) -> None:
    first: dict[str | int, str] = {}
    for name in names:
        where = first.setdefault(name.value, name.where)
        if where != name.where:
            shown = quote(name.value) if isinstance(name.value, str) else name.value
            findings.error(f"{name.where}.{key}", f"{shown} is already used by {where}")


def _duplicate_names(parts: Parts, findings: Findings) -> None:
    _duplicates(parts.grade_codes, "code", findings)
    _duplicates(parts.line_ids, "id", findings)
    _duplicates(parts.pump_numbers, "number", findings)


def _shared_ports(parts: Parts, findings: Findings) -> None:
    ports: dict[str, Line] = {}
    for line in parts.lines:
        # One owner per bus: two lines on one port would talk over each other. Each loop://
        # is a separate loopback, so it may repeat.
        if line.port != "loop://":
            owner = ports.setdefault(line.port, line)
            if owner is not line:
                message = f"{line.port} is already used by line {owner.id}"
                findings.error(f"{line.where}.port", message)


def _shared_addresses(parts: Parts, findings: Findings) -> None:
    addresses: dict[tuple[str, int], Pump] = {}
    for pump in parts.pumps:
        owner = addresses.setdefault((pump.line, pump.address), pump)
        if owner is not pump:
            message = f"0x{pump.address:02X} is already used by pump {owner.number} on {pump.line}"
            findings.error(f"{pump.where}.address", message)


def _unknown_lines(parts: Parts, findings: Findings) -> None:
    ids = {str(name.value) for name in parts.line_ids}
    known = one_of(sorted(ids)) or "none"
    for pump in parts.pumps:
        if pump.line not in ids:
            findings.error(f"{pump.where}.line", f"no line {quote(pump.line)} (lines: {known})")


def _line_loads(parts: Parts, findings: Findings) -> None:
    load = Counter(pump.line for pump in parts.pumps)
    for line in parts.lines:
        count = load[line.id]
        if count > MAX_PUMPS_PER_LINE:
            message = f"{count} pumps on {line.id}; a DART line has {MAX_PUMPS_PER_LINE} at most"
            findings.error(line.where, message)
        elif count == 0:
            # A warning, not an error: a spare port wired for later pumps harms no sale.
            findings.warn(line.where, f"no pump is on line {line.id}; its port stays closed")


def _nozzles(parts: Parts) -> list[tuple[Pump, Nozzle]]:
    return [(pump, nozzle) for pump in parts.pumps for nozzle in pump.nozzles]


def _unknown_grades(parts: Parts, findings: Findings) -> None:
    codes = {str(name.value) for name in parts.grade_codes}
    known = one_of(sorted(codes)) or "none"
    for _, nozzle in _nozzles(parts):
        if nozzle.grade not in codes:
            message = f"no grade {quote(nozzle.grade)} (grades: {known})"
            findings.error(f"{nozzle.where}.grade", message)


def _duplicate_nozzles(parts: Parts, findings: Findings) -> None:
    numbers: dict[int, Pump] = {}
    for pump, nozzle in _nozzles(parts):
        owner = numbers.setdefault(nozzle.number, pump)
        if owner is not pump:
            message = f"{nozzle.number} is already used on pump {owner.number}"
            findings.error(f"{nozzle.where}.number", message)
    for pump in parts.pumps:
        logical: dict[int, Nozzle] = {}
        for nozzle in pump.nozzles:
            first = logical.setdefault(nozzle.logical, nozzle)
            if first is not nozzle:
                message = f"{nozzle.logical} is already used by nozzle {first.number} on this pump"
                findings.error(f"{nozzle.where}.logical", message)


def _prices_fit_pumps(parts: Parts, findings: Findings) -> None:
    # A pump with the wrong price decimals shows every price ten times off, so a price the
    # pump cannot show exactly is refused before it reaches the pump.
    prices = {grade.code: grade.price for grade in parts.grades}
    for pump, nozzle in _nozzles(parts):
        price = prices.get(nozzle.grade)
        if price is None:
            continue
        places = pump.decimals.price
        units = price.scaleb(places)
        grade = f"grade {quote(nozzle.grade)} costs {price}"
        if units != units.to_integral_value():
            message = f"{grade}, finer than pump {pump.number} shows (decimals.price = {places})"
            findings.error(nozzle.where, message)
        elif units >= Decimal(10) ** MAX_PRICE_DIGITS:
            message = f"{grade}, more than pump {pump.number} shows ({MAX_PRICE_DIGITS} digits)"
            findings.error(nozzle.where, message)


CHECKS: tuple[Callable[[Parts, Findings], None], ...] = (
    _duplicate_names,
    _shared_ports,
    _shared_addresses,
    _unknown_lines,
    _line_loads,
    _unknown_grades,
    _duplicate_nozzles,
    _prices_fit_pumps,
)


def run_checks(parts: Parts, findings: Findings) -> None:
    for check in CHECKS:
        check(parts, findings)
