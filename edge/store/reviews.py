"""Recoveries a person settles, and pumps taken out of service until a person releases them.

A review is opened (with a ``reconciliation.discrepancy`` event, kind ``recovery_needs_review``)
when fuel left a nozzle while nothing recorded it and the pump does not offer two agreeing
witnesses. The totals reading it was found with is recorded too, so the same jump is not found
again at the next start; accepting it records the sale (flagged "reviewed") in the same
transaction, dismissing it records why. Both write a ``review.settled`` event.

A pump out of service has a row in ``pump_service``: it survives restarts, and only a person's
release (API or CLI) removes it, with a ``pump.released`` event.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from domain.ids import IdMaker
from domain.model import NewSale, Review, Sale, TotalsReading, quantity_str
from edge.store import events, ledger
from edge.store.codec import (
    dec_text,
    opt_dec_text,
    opt_text_dec,
    opt_text_time,
    text_dec,
    text_time,
    time_text,
)
from edge.store.errors import StoreError

__all__ = [
    "OutOfService",
    "ReviewNotOpen",
    "UnknownReview",
    "open_review",
]

_COLUMNS = (
    "id, pump, nozzle, logical, grade, kind, created_at, totals_volume_before, "
    "totals_volume_after, totals_amount_before, totals_amount_after, filling, "
    "authorization_id, order_id, status, settled_by, settled_at, reason, sale_id"
)


class UnknownReview(StoreError):
    def __init__(self, review_id: str) -> None:
        super().__init__(f"there is no review {review_id}")
        self.review_id = review_id


class ReviewNotOpen(StoreError):
    def __init__(self, review: Review) -> None:
        super().__init__(f"review {review.id} is already {review.status}")
        self.review = review


@dataclass(frozen=True)
class OutOfService:
    pump: int
    since: datetime
    reason: str  # "impossible_figures", "unreadable_fill"
    details: dict[str, Any]


def review_view(review: Review, zone: tzinfo | None = None) -> dict[str, Any]:
    def at(value: datetime | None) -> str | None:
        if value is None:
            return None
        return (value.astimezone(zone) if zone is not None else value).isoformat()

    return {
        "id": review.id, "pump": review.pump, "nozzle": review.nozzle, "grade": review.grade,
        "kind": review.kind, "status": review.status, "created_at": at(review.created_at),
        "totals": {"volume_before": format(review.totals_volume_before, "f"),
                   "volume_after": format(review.totals_volume_after, "f"),
                   "volume_delta": quantity_str(review.volume_delta)},
        "filling": review.filling, "authorization_id": review.authorization_id,
        "order_id": review.order_id, "settled_by": review.settled_by,
        "settled_at": at(review.settled_at), "reason": review.reason,
        "sale_id": review.sale_id,
    }


def _review(row: tuple[Any, ...]) -> Review:
    (rid, pump, nozzle, logical, grade, kind, created, vb, va, ab, aa, filling, auth, order,
     status, by, at, reason, sale_id) = row
    return Review(id=rid, pump=pump, nozzle=nozzle, logical=logical, grade=grade, kind=kind,
                  created_at=text_time(created), totals_volume_before=text_dec(vb),
                  totals_volume_after=text_dec(va), totals_amount_before=opt_text_dec(ab),
                  totals_amount_after=opt_text_dec(aa),
                  filling=None if filling is None else json.loads(filling),
                  authorization_id=auth, order_id=order, status=status, settled_by=by,
                  settled_at=opt_text_time(at), reason=reason, sale_id=sale_id)


def open_review(conn: sqlite3.Connection, ids: IdMaker, now: datetime, *, kind: str,
                grade: str, logical: int, before: TotalsReading, after: TotalsReading,
                filling: dict[str, str] | None, authorization_id: str | None,
                order_id: str | None, zone: tzinfo | None) -> Review:
    review = Review(id=ids.new(now), pump=after.pump, nozzle=after.nozzle, logical=logical,
                    grade=grade, kind=kind, created_at=now,
                    totals_volume_before=before.volume_total,
                    totals_volume_after=after.volume_total,
                    totals_amount_before=before.amount_total,
                    totals_amount_after=after.amount_total, filling=filling,
                    authorization_id=authorization_id, order_id=order_id, status="open")
    conn.execute(
        f"INSERT INTO reviews ({_COLUMNS}) VALUES ({', '.join('?' * 19)})",
        (review.id, review.pump, review.nozzle, logical, grade, kind, time_text(now),
         dec_text(before.volume_total), dec_text(after.volume_total),
         opt_dec_text(before.amount_total), opt_dec_text(after.amount_total),
         None if filling is None else json.dumps(filling), authorization_id, order_id, "open",
         None, None, None, None))
    # The jump is accounted for by the review: the next start compares with this reading.
    ledger.record_totals(conn, TotalsReading(after.pump, after.nozzle, after.volume_total,
                                             after.amount_total, after.read_at, "review"))
    events.append(conn, ids, now, "reconciliation.discrepancy", {
        "kind": "recovery_needs_review", "review_id": review.id, "pump": review.pump,
        "nozzle": review.nozzle, "reason": kind, **review_view(review, zone)["totals"],
        "filling": filling, "order_id": order_id,
        "message": "fuel left this nozzle while nothing recorded it and the pump does not "
                   "show two agreeing witnesses; a person accepts or dismisses it"})
    return review


def get(conn: sqlite3.Connection, review_id: str) -> Review | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM reviews WHERE id = ?", (review_id,)).fetchone()
    return None if row is None else _review(row)


def list_reviews(conn: sqlite3.Connection, *, status: str | None, limit: int) -> list[Review]:
    where, args = ("WHERE status = ?", (status,)) if status else ("", ())
    rows = conn.execute(f"SELECT {_COLUMNS} FROM reviews {where} ORDER BY created_at DESC, id "
                        "LIMIT ?", (*args, limit))
    return [_review(row) for row in rows]


def _open(conn: sqlite3.Connection, review_id: str) -> Review:
    review = get(conn, review_id)
    if review is None:
        raise UnknownReview(review_id)
    if review.status != "open":
        raise ReviewNotOpen(review)
    return review


def accept(conn: sqlite3.Connection, ids: IdMaker, now: datetime, review_id: str, *, user: str,
           sale: NewSale, reason: str | None, zone: tzinfo | None) -> tuple[Review, Sale]:
    """Record ``sale`` (built by the caller from the review's figures) and close the review."""
    review = _open(conn, review_id)
    recorded, _ = ledger.record_sale(conn, ids, now, sale, zone=zone)
    conn.execute("UPDATE reviews SET status = 'accepted', settled_by = ?, settled_at = ?, "
                 "reason = ?, sale_id = ? WHERE id = ?",
                 (user, time_text(now), reason, recorded.id, review_id))
    settled = _open_or_settled(conn, review_id)
    events.append(conn, ids, now, "review.settled", {
        "review_id": review_id, "outcome": "accepted", "sale_id": recorded.id, "user": user,
        "reason": reason, "pump": review.pump, "nozzle": review.nozzle,
        "order_id": review.order_id})
    return settled, recorded


def dismiss(conn: sqlite3.Connection, ids: IdMaker, now: datetime, review_id: str, *,
            user: str, reason: str) -> Review:
    review = _open(conn, review_id)
    conn.execute("UPDATE reviews SET status = 'dismissed', settled_by = ?, settled_at = ?, "
                 "reason = ? WHERE id = ?", (user, time_text(now), reason, review_id))
    events.append(conn, ids, now, "review.settled", {
        "review_id": review_id, "outcome": "dismissed", "user": user, "reason": reason,
        "pump": review.pump, "nozzle": review.nozzle, "order_id": review.order_id})
    return _open_or_settled(conn, review_id)


def _open_or_settled(conn: sqlite3.Connection, review_id: str) -> Review:
    review = get(conn, review_id)
    assert review is not None
    return review


# --- pumps out of service


def take_out_of_service(conn: sqlite3.Connection, ids: IdMaker, now: datetime, pump: int, *,
                        reason: str, details: dict[str, Any]) -> OutOfService | None:
    """Takes the pump out of service with a ``pump.alarm`` event; None if it already was."""
    if service_state(conn, pump) is not None:
        return None
    conn.execute("INSERT INTO pump_service (pump, since, reason, details) VALUES (?, ?, ?, ?)",
                 (pump, time_text(now), reason, json.dumps(details, default=str)))
    events.append(conn, ids, now, "pump.alarm", {
        "pump": pump, "kind": "out_of_service", "reason": reason, **details,
        "message": "taken out of service: authorizations are refused until a person "
                   "releases the pump"})
    return OutOfService(pump, now, reason, details)


def release(conn: sqlite3.Connection, ids: IdMaker, now: datetime, pump: int, *, user: str,
            reason: str) -> OutOfService | None:
    """Puts the pump back in service; None if it was not out of service."""
    found = service_state(conn, pump)
    if found is None:
        return None
    conn.execute("DELETE FROM pump_service WHERE pump = ?", (pump,))
    events.append(conn, ids, now, "pump.released", {
        "pump": pump, "user": user, "reason": reason, "was": found.reason})
    return found


def service_state(conn: sqlite3.Connection, pump: int) -> OutOfService | None:
    row = conn.execute("SELECT since, reason, details FROM pump_service WHERE pump = ?",
                       (pump,)).fetchone()
    if row is None:
        return None
    return OutOfService(pump, text_time(row[0]), row[1], json.loads(row[2]))


def out_of_service(conn: sqlite3.Connection) -> dict[int, OutOfService]:
    rows = conn.execute("SELECT pump, since, reason, details FROM pump_service")
    return {pump: OutOfService(pump, text_time(since), reason, json.loads(details))
            for pump, since, reason, details in rows}
