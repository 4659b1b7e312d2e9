"""Cross-field checks: what no single entry shows wrong but the station as a whole does.

Each check reads the entries that parsed and records every problem it sees. docs/config.md
lists them; a controller that drives fuel refuses to start on any error here rather than
dropping the entry in question.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from domain.config_reader import Findings, one_of, quote
from drivers import registry

from .model import Grade, Line, Nozzle, Pump


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


def _shared_resources(parts: Parts, findings: Findings) -> None:
    # One owner per bus: two lines on one serial port (or one UDP port) would talk over each
    # other.
    owners: dict[str, Line] = {}
    for line in parts.lines:
        if line.settings is None:
            continue  # refused; its problems are reported already
        for key, resource in registry.driver(line.protocol).resources(line):
            owner = owners.setdefault(resource, line)
            if owner is not line:
                findings.error(f"{line.where}.{key}",
                               f"{resource} is already used by line {owner.id}")


def _unknown_lines(parts: Parts, findings: Findings) -> None:
    ids = {str(name.value) for name in parts.line_ids}
    known = one_of(sorted(ids)) or "none"
    for pump in parts.pumps:
        if pump.line not in ids:
            findings.error(f"{pump.where}.line", f"no line {quote(pump.line)} (lines: {known})")


def _protocol_checks(parts: Parts, findings: Findings) -> None:
    """Each line's driver checks its pumps: addresses, how many a line takes, the nozzles the
    protocol can address, the prices the pumps can show."""
    prices = {grade.code: grade.price for grade in parts.grades}
    for line in parts.lines:
        on_line = [pump for pump in parts.pumps if pump.line == line.id]
        if not on_line:
            # A warning, not an error: a spare port wired for later pumps harms no sale.
            findings.warn(line.where, f"no pump is on line {line.id}; it stays closed")
            continue
        pumps = [pump for pump in on_line if pump.settings is not None]
        registry.driver(line.protocol).check(line, pumps, prices, findings)


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
    numbers: dict[int, tuple[Pump, Nozzle]] = {}
    for pump, nozzle in _nozzles(parts):
        owner, first = numbers.setdefault(nozzle.number, (pump, nozzle))
        if first is nozzle:
            continue
        place = "this pump" if owner is pump else f"pump {owner.number}"
        findings.error(f"{nozzle.where}.number",
                       f"{nozzle.number} is already used on {place} ({first.where})")
    for pump in parts.pumps:
        logical: dict[int, Nozzle] = {}
        for nozzle in pump.nozzles:
            first = logical.setdefault(nozzle.logical, nozzle)
            if first is not nozzle:
                message = f"{nozzle.logical} is already used by nozzle {first.number} on this pump"
                findings.error(f"{nozzle.where}.logical", message)


CHECKS: tuple[Callable[[Parts, Findings], None], ...] = (
    _duplicate_names,
    _shared_resources,
    _unknown_lines,
    _protocol_checks,
    _unknown_grades,
    _duplicate_nozzles,
)


def run_checks(parts: Parts, findings: Findings) -> None:
    for check in CHECKS:
        check(parts, findings)
