"""Reading parsed TOML with each value's place in the file, collecting every problem.

A `Table` hands out typed values and records each problem as one line naming the place the way
a person reads the file (`pumps[number=3].nozzles[0].grade`). A getter that finds a problem
records it and returns None, so the caller keeps reading and the user sees every problem at once.
Keys never asked for are reported as unknown by `Table.done()`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum, StrEnum
from typing import Final, Literal, TypeVar

E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")


class _Required(Enum):
    REQUIRED = "required"


REQUIRED: Final = _Required.REQUIRED
Required = Literal[_Required.REQUIRED]


# At most 3 places: pumps show prices with 0..3 decimals. No sign, exponent or spaces.
_PRICE = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,3})?")
_CENT = Decimal("0.01")
_QUANTITY = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,3})?")


def _fallback(default: T | Required | None) -> T | None:
    return None if isinstance(default, _Required) else default


class Findings:
    """Everything wrong (errors) or suspicious (warnings) with one configuration."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []
        # Every key the parser asked for, by its path without indexes ("pumps.nozzles.grade");
        # lets the documentation be checked against what the parser really reads.
        self.keys_read: set[str] = set()

    def error(self, where: str, message: str) -> None:
        self.errors.append(f"{where}: {message}" if where else message)

    def warn(self, where: str, message: str) -> None:
        self.warnings.append(f"{where}: {message}" if where else message)


def join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def kind(value: object) -> str:
    """The TOML type of a parsed value, as a person would name it."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, datetime | date | time):
        return "a date/time"
    if isinstance(value, list):
        return "an array"
    return "a table"


def quote(value: str) -> str:
    """A string as TOML would write it, so messages show exactly what to look for."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def one_of(values: Iterable[str]) -> str:
    return ", ".join(quote(v) for v in values)


class Table:
    """One TOML table being read; `where` is its place, `schema` its path without indexes."""

    def __init__(
        self, data: Mapping[str, object], where: str, findings: Findings, schema: str = ""
    ) -> None:
        self.where = where
        self._data = data
        self._findings = findings
        self._schema = schema
        self._asked: set[str] = set()

    # -- plumbing ---------------------------------------------------------------------------

    def error(self, key: str, message: str) -> None:
        self._findings.error(join(self.where, key), message)

    def warn(self, key: str, message: str) -> None:
        self._findings.warn(join(self.where, key), message)

    def has(self, key: str) -> bool:
        return key in self._data

    def _get(self, key: str) -> object:
        self._asked.add(key)
        self._findings.keys_read.add(join(self._schema, key))
        return self._data.get(key)

    def peek(self, key: str) -> object:
        """The raw value, without marking the key as read (None when absent)."""
        return self._data.get(key)

    def _value(self, key: str, types: tuple[type, ...], expected: str, required: bool) -> object:
        """The value when present and of one of `types`; else None (reported when wrong or
        required). TOML has no null, so None can only mean absent or refused."""
        value = self._get(key)
        if value is None:
            if required:
                self.error(key, "missing (required)")
            return None
        # bool is an int in Python but never in TOML.
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            hint = ""
            if str in types and isinstance(value, int | float) and not isinstance(value, bool):
                hint = f'; quote it: {key} = "{value}"'
            self.error(key, f"expected {expected}, got {kind(value)}{hint}")
            return None
        return value

    def done(self) -> None:
        """Report every key nobody asked for: unknown keys are errors, never ignored."""
        for key, value in self._data.items():
            if key in self._asked:
                continue
            what = "key"
            if isinstance(value, dict):
                what = "section"
            elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                what = "array of tables"
            near = difflib.get_close_matches(key, sorted(self._asked), n=1)
            hint = f" (did you mean {quote(near[0])}?)" if near else ""
            self.error(key, f"unknown {what}{hint}")

    def scratch(self) -> Table:
        """The same table read into throwaway findings: to learn which keys a reader asks for."""
        return Table(self._data, self.where, Findings(), self._schema)

    @property
    def asked(self) -> frozenset[str]:
        return frozenset(self._asked)

    def allow(self, keys: frozenset[str]) -> None:
        """Take ``keys`` as read without reading them (their reader could not be chosen)."""
        self._asked.update(keys)

    def skip_rest(self) -> None:
        """Leave every key not asked for unreported (their reader could not be chosen: the
        problem that prevented it is reported instead). Returns None, as a refused reader does."""
        self._asked.update(self._data)

    # -- values -----------------------------------------------------------------------------

    def text(
        self,
        key: str,
        default: str | Required | None = REQUIRED,
        *,
        pattern: re.Pattern[str] | None = None,
        rule: str = "",
    ) -> str | None:
        value = self._value(key, (str,), "a string", default is REQUIRED)
        if not isinstance(value, str):
            return _fallback(default) if not self.has(key) else None
        if not value.strip():
            self.error(key, "must not be empty")
            return None
        if pattern is not None and not pattern.fullmatch(value):
            self.error(key, f"{quote(value)} is not valid; expected {rule}")
            return None
        return value

    def parsed(
        self, key: str, parse: Callable[[str], T], default: T | Required | None = REQUIRED
    ) -> T | None:
        """A string converted by `parse`, which raises ValueError with the reason."""
        value = self._value(key, (str,), "a string", default is REQUIRED)
        if not isinstance(value, str):
            return _fallback(default) if not self.has(key) else None
        try:
            return parse(value)
        except ValueError as exc:
            self.error(key, str(exc))
            return None

    def integer(
        self,
        key: str,
        default: int | Required | None = REQUIRED,
        *,
        low: int,
        high: int,
        choices: tuple[int, ...] = (),
        as_hex: bool = False,
    ) -> int | None:
        value = self._value(key, (int,), "an integer", default is REQUIRED)
        if not isinstance(value, int):
            return _fallback(default) if not self.has(key) else None
        show: Callable[[int], str] = (lambda n: f"0x{n:02X}") if as_hex else str
        if choices and value not in choices:
            self.error(key, f"{show(value)} is not one of {', '.join(map(show, choices))}")
            return None
        if not low <= value <= high:
            self.error(key, f"{show(value)} is out of range {show(low)}..{show(high)}")
            return None
        return value

    def boolean(self, key: str, default: bool) -> bool | None:
        value = self._value(key, (bool,), "true or false", required=False)
        if not isinstance(value, bool):
            return default if not self.has(key) else None
        return value

    def choice(self, key: str, enum: type[E], default: E | Required = REQUIRED) -> E | None:
        value = self._value(key, (str,), "a string", default is REQUIRED)
        if not isinstance(value, str):
            return _fallback(default) if not self.has(key) else None
        try:
            return enum(value)
        except ValueError:
            allowed = [member.value for member in enum]
            if len(allowed) == 1:
                self.error(key, f"{quote(value)} is not supported; only {quote(allowed[0])}")
            else:
                self.error(key, f"{quote(value)} is not one of {one_of(allowed)}")
            return None

    def duration(
        self, key: str, unit: timedelta, default: timedelta, *, low: int, high: int
    ) -> timedelta | None:
        """A whole number of `unit`s; the key's name says the unit (`..._ms`, `..._minutes`)."""
        count = self.integer(key, default // unit, low=low, high=high)
        return None if count is None else count * unit

    def price(self, key: str) -> Decimal | None:
        """Money as a quoted decimal string: a TOML float cannot hold most prices exactly."""
        value = self._get(key)
        if value is None:
            self.error(key, "missing (required)")
            return None
        if isinstance(value, float):
            self.error(
                key,
                f"{value!r} is a TOML float, and a float literal cannot be trusted for money; "
                f'quote it: {key} = "{value!r}"',
            )
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            self.error(key, f'prices are decimal strings; quote it: {key} = "{value}"')
            return None
        if not isinstance(value, str):
            self.error(key, f'expected a decimal string like "7.50", got {kind(value)}')
            return None
        if not _PRICE.fullmatch(value):
            self.error(key, f'{quote(value)} is not a price like "7.50" (at most 3 decimals)')
            return None
        price = Decimal(value)
        if price <= 0:
            self.error(key, f"{quote(value)} must be greater than 0")
            return None
        # Show at least cents ("7.5" -> 7.50) as receipts and the API do; keep a third place.
        return price if len(value.partition(".")[2]) >= 2 else price.quantize(_CENT)

    def decimal(self, key: str, default: Decimal, *, low: Decimal, high: Decimal
                ) -> Decimal | None:
        """A quantity (litres, yuan, litres a minute) as a decimal string, or an integer."""
        value = self._get(key)
        if value is None:
            return default
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if isinstance(text, str) and _QUANTITY.fullmatch(text):
            number = Decimal(text)
        else:
            self.error(key, f'expected a decimal string like "0.5", got {kind(value)}'
                       if not isinstance(value, str) else f"{quote(value)} is not a number "
                       'like "0.5"')
            return None
        if not low <= number <= high:
            self.error(key, f"{value} is outside {low}..{high}")
            return None
        return number

    # -- nested tables ----------------------------------------------------------------------

    def table(self, key: str, *, required: bool = False) -> Table | None:
        """A sub-table, or None when it is absent (a problem only if required) or not a table."""
        value = self._value(key, (dict,), "a table", required)
        if not isinstance(value, dict):
            return None
        return Table(value, join(self.where, key), self._findings, join(self._schema, key))

    def table_or_empty(self, key: str) -> Table:
        """A sub-table whose every key has a default: absent reads as an empty table."""
        found = self.table(key)
        if found is not None:
            return found
        return Table({}, join(self.where, key), self._findings, join(self._schema, key))

    def tables(self, key: str, *, required: bool = False, label: str = "") -> list[Table]:
        """An array of tables ([[key]]). With `label`, an item is named by that field when it is
        an integer unique in the array (`pumps[number=3]`), else by its index (`pumps[2]`)."""
        value = self._value(key, (list,), "an array of tables", required=False)
        if not isinstance(value, list) or not value:
            if required and (not self.has(key) or value == []):
                entry = f"[[{join(self._schema, key)}]]"
                self.error(key, f"missing: at least one {entry} entry is required")
            return []
        where, schema = join(self.where, key), join(self._schema, key)
        labels = [item.get(label) if isinstance(item, dict) else None for item in value]
        result = []
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                self._findings.error(f"{where}[{index}]", f"expected a table, got {kind(item)}")
                continue
            mark = labels[index]
            usable = isinstance(mark, int) and not isinstance(mark, bool)
            name = f"{label}={mark}" if usable and labels.count(mark) == 1 else str(index)
            result.append(Table(item, f"{where}[{name}]", self._findings, schema))
        return result
