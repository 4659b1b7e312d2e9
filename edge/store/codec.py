"""How values are written to SQLite: decimals and times as exact text, data as JSON.

Decimals are TEXT in plain notation ("7.50", never "7.5E+0") so they read back exactly and a
person can read them with the sqlite3 shell. Times are RFC 3339 TEXT in UTC, so text order is
time order.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from domain.model import rfc3339


def dec_text(value: Decimal) -> str:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValueError(f"expected a finite Decimal, got {value!r}")
    return format(value, "f")


def opt_dec_text(value: Decimal | None) -> str | None:
    return None if value is None else dec_text(value)


def text_dec(text: str) -> Decimal:
    return Decimal(text)


def opt_text_dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def dec_key(value: Decimal) -> str:
    """One text per number, whatever its exponent: 1234.5, 1234.50 and 1234.500 give the same
    key. Used where a decimal identifies something (a totalizer reading identifies a fill)."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def to_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime: {value!r}")
    return value.astimezone(UTC)


def time_text(value: datetime) -> str:
    # Fixed width (always microseconds) so that text order is time order.
    return to_utc(value).isoformat(timespec="microseconds")


def opt_time_text(value: datetime | None) -> str | None:
    return None if value is None else time_text(value)


def text_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def opt_text_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _json_default(value: object) -> object:
    # Event data is meant to be JSON already; these two are accepted because controllers
    # naturally hold them, and they get the contract's text forms.
    if isinstance(value, Decimal):
        return dec_text(value)
    if isinstance(value, datetime):
        return rfc3339(value)
    raise TypeError(f"cannot store {type(value).__name__} in event data")


def dump_json(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def load_json(text: str) -> dict[str, Any]:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("event data is not a JSON object")
    return data
