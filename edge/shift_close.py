"""Closing a shift as stations do it: look first, count the cash, and say why when not clear.

Before a close the console shows the pre-close check (`precheck`): the shift's unpaid sales and
the authorizations still open. A close is refused (`ShiftNotClear`) while there are any, unless
the person gives a reason, and a second close within CLOSED_RECENTLY of the last one is refused
(`ShiftClosedRecently`) unless it is asked for again: a double click, or two consoles at once,
must not close an empty shift.

The counted cash (点钞) is compared with the cash the shift's sales took: over/short (长短款)
is stored in the report. All of it is decided in the close's own transaction (`closing`, the
store's `finish` hook): what was checked is what is closed.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from domain.errors import StationError
from domain.model import decimal_str, rfc3339
from edge.store import authorizations
from edge.store.codec import text_time
from edge.store.shifts import Finish

#: A close this soon after the last one asks first.
CLOSED_RECENTLY = timedelta(minutes=1)


class ShiftNotClear(StationError):
    code = "shift_not_clear"


class ShiftClosedRecently(StationError):
    code = "shift_closed_recently"


def open_authorizations(conn: sqlite3.Connection, zone: tzinfo | None) -> list[dict[str, Any]]:
    found = []
    for auth in authorizations.active(conn):
        preset = None if auth.preset is None else {auth.preset.kind: str(auth.preset.value)}
        created = auth.created_at.astimezone(zone) if zone is not None else auth.created_at
        found.append({"id": auth.id, "pump": auth.pump, "nozzle": auth.nozzle, "preset": preset,
                      "source": auth.source, "user": auth.user, "order_id": auth.order_id,
                      "state": auth.state, "created_at": rfc3339(created)})
    return found


def last_close(conn: sqlite3.Connection) -> datetime | None:
    row = conn.execute("SELECT closed_at FROM shifts WHERE closed_at IS NOT NULL "
                       "ORDER BY id DESC LIMIT 1").fetchone()
    return None if row is None else text_time(row[0])


def cash_taken(report: dict[str, Any]) -> Decimal:
    return sum((Decimal(p["amount"]) for p in report["payments"] if p["method"] == "cash"),
               Decimal(0))


def cash_count(report: dict[str, Any], counted: Decimal | None) -> dict[str, str] | None:
    if counted is None:
        return None
    expected = cash_taken(report)
    return {"counted": decimal_str(counted), "expected": decimal_str(expected),
            "over_short": decimal_str(counted - expected)}


def precheck(conn: sqlite3.Connection, now: datetime, report: dict[str, Any],
             zone: tzinfo | None) -> dict[str, Any]:
    """What the person sees before closing (GET /api/v1/shifts/current/check)."""
    closed = last_close(conn)
    unpaid_due = sum((Decimal(s["due"]) for s in report["unpaid"]), Decimal(0))
    auths = open_authorizations(conn, zone)
    return {
        "shift_id": report["shift_id"],
        "opened_at": report["opened_at"],
        "unpaid": report["unpaid"],
        "unpaid_due": decimal_str(unpaid_due),
        "open_authorizations": auths,
        "clear": not report["unpaid"] and not auths,
        "cash_expected": decimal_str(cash_taken(report)),
        "last_closed_at": None if closed is None else rfc3339(
            closed.astimezone(zone) if zone is not None else closed),
        "closed_recently": closed is not None and now - closed < CLOSED_RECENTLY,
        "counts": report["counts"],
        "totals": report["totals"],
    }


def closing(*, counted_cash: Decimal | None, reason: str | None, repeat: bool,
            zone: tzinfo | None) -> Finish:
    """The store's `finish` for a close asked by a person: refuse it, or add what was decided."""

    def finish(conn: sqlite3.Connection, now: datetime, report: dict[str, Any]) -> dict[str, Any]:
        closed = last_close(conn)
        if closed is not None and now - closed < CLOSED_RECENTLY and not repeat:
            at = closed.astimezone(zone) if zone is not None else closed
            raise ShiftClosedRecently(
                f"the last shift was closed at {rfc3339(at)}, less than a minute ago; "
                'send "repeat": true to close this one too')
        auths = open_authorizations(conn, zone)
        if (report["unpaid"] or auths) and not reason:
            raise ShiftNotClear(
                f"{len(report['unpaid'])} unpaid sale(s) and {len(auths)} open "
                "authorization(s); settle them, or close anyway with a reason")
        return {"cash": cash_count(report, counted_cash),
                "close_reason": reason or None,
                "open_at_close": {"unpaid": len(report["unpaid"]),
                                  "authorizations": [a["id"] for a in auths]}}

    return finish
