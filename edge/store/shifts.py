"""Shifts (班结): which sales and totalizer readings a shift owns, and its report.

A shift owns the sales whose seq lies in (start_seq, end_seq]; end_seq is the seq of the
shift's own `shift.closed` event, taken in the transaction that closes it. Because every write
holds the database lock, a sale is committed either before that transaction (and is in the
closing shift) or after it (and is in the next one): no sale falls between two shifts.

Each nozzle is reconciled against its totalizers: what the pump says left the nozzle
(closing - opening totals) minus what was recorded as sales. Any difference is reported and
flagged, never rounded away. `build_report` is pure; the rest runs in the caller's transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

from domain.ids import IdMaker
from domain.model import Event, Sale, TotalsReading, rfc3339
from edge.store import books, events, ledger
from edge.store.codec import dec_text, dump_json, load_json, text_dec, text_time, time_text
from edge.store.errors import StoreError

_SHIFT_COLUMNS = (
    "id, opened_at, opened_by, start_seq, totals_mark, closed_at, closed_by, end_seq, report"
)
_PAGE = 1000


@dataclass(frozen=True)
class Shift:
    id: int
    opened_at: datetime
    opened_by: str | None
    start_seq: int  # the shift owns seqs greater than this ...
    totals_mark: int  # MAX(totals.id) when it opened
    closed_at: datetime | None
    closed_by: str | None
    end_seq: int | None  # ... up to this one (its shift.closed event), once closed
    report: dict[str, Any] | None  # frozen at close

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


def _shift(row: tuple[Any, ...]) -> Shift:
    sid, opened, opened_by, start, mark, closed, closed_by, end, report = row
    return Shift(
        id=sid, opened_at=text_time(opened), opened_by=opened_by, start_seq=start,
        totals_mark=mark, closed_at=None if closed is None else text_time(closed),
        closed_by=closed_by, end_seq=end, report=None if report is None else load_json(report),
    )  # fmt: skip


def get(conn: sqlite3.Connection, shift_id: int) -> Shift | None:
    row = conn.execute(f"SELECT {_SHIFT_COLUMNS} FROM shifts WHERE id = ?", (shift_id,)).fetchone()
    return None if row is None else _shift(row)


def current(conn: sqlite3.Connection) -> Shift | None:
    row = conn.execute(
        f"SELECT {_SHIFT_COLUMNS} FROM shifts WHERE closed_at IS NULL ORDER BY id DESC LIMIT 1"
    ).fetchone()
    return None if row is None else _shift(row)


# --- totalizers


def latest_totals(conn: sqlite3.Connection) -> list[TotalsReading]:
    """The latest reading of every (pump, nozzle), as Store.latest_totals, in this transaction."""
    return ledger.latest_totals(conn)


def _totals_mark(conn: sqlite3.Connection) -> int:
    mark = conn.execute("SELECT COALESCE(MAX(id), 0) FROM totals").fetchone()[0]
    assert isinstance(mark, int)
    return mark


def _store_totals(
    conn: sqlite3.Connection, shift_id: int, side: str, readings: Sequence[TotalsReading]
) -> None:
    conn.executemany(
        "INSERT INTO shift_totals (shift, side, pump, nozzle, volume_total, amount_total, "
        "read_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (shift_id, side, r.pump, r.nozzle, dec_text(r.volume_total),
             dec_text(r.amount_total), time_text(r.read_at))
            for r in readings
        ],
    )  # fmt: skip


def opening_totals(conn: sqlite3.Connection, shift: Shift) -> dict[int, TotalsReading]:
    """By nozzle: the totals the shift opened with. A nozzle first read after the shift opened
    (the station's first start reads its pumps after shift 1 exists) opens at its first
    reading."""
    found: dict[int, TotalsReading] = {}
    rows = conn.execute(
        "SELECT pump, nozzle, volume_total, amount_total, read_at FROM shift_totals "
        "WHERE shift = ? AND side = 'open'",
        (shift.id,),
    )
    for pump, nozzle, volume, amount, at in rows:
        found[nozzle] = TotalsReading(
            pump, nozzle, text_dec(volume), text_dec(amount), text_time(at), "shift"
        )
    for pump, nozzle in ledger.totalled_nozzles(conn):
        if nozzle in found:
            continue
        # One index seek per nozzle (totals_by_nozzle), not a GROUP BY over years of readings.
        first = conn.execute(
            "SELECT volume_total, amount_total, read_at, source FROM totals "
            "WHERE pump = ? AND nozzle = ? AND id > ? ORDER BY id LIMIT 1",
            (pump, nozzle, shift.totals_mark),
        ).fetchone()
        if first is not None:
            volume, amount, at, source = first
            found[nozzle] = TotalsReading(
                pump, nozzle, text_dec(volume), text_dec(amount), text_time(at), source
            )
    return found


def shift_sales(conn: sqlite3.Connection, shift: Shift) -> list[Sale]:
    """The shift's sales in seq order (for an open shift: up to now)."""
    found: list[Sale] = []
    after = shift.start_seq
    while True:
        page = ledger.list_sales(conn, since_seq=after, limit=_PAGE, unpaid=None)
        for sale in page:
            if shift.end_seq is not None and sale.seq > shift.end_seq:
                return found
            found.append(sale)
        if len(page) < _PAGE:
            return found
        after = page[-1].seq


# --- opening and closing


def open_first(conn: sqlite3.Connection, now: datetime) -> tuple[Shift, bool]:
    """(the open shift, False) when the station has shifts; else shift 1, opened now with the
    totals then known, and True."""
    any_row = conn.execute("SELECT 1 FROM shifts LIMIT 1").fetchone()
    if any_row is not None:
        found = current(conn)
        assert found is not None, "every close opens the next shift"
        return found, False
    return _open(conn, now, opened_by=None, start_seq=events.last_seq(conn),
                 opening=latest_totals(conn)), True  # fmt: skip


def _open(
    conn: sqlite3.Connection, now: datetime, *, opened_by: str | None, start_seq: int,
    opening: Sequence[TotalsReading],
) -> Shift:  # fmt: skip
    cursor = conn.execute(
        "INSERT INTO shifts (opened_at, opened_by, start_seq, totals_mark) VALUES (?, ?, ?, ?)",
        (time_text(now), opened_by, start_seq, _totals_mark(conn)),
    )
    assert cursor.lastrowid is not None
    _store_totals(conn, cursor.lastrowid, "open", opening)
    shift = get(conn, cursor.lastrowid)
    assert shift is not None
    return shift


class NoOpenShift(StoreError):
    """There is no shift to close: the station has not opened its first one."""


#: A close's last word (`close`): raises to refuse it, or returns what to add to the report.
Finish = Callable[[sqlite3.Connection, datetime, dict[str, Any]], dict[str, Any]]


def close(
    conn: sqlite3.Connection, ids: IdMaker, now: datetime, *, closed_by: str,
    grades: Mapping[int, str], zone: tzinfo | None, finish: Finish | None = None,
) -> tuple[Shift, Shift, Event]:  # fmt: skip
    """Closes the open shift at the latest totals, opens the next one with them, and appends
    the `shift.closed` event (data: the report): (closed shift, new shift, event).

    `finish(conn, now, report)` has the last word inside the transaction: it raises to refuse
    the close (nothing is written), or returns what to add to the report (edge/shift_close.py:
    the pre-close check, the counted cash)."""
    shift = current(conn)
    if shift is None:
        raise NoOpenShift("no shift is open")
    closing = latest_totals(conn)
    end_seq = events.next_seq(conn)  # the seq of the shift.closed event, below
    closed = Shift(
        id=shift.id, opened_at=shift.opened_at, opened_by=shift.opened_by,
        start_seq=shift.start_seq, totals_mark=shift.totals_mark, closed_at=now,
        closed_by=closed_by, end_seq=end_seq, report=None,
    )  # fmt: skip
    opening = opening_totals(conn, shift)
    closing_by_nozzle = {r.nozzle: r for r in closing}
    report = build_report(
        closed, opening, closing_by_nozzle, shift_sales(conn, closed), grades, zone=zone,
        extras=books.shift_books(conn, after=shift.start_seq, upto=end_seq, opening=opening,
                                 closing=closing_by_nozzle, zone=zone),
    )  # fmt: skip
    if finish is not None:
        report = {**report, **finish(conn, now, report)}
    _store_totals(conn, shift.id, "close", closing)
    conn.execute(
        "UPDATE shifts SET closed_at = ?, closed_by = ?, end_seq = ?, report = ? WHERE id = ?",
        (time_text(now), closed_by, end_seq, dump_json(report), shift.id),
    )
    event = Event(seq=end_seq, id=ids.new(now), type="shift.closed", ts=now, data=report)
    events.insert(conn, event)
    following = _open(conn, now, opened_by=closed_by, start_seq=end_seq, opening=closing)
    return replace(closed, report=report), following, event


# --- the report


def _num(value: Decimal) -> str:
    return format(value, "f")


def _reading(reading: TotalsReading | None, zone: tzinfo | None) -> dict[str, str] | None:
    if reading is None:
        return None
    at = reading.read_at.astimezone(zone) if zone is not None else reading.read_at
    return {"volume_total": _num(reading.volume_total),
            "amount_total": _num(reading.amount_total), "read_at": rfc3339(at)}  # fmt: skip


def _time(value: datetime | None, zone: tzinfo | None) -> str | None:
    if value is None:
        return None
    return rfc3339(value.astimezone(zone) if zone is not None else value)


def _nozzle_line(
    nozzle: int, grade: str | None, opened: TotalsReading | None, closed: TotalsReading | None,
    sales: Sequence[Sale], zone: tzinfo | None, unsold: Sequence[Decimal] | None = None,
) -> dict[str, Any]:  # fmt: skip
    # unsold: (non-sale litres, their yuan, totalizer jump litres, its yuan) of the nozzle
    # (edge/store/books.py): the totals moved by them without a sale.
    nonsale_v, nonsale_a, jump_v, jump_a = unsold or (Decimal(0),) * 4
    sold_volume = sum((s.volume for s in sales), Decimal(0))
    sold_amount = sum((s.amount for s in sales), Decimal(0))
    delta: dict[str, str] | None = None
    difference: dict[str, str] | None = None
    if opened is not None and closed is not None:
        delta_volume = closed.volume_total - opened.volume_total
        delta_amount = closed.amount_total - opened.amount_total
        delta = {"volume": _num(delta_volume), "amount": _num(delta_amount)}
        # What the totals counted and no sale explains: non-sale fills and corrected jumps
        # are accounted for, never a shortage.
        volume_left = delta_volume - sold_volume - nonsale_v - jump_v
        amount_left = delta_amount - sold_amount - nonsale_a - jump_a
        difference = {"volume": _num(volume_left), "amount": _num(amount_left)}  # fmt: skip
        mismatch = volume_left != 0 or amount_left != 0
    else:
        # Sales that no totalizer reading can vouch for are flagged too: unchecked is not fine.
        mismatch = bool(sales)
    pump = closed.pump if closed is not None else opened.pump if opened is not None else None
    if pump is None and sales:
        pump = sales[0].pump
    return {
        "nozzle": nozzle, "pump": pump, "grade": grade,
        "open": _reading(opened, zone), "close": _reading(closed, zone), "delta": delta,
        "sales": {"count": len(sales), "volume": _num(sold_volume), "amount": _num(sold_amount)},
        "difference": difference, "mismatch": mismatch,
        "nonsale": {"volume": _num(nonsale_v), "amount": _num(nonsale_a)},
        "correction": {"volume": _num(jump_v), "amount": _num(jump_a)},
    }  # fmt: skip


def build_report(
    shift: Shift, opening: Mapping[int, TotalsReading], closing: Mapping[int, TotalsReading],
    sales: Sequence[Sale], grades: Mapping[int, str], *, zone: tzinfo | None,
    as_of: datetime | None = None, extras: Mapping[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The shift report as the API, the printer and the `shift.closed` event show it.

    `closing` is the closing totals (for an open shift: the latest, as of `as_of`); `grades`
    the configured grade of each nozzle. Money and volumes are exact decimal strings.
    """
    by_nozzle: dict[int, list[Sale]] = {}
    for sale in sales:
        by_nozzle.setdefault(sale.nozzle, []).append(sale)
    nozzles = sorted(set(grades) | set(opening) | set(closing) | set(by_nozzle))
    lines = []
    for nozzle in nozzles:
        own = by_nozzle.get(nozzle, [])
        grade = grades.get(nozzle) or (own[0].grade if own else None)
        unsold = extras["by_nozzle"].get(nozzle) if extras is not None else None
        lines.append(_nozzle_line(nozzle, grade, opening.get(nozzle), closing.get(nozzle), own,
                                  zone, unsold))  # fmt: skip

    per_grade: dict[str, list[Decimal]] = {}
    per_method: dict[str, list[Decimal]] = {}
    unpaid = []
    for sale in sales:
        figures = per_grade.setdefault(sale.grade, [Decimal(0), Decimal(0), Decimal(0)])
        figures[0] += 1
        figures[1] += sale.volume
        figures[2] += sale.amount
        for payment in sale.payments:
            paid = per_method.setdefault(payment.method, [Decimal(0), Decimal(0)])
            paid[0] += 1
            paid[1] += payment.amount
        if not sale.paid:
            unpaid.append({"id": sale.id, "number": sale.number, "nozzle": sale.nozzle,
                           "amount": _num(sale.amount), "due": _num(sale.due)})  # fmt: skip

    total_volume = sum((s.volume for s in sales), Decimal(0))
    total_amount = sum((s.amount for s in sales), Decimal(0))
    total_paid = sum((s.paid_amount for s in sales), Decimal(0))
    return {
        "shift_id": shift.id,
        "status": "open" if shift.is_open else "closed",
        "opened_at": _time(shift.opened_at, zone),
        "opened_by": shift.opened_by,
        "closed_at": _time(shift.closed_at, zone),
        "closed_by": shift.closed_by,
        "as_of": _time(as_of if shift.is_open else shift.closed_at, zone),
        "seq": {"after": shift.start_seq, "upto": shift.end_seq},
        "nozzles": lines,
        "grades": [{"grade": g, "count": int(f[0]), "volume": _num(f[1]), "amount": _num(f[2])}
                   for g, f in sorted(per_grade.items())],
        "payments": [{"method": m, "count": int(f[0]), "amount": _num(f[1])}
                     for m, f in sorted(per_method.items())],
        "unpaid": unpaid,
        "totals": {"volume": _num(total_volume), "amount": _num(total_amount),
                   "paid": _num(total_paid), "due": _num(total_amount - total_paid)},
        "counts": {"sales": len(sales), "paid": len(sales) - len(unpaid), "unpaid": len(unpaid),
                   "mismatches": sum(1 for line in lines if line["mismatch"])},
        # The books (docs/books.md): fuel that was no sale, corrected totalizer jumps, and each
        # nozzle's litres per price period.
        "nonsale": list(extras["nonsale"]) if extras is not None else [],
        "corrections": list(extras["corrections"]) if extras is not None else [],
        "price_periods": list(extras.get("price_periods", [])) if extras is not None else [],
    }  # fmt: skip


def running_report(
    conn: sqlite3.Connection, shift: Shift, now: datetime, *, grades: Mapping[int, str],
    zone: tzinfo | None,
) -> dict[str, Any]:  # fmt: skip
    """A closed shift's frozen report, or an open shift's figures as of now."""
    if shift.report is not None:
        return shift.report
    closing = {r.nozzle: r for r in latest_totals(conn)}
    opening = opening_totals(conn, shift)
    extras = books.shift_books(conn, after=shift.start_seq, upto=None, opening=opening,
                               closing=closing, zone=zone)
    return build_report(shift, opening, closing, shift_sales(conn, shift),
                        grades, zone=zone, as_of=now, extras=extras)  # fmt: skip
