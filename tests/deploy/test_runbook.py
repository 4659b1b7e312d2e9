"""docs/runbook.md names every alarm, alert, discrepancy kind and error code the station raises.

The codes are collected from where the code declares them: enums and error classes where there
are some, string literals at the places that raise or record them where there are not (event
`kind`s, API and cloud command refusals). The runbook must mention each in backticks.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

import pytest

from domain.errors import StationError
from drivers.dart.replies import AlarmCode
from drivers.printer.status import PrinterCondition
from drivers.voice.errors import AlarmKind
from edge.store import errors as store_errors
from edge.store.tanks import AlertKind

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "runbook.md"
SOURCES = ("edge", "drivers", "sync")

T = TypeVar("T")


def _sources(*folders: str) -> Iterable[tuple[Path, str]]:
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path, path.read_text("utf-8")


def _matches(pattern: str, *folders: str) -> set[str]:
    found: set[str] = set()
    for _path, text in _sources(*folders):
        found.update(re.findall(pattern, text))
    return found


def _subclasses(cls: type[T]) -> Iterable[type[T]]:
    sub: type[T]
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


# ---------------------------------------------------------------------------- collectors


def alarm_event_types() -> set[str]:
    """Event types that are alarms: `pump.alarm`, `tank.alert`, `reconciliation.discrepancy`."""
    return _matches(r'"([a-z]+\.(?:alarm|alert|discrepancy))"', *SOURCES)


def event_kinds() -> set[str]:
    """`kind`s written into alarm and discrepancy event data as literals."""
    return (_matches(r'"kind":\s*"([a-z_]+)"', *SOURCES)
            | _matches(r'raise_alarm\(\s*"([a-z_]+)"', *SOURCES))


def enum_kinds() -> set[str]:
    """Tank alert kinds, voice alarm kinds, printer alarms (a printer back is `recovered`)."""
    printer = {c.value for c in PrinterCondition if c is not PrinterCondition.READY}
    return {k.value for k in AlertKind} | {k.value for k in AlarmKind} | printer | {"recovered"}


def pump_alarm_codes() -> set[str]:
    """DART DC5 alarm codes, as the runbook's table writes them: two hex digits."""
    return {f"{code:02X}" for code in AlarmCode}


def storage_reasons() -> set[str]:
    # The reasons StoreUnavailable carries (errors.py maps SQLite's result codes to them).
    return (set(store_errors._UNAVAILABLE_CODES.values())
            | {reason for _text, reason in store_errors._UNAVAILABLE_MESSAGES})


def station_error_codes() -> set[str]:
    return {StationError.code} | {sub.code for sub in _subclasses(StationError)}


def api_error_codes() -> set[str]:
    api = ("edge/api",)
    codes = _matches(r'(?:ApiError|api_error|LoginRefused)\(\s*\d{3},\s*"([a-z_]+)"', *api)
    codes |= _matches(r'noted\(request,\s*"([a-z_]+)"\)', *api)
    codes |= _matches(r'\d{3}: "([a-z_]+)"', *api)  # status -> code maps
    codes |= _matches(r'\.get\(exc\.status_code,\s*"([a-z_]+)"\)', *api)
    # A payment's store error leaves as its class name in snake case (edge/api/app.py).
    payment: list[type[store_errors.StoreError]] = [
        store_errors.InvalidPayment, *_subclasses(store_errors.InvalidPayment),
        store_errors.UnknownSale]
    return codes | {_snake(cls.__name__) for cls in payment}


def command_refusal_codes() -> set[str]:
    refusals = r'(?:_Refused|OrderRefused|PriceRefused|CommandError)\(\s*"([a-z_]+)"'
    codes = _matches(refusals, *SOURCES)
    codes |= _matches(r'_refusal\(\s*[^,()]+,\s*"([a-z_]+)"', "sync")
    return codes


def health_fields() -> set[str]:
    """The keys of the body `Station.health()` returns (`GET /api/v1/health`)."""
    tree = ast.parse((ROOT / "edge" / "station.py").read_text("utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.AsyncFunctionDef) and node.name == "health":
            return {key.value for dict_ in ast.walk(node) if isinstance(dict_, ast.Dict)
                    for key in dict_.keys
                    if isinstance(key, ast.Constant) and isinstance(key.value, str)}
    raise AssertionError("Station.health() not found")


COLLECTORS = {
    "alarm event type": alarm_event_types,
    "event kind": event_kinds,
    "alert, voice or printer kind": enum_kinds,
    "pump alarm code": pump_alarm_codes,
    "storage reason": storage_reasons,
    "station error code": station_error_codes,
    "API error code": api_error_codes,
    "cloud command refusal code": command_refusal_codes,
    "health field": health_fields,
}

# What each collector must at least find: a collector that silently finds nothing (a renamed
# class, a changed call) would make the check below pass for the wrong reason.
KNOWN = {
    "alarm event type": {"pump.alarm", "tank.alert", "reconciliation.discrepancy",
                         "printer.alarm", "voice.alarm"},
    "event kind": {"amount_mismatch", "totals_went_back", "price_readback_mismatch", "wetstock"},
    "alert, voice or printer kind": {"low_stock", "gauge_offline", "sound_device", "paper_out"},
    "pump alarm code": {"09", "0E"},
    "storage reason": {"disk_full", "locked", "read_only", "io_error", "cannot_open"},
    "station error code": {"pump_offline", "storage_unavailable", "nozzle_reserved"},
    "API error code": {"forbidden", "login_throttled", "not_found", "overpayment",
                       "invalid_payment",
                       "unknown_sale", "printer_not_configured", "invalid_request"},
    "cloud command refusal code": {"bad_signature", "replayed", "internal_error",
                                   "price_mismatch", "not_available", "unknown_grade"},
    "health field": {"status", "storage", "sync", "lines", "printer"},
}


def mentioned(text: str) -> set[str]:
    """Everything the runbook writes in backticks, and each comma-separated part of it."""
    found: set[str] = set()
    for span in re.findall(r"`([^`]+)`", text):
        found.add(span.strip())
        found.update(part.strip() for part in span.split(","))
    return found


@pytest.mark.parametrize("what", sorted(COLLECTORS))
def test_the_collector_finds_what_the_code_declares(what: str) -> None:
    found = COLLECTORS[what]()
    missing = KNOWN[what] - found
    assert not missing, f"the {what} collector no longer finds {sorted(missing)}"


@pytest.mark.parametrize("what", sorted(COLLECTORS))
def test_the_runbook_mentions_every_code(what: str) -> None:
    names = mentioned(RUNBOOK.read_text("utf-8"))
    missing = sorted(COLLECTORS[what]() - names)
    assert not missing, (f"docs/runbook.md does not mention these {what}s (in backticks): "
                         f"{', '.join(missing)}")


def test_the_check_fails_for_a_code_it_does_not_find() -> None:
    names = mentioned("| `pump_offline` | ... | `not_found`, `method_not_allowed` |")
    assert {"pump_offline", "not_found", "method_not_allowed"} <= names
    assert "pump_not_ready" not in names
