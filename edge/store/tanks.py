"""Tanks in the ledger: gauge readings, alerts, deliveries and the daily reconciliation.

Every function runs inside the caller's transaction, and each event is appended together with
the rows it reports (`tank.reading`, `tank.alert`, `delivery.detected`,
`reconciliation.discrepancy`), so the cloud hears of exactly what was committed.

The daily reconciliation is computed here, in the transaction that stores the closing reading:
opening stock (the previous closing reading) + deliveries - sales, against the measured closing
stock. Sales are summed from the sales table itself by nozzle and time, so no sale is missed or
counted twice whatever the live event stream did.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal
from enum import StrEnum
from typing import Any

from domain.ids import IdMaker
from domain.model import Event, decimal_str, rfc3339
from edge.store import books, events
from edge.store.codec import (
    dec_text,
    dump_json,
    load_json,
    opt_dec_text,
    opt_text_dec,
    text_dec,
    text_time,
    time_text,
)

READING = "tank.reading"
ALERT = "tank.alert"
DELIVERY = "delivery.detected"
DISCREPANCY = "reconciliation.discrepancy"


class AlertKind(StrEnum):
    LOW_STOCK = "low_stock"
    HIGH_WATER = "high_water"
    GAUGE_OFFLINE = "gauge_offline"


@dataclass(frozen=True)
class TankReading:
    tank: int
    grade: str
    read_at: datetime
    level_mm: Decimal
    volume_l: Decimal
    ullage_l: Decimal
    water_mm: Decimal | None = None
    temperature_c: Decimal | None = None


@dataclass(frozen=True)
class AlertChange:
    """An alert raised (`raised`) or cleared; `data` is what the event tells beyond the kind."""

    tank: int
    grade: str
    kind: AlertKind
    raised: bool
    data: dict[str, Any]


@dataclass(frozen=True)
class TankAlert:
    tank: int
    kind: AlertKind
    raised_at: datetime
    data: dict[str, Any]  # the raise event's data


@dataclass(frozen=True)
class Delivery:
    id: str
    tank: int
    grade: str
    started_at: datetime
    ended_at: datetime
    volume_l: Decimal  # delivered
    start_volume_l: Decimal
    end_volume_l: Decimal
    sold_l: Decimal  # sold from the tank while the delivery ran
    detected_at: datetime


@dataclass(frozen=True)
class Reconciliation:
    tank: int
    day: date
    grade: str
    opening_at: datetime
    closing_at: datetime
    opening_l: Decimal
    deliveries_l: Decimal
    sales_l: Decimal
    closing_l: Decimal
    tolerance_l: Decimal

    @property
    def expected_l(self) -> Decimal:
        """The book stock: what should be in the tank."""
        return self.opening_l + self.deliveries_l - self.sales_l

    @property
    def variance_l(self) -> Decimal:
        """Measured minus book: negative is fuel missing (a leak, theft, a meter giving more)."""
        return self.closing_l - self.expected_l

    @property
    def flagged(self) -> bool:
        return abs(self.variance_l) > self.tolerance_l


def _at(value: datetime, zone: tzinfo | None) -> str:
    return rfc3339(value.astimezone(zone) if zone is not None else value)


def _opt(value: Decimal | None, places: int) -> str | None:
    return None if value is None else decimal_str(value, places)


def reading_data(reading: TankReading, zone: tzinfo | None) -> dict[str, Any]:
    """The `tank.reading` event's data, and a tank's figures in the API."""
    return {
        "tank": reading.tank,
        "grade": reading.grade,
        "level_mm": decimal_str(reading.level_mm, 1),
        "water_mm": _opt(reading.water_mm, 1),
        "temperature_c": _opt(reading.temperature_c, 1),
        "volume_l": decimal_str(reading.volume_l),
        "ullage_l": decimal_str(reading.ullage_l),
        "read_at": _at(reading.read_at, zone),
    }


def _insert_reading(conn: sqlite3.Connection, reading: TankReading, closes: date | None) -> None:
    conn.execute(
        "INSERT INTO tank_readings (tank, grade, read_at, level_mm, water_mm, temperature_c, "
        "volume_l, ullage_l, closes_day) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            reading.tank, reading.grade, time_text(reading.read_at), dec_text(reading.level_mm),
            opt_dec_text(reading.water_mm), opt_dec_text(reading.temperature_c),
            dec_text(reading.volume_l), dec_text(reading.ullage_l),
            None if closes is None else closes.isoformat(),
        ),
    )  # fmt: skip


def _reading(row: tuple[Any, ...]) -> TankReading:
    tank, grade, read_at, level, water, temperature, volume, ullage = row
    return TankReading(
        tank=tank, grade=grade, read_at=text_time(read_at), level_mm=text_dec(level),
        volume_l=text_dec(volume), ullage_l=text_dec(ullage), water_mm=opt_text_dec(water),
        temperature_c=opt_text_dec(temperature),
    )  # fmt: skip


_READING_COLUMNS = "tank, grade, read_at, level_mm, water_mm, temperature_c, volume_l, ullage_l"


def record_readings(
    conn: sqlite3.Connection,
    ids: IdMaker,
    now: datetime,
    readings: Sequence[TankReading],
    zone: tzinfo | None,
) -> list[Event]:
    """Each reading as history, with its `tank.reading` event."""
    appended = []
    for reading in readings:
        _insert_reading(conn, reading, None)
        appended.append(events.append(conn, ids, now, READING, reading_data(reading, zone)))
    return appended


def latest_readings(conn: sqlite3.Connection) -> list[TankReading]:
    """The newest stored reading of every tank, by tank number."""
    rows = conn.execute(
        f"SELECT {_READING_COLUMNS} FROM tank_readings WHERE id IN "
        "(SELECT MAX(id) FROM tank_readings GROUP BY tank) ORDER BY tank"
    )
    return [_reading(row) for row in rows]


def readings(
    conn: sqlite3.Connection, tank: int, since: datetime, until: datetime, limit: int
) -> list[TankReading]:
    """A tank's stored readings with since <= read_at < until, oldest first."""
    rows = conn.execute(
        f"SELECT {_READING_COLUMNS} FROM tank_readings WHERE tank = ? AND read_at >= ? "
        "AND read_at < ? ORDER BY read_at, id LIMIT ?",
        (tank, time_text(since), time_text(until), limit),
    )
    return [_reading(row) for row in rows]


# -- alerts -------------------------------------------------------------------------------------


def change_alerts(
    conn: sqlite3.Connection,
    ids: IdMaker,
    now: datetime,
    changes: Sequence[AlertChange],
    zone: tzinfo | None,
) -> list[Event]:
    """Raise or clear alerts; one `tank.alert` per real change (raising an open alert or
    clearing a closed one writes nothing, so a retry after a restart tells nobody twice)."""
    appended = []
    for change in changes:
        open_row = conn.execute(
            "SELECT id FROM tank_alerts WHERE tank = ? AND kind = ? AND cleared_at IS NULL",
            (change.tank, str(change.kind)),
        ).fetchone()
        if change.raised == (open_row is not None):
            continue
        data = {
            "tank": change.tank,
            "grade": change.grade,
            "kind": str(change.kind),
            "status": "raised" if change.raised else "cleared",
            **change.data,
            "at": _at(now, zone),
        }
        if change.raised:
            conn.execute(
                "INSERT INTO tank_alerts (tank, kind, raised_at, data) VALUES (?, ?, ?, ?)",
                (change.tank, str(change.kind), time_text(now), dump_json(data)),
            )
        else:
            conn.execute(
                "UPDATE tank_alerts SET cleared_at = ? WHERE id = ?", (time_text(now), open_row[0])
            )
        appended.append(events.append(conn, ids, now, ALERT, data))
    return appended


def open_alerts(conn: sqlite3.Connection) -> list[TankAlert]:
    rows = conn.execute(
        "SELECT tank, kind, raised_at, data FROM tank_alerts WHERE cleared_at IS NULL "
        "ORDER BY tank, raised_at, id"
    )
    return [
        TankAlert(tank=tank, kind=AlertKind(kind), raised_at=text_time(at), data=load_json(data))
        for tank, kind, at, data in rows
    ]


# -- deliveries ---------------------------------------------------------------------------------


def delivery_data(delivery: Delivery, zone: tzinfo | None) -> dict[str, Any]:
    return {
        "delivery_id": delivery.id,
        "tank": delivery.tank,
        "grade": delivery.grade,
        "volume_l": decimal_str(delivery.volume_l),
        "started_at": _at(delivery.started_at, zone),
        "ended_at": _at(delivery.ended_at, zone),
        "start_volume_l": decimal_str(delivery.start_volume_l),
        "end_volume_l": decimal_str(delivery.end_volume_l),
        "sold_l": decimal_str(delivery.sold_l),
    }


_DELIVERY_COLUMNS = (
    "id, tank, grade, started_at, ended_at, volume_l, start_volume_l, end_volume_l, sold_l, "
    "detected_at"
)


def record_delivery(
    conn: sqlite3.Connection,
    ids: IdMaker,
    now: datetime,
    *,
    tank: int,
    grade: str,
    started_at: datetime,
    ended_at: datetime,
    volume_l: Decimal,
    start_volume_l: Decimal,
    end_volume_l: Decimal,
    sold_l: Decimal,
    zone: tzinfo | None,
) -> tuple[Delivery, Event]:
    delivery = Delivery(
        id=ids.new(now), tank=tank, grade=grade, started_at=started_at, ended_at=ended_at,
        volume_l=volume_l, start_volume_l=start_volume_l, end_volume_l=end_volume_l,
        sold_l=sold_l, detected_at=now,
    )  # fmt: skip
    conn.execute(
        f"INSERT INTO tank_deliveries ({_DELIVERY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            delivery.id, tank, grade, time_text(started_at), time_text(ended_at),
            dec_text(volume_l), dec_text(start_volume_l), dec_text(end_volume_l),
            dec_text(sold_l), time_text(now),
        ),
    )  # fmt: skip
    return delivery, events.append(conn, ids, now, DELIVERY, delivery_data(delivery, zone))


def deliveries(conn: sqlite3.Connection, tank: int | None, limit: int) -> list[Delivery]:
    """Deliveries, newest first (of one tank, or of all)."""
    where, params = ("WHERE tank = ?", (tank, limit)) if tank is not None else ("", (limit,))
    rows = conn.execute(
        f"SELECT {_DELIVERY_COLUMNS} FROM tank_deliveries {where} "
        "ORDER BY ended_at DESC, id DESC LIMIT ?",
        params,
    )
    return [_delivery(row) for row in rows]


def _delivery(r: tuple[Any, ...]) -> Delivery:
    return Delivery(
        id=r[0], tank=r[1], grade=r[2], started_at=text_time(r[3]), ended_at=text_time(r[4]),
        volume_l=text_dec(r[5]), start_volume_l=text_dec(r[6]), end_volume_l=text_dec(r[7]),
        sold_l=text_dec(r[8]), detected_at=text_time(r[9]),
    )  # fmt: skip


# -- the day's close ----------------------------------------------------------------------------


def last_close(conn: sqlite3.Connection, tank: int) -> tuple[date, datetime] | None:
    """The newest day closed for `tank`, and when its closing reading was taken."""
    row = conn.execute(
        "SELECT closes_day, read_at FROM tank_readings WHERE tank = ? AND closes_day IS NOT NULL "
        "ORDER BY closes_day DESC LIMIT 1",
        (tank,),
    ).fetchone()
    return None if row is None else (date.fromisoformat(row[0]), text_time(row[1]))


def discrepancy_data(rec: Reconciliation, zone: tzinfo | None) -> dict[str, Any]:
    return {
        "kind": "wetstock",
        "tank": rec.tank,
        "grade": rec.grade,
        "day": rec.day.isoformat(),
        "opening_at": _at(rec.opening_at, zone),
        "closing_at": _at(rec.closing_at, zone),
        "opening_l": decimal_str(rec.opening_l),
        "deliveries_l": decimal_str(rec.deliveries_l),
        "sales_l": decimal_str(rec.sales_l),
        "expected_l": decimal_str(rec.expected_l),
        "closing_l": decimal_str(rec.closing_l),
        "variance_l": decimal_str(rec.variance_l),
        "tolerance_l": decimal_str(rec.tolerance_l),
    }


def _sum(rows: Any) -> Decimal:
    return sum((text_dec(value) for (value,) in rows), Decimal(0))


def close_day(
    conn: sqlite3.Connection,
    ids: IdMaker,
    now: datetime,
    reading: TankReading,
    day: date,
    *,
    nozzles: Sequence[int],
    tolerance: Callable[[Decimal], Decimal],
    zone: tzinfo | None,
) -> tuple[Reconciliation | None, Event | None]:
    """Stores `reading` as the close of `day` and reconciles the stock since the previous
    close: (the reconciliation, its discrepancy event when beyond `tolerance(sales)`).

    (None, None) for the tank's first close (nothing to open with) and when `day` is already
    closed (nothing is written then).
    """
    if conn.execute(
        "SELECT 1 FROM tank_readings WHERE tank = ? AND closes_day = ?",
        (reading.tank, day.isoformat()),
    ).fetchone():
        return None, None
    opening = conn.execute(
        f"SELECT {_READING_COLUMNS} FROM tank_readings WHERE tank = ? AND closes_day IS NOT NULL "
        "AND closes_day < ? ORDER BY closes_day DESC LIMIT 1",
        (reading.tank, day.isoformat()),
    ).fetchone()
    _insert_reading(conn, reading, day)
    if opening is None:
        return None, None
    start = _reading(opening)
    window = (time_text(start.read_at), time_text(reading.read_at))
    delivered = _sum(conn.execute(
        "SELECT volume_l FROM tank_deliveries WHERE tank = ? AND ended_at > ? AND ended_at <= ?",
        (reading.tank, *window),
    ))  # fmt: skip
    marks = ", ".join("?" * len(nozzles))
    sold = _sum(conn.execute(
        f"SELECT volume FROM sales WHERE nozzle IN ({marks}) AND ended_at > ? AND ended_at <= ?",
        (*nozzles, *window),
    )) if nozzles else Decimal(0)  # fmt: skip
    # Fuel that left the tank through its nozzles without a sale (own use, a transfer out) is
    # drawn like a sale; a transfer in is delivered (docs/books.md). Self-checks went back in.
    drawn, transferred_in = books.tank_moves(conn, reading.tank, nozzles, *window)
    sold += drawn
    delivered += transferred_in
    rec = Reconciliation(
        tank=reading.tank, day=day, grade=reading.grade, opening_at=start.read_at,
        closing_at=reading.read_at, opening_l=start.volume_l, deliveries_l=delivered,
        sales_l=sold, closing_l=reading.volume_l, tolerance_l=tolerance(sold),
    )  # fmt: skip
    conn.execute(
        "INSERT INTO tank_reconciliations (tank, day, grade, opening_at, closing_at, opening_l, "
        "deliveries_l, sales_l, expected_l, closing_l, variance_l, tolerance_l, flagged, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            rec.tank, day.isoformat(), rec.grade, time_text(rec.opening_at),
            time_text(rec.closing_at), dec_text(rec.opening_l), dec_text(rec.deliveries_l),
            dec_text(rec.sales_l), dec_text(rec.expected_l), dec_text(rec.closing_l),
            dec_text(rec.variance_l), dec_text(rec.tolerance_l), int(rec.flagged),
            time_text(now),
        ),
    )  # fmt: skip
    event = None
    if rec.flagged:
        event = events.append(conn, ids, now, DISCREPANCY, discrepancy_data(rec, zone))
    return rec, event


def reconciliations(conn: sqlite3.Connection, tank: int | None, limit: int) -> list[Reconciliation]:
    """Reconciliations, newest day first (of one tank, or of all)."""
    where, params = ("WHERE tank = ?", (tank, limit)) if tank is not None else ("", (limit,))
    rows = conn.execute(
        "SELECT tank, day, grade, opening_at, closing_at, opening_l, deliveries_l, sales_l, "
        f"closing_l, tolerance_l FROM tank_reconciliations {where} ORDER BY day DESC, tank "
        "LIMIT ?",
        params,
    )
    return [_reconciliation(row) for row in rows]


def _reconciliation(r: tuple[Any, ...]) -> Reconciliation:
    return Reconciliation(
        tank=r[0], day=date.fromisoformat(r[1]), grade=r[2], opening_at=text_time(r[3]),
        closing_at=text_time(r[4]), opening_l=text_dec(r[5]), deliveries_l=text_dec(r[6]),
        sales_l=text_dec(r[7]), closing_l=text_dec(r[8]), tolerance_l=text_dec(r[9]),
    )  # fmt: skip
