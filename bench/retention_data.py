"""The station data of bench/retention.py: a busy station's traffic written through the store's own
code, and the copies of it that make years of it.

``Traffic`` writes a sale the way the daemon does (its authorization and states, the sale, the
payments, the audit entries, the tank readings its litres cause, app orders, shift and tank day
closes, the cloud's acks). ``build_seed`` runs it for some days with one transaction per day
(the store's code, without a commit per write); ``clone`` appends shifted copies of those days.
"""

from __future__ import annotations

import argparse
import functools
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from domain.model import NewSale, Preset, TotalsReading
from edge.store import Store
from edge.store.db import Database
from edge.store.tanks import TankReading

ZONE = ZoneInfo("Asia/Shanghai")
START = datetime(2021, 1, 1, tzinfo=UTC)
PRICES = {"92": Decimal("7.50"), "95": Decimal("8.02"), "0": Decimal("7.16")}
# 8 dispensers of 2 nozzles; tanks 1-2 hold 92, 3 holds 95, 4 diesel.
NOZZLES = [(n, (n + 1) // 2, ("92", "95", "92", "0")[(n - 1) % 4]) for n in range(1, 17)]
TANK_OF = {n: 1 if g == "92" and n <= 8 else 2 if g == "92" else 3 if g == "95" else 4
           for n, _, g in NOZZLES}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class _DayTransactions(Database):
    """Store writes join the transaction the bench opens per day: the store's own code, without
    a commit (and its fsync) per write."""

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._connection()


class Traffic:
    """A busy station's day, written through the Store as the daemon writes it."""

    def __init__(self, store: Store, clock: Clock, args: argparse.Namespace) -> None:
        self.store, self.clock, self.args = store, clock, args
        self.rng = random.Random(args.seed)
        self.totals = {n: [Decimal(100000), Decimal(750000)] for n, _, _ in NOZZLES}
        self.tanks = {t: Decimal(30000) for t in range(1, 5)}
        self.reported = dict(self.tanks)
        self.gap = timedelta(seconds=86400 / args.sales_per_day)
        self.count = 0
        store.seed_prices(PRICES)
        store.open_first_shift()

    def audit(self, action: str, target: str, path: str, status: int, body: Any) -> None:
        self.store.audit_append(actor="cashier1", role="cashier", action=action, target=target,
                                details={"method": "POST", "path": path, "status": status,
                                         "body": body})  # fmt: skip

    def sale(self) -> None:
        store, rng = self.store, self.rng
        nozzle, pump, grade = NOZZLES[rng.randrange(16)]
        order_id = f"APP{self.count:09d}" if rng.random() < self.args.orders else None
        preset = Preset("amount", Decimal(rng.choice((100, 200, 300))))
        if order_id is not None:
            store.create_order(order_id=order_id, nozzle=nozzle, grade=grade, price=PRICES[grade],
                               preset=preset, paid=Decimal(300), status="accepted",
                               expires_at=self.clock() + timedelta(minutes=10))
            store.audit_append(actor="cloud", action="command.order.create", target=order_id)
        else:
            self.audit("nozzle.authorize", str(nozzle), f"/api/v1/nozzles/{nozzle}/authorize",
                       202, {"preset": {"amount": str(preset.value)}})
        auth = store.create_authorization(
            pump=pump, nozzle=nozzle, preset=preset, source="order" if order_id else "attendant",
            user=None if order_id else "cashier1", order_id=order_id)
        for state in ("authorized", "fuelling"):
            store.set_authorization_state(auth.id, state)
            if order_id is not None:
                store.update_order(order_id, status=state, authorization_id=auth.id)
        volume = Decimal(rng.randint(1500, 6000)) / 100  # 15 to 60 litres
        amount = (volume * PRICES[grade]).quantize(Decimal("0.01"))
        totals = self.totals[nozzle]
        before = TotalsReading(pump, nozzle, totals[0], totals[1], self.clock(), "sale")
        totals[0] += volume
        totals[1] += amount
        after = TotalsReading(pump, nozzle, totals[0], totals[1], self.clock(), "sale")
        sale, _ = store.record_sale(NewSale(
            pump=pump, nozzle=nozzle, logical=(nozzle - 1) % 2 + 1, grade=grade,
            price=PRICES[grade], volume=volume, amount=amount, price_set_id="config",
            started_at=self.clock() - timedelta(minutes=2), ended_at=self.clock(),
            authorization_id=auth.id, order_id=order_id, recovered=False, totals_before=before,
            totals_after=after))  # fmt: skip
        if order_id is not None:
            store.update_order(order_id, status="completed", sale_id=sale.id,
                               refund=Decimal(300) - amount)
        else:
            parts = [amount] if rng.random() >= self.args.split else [Decimal(50), amount - 50]
            for part, method in zip(parts, ("wechat", "cash"), strict=False):
                store.add_payment(sale.id, method=method, amount=part, user="cashier1")
                self.audit("sale.payment", sale.id, f"/api/v1/sales/{sale.id}/payments", 201,
                           {"method": method, "amount": str(part)})
        self._tank(TANK_OF[nozzle], volume)
        self.count += 1
        self.clock.now += self.gap
        if self.count % 20 == 0:
            store.outbox_ack(store.last_seq())
        if self.count % (self.args.sales_per_day // 3) == 0:
            store.close_shift(closed_by="manager1", grades={n: g for n, _, g in NOZZLES})
            self.audit("shift.close", "current", "/api/v1/shifts/current/close", 200, None)
        if self.count % self.args.sales_per_day == 0:
            self._close_days()

    def _reading(self, tank: int, volume: Decimal) -> TankReading:
        return TankReading(tank=tank, grade=("92", "92", "95", "0")[tank - 1],
                           read_at=self.clock(), level_mm=(volume / 15).quantize(Decimal("0.1")),
                           volume_l=volume, ullage_l=Decimal(40000) - volume,
                           water_mm=Decimal("3.0"), temperature_c=Decimal("18.4"))

    def _tank(self, tank: int, volume: Decimal) -> None:
        # The gauge sees the level fall through the fill: a reading each `noise` litres.
        self.tanks[tank] -= volume
        while self.reported[tank] - self.tanks[tank] >= self.args.noise:
            self.reported[tank] -= self.args.noise
            self.store.record_tank_readings([self._reading(tank, self.reported[tank])])
        if self.tanks[tank] < 8000:
            self.tanks[tank] += 20000  # a delivery (its detection is not written here)
            self.reported[tank] = self.tanks[tank]
            self.store.record_tank_readings([self._reading(tank, self.tanks[tank])])

    def _close_days(self) -> None:
        day = self.clock().astimezone(ZONE).date() - timedelta(days=1)
        for tank in self.tanks:
            nozzles = [n for n in TANK_OF if TANK_OF[n] == tank]
            self.store.close_tank_day(self._reading(tank, self.tanks[tank]), day, nozzles=nozzles,
                                      tolerance=lambda sold: Decimal(20) + sold / 200)


def build_seed(path: Path, args: argparse.Namespace) -> float:
    """`--seed-days` days of traffic through the store's own code, a transaction per day."""
    clock = Clock(START)
    db = _DayTransactions.open(path, clock=clock, busy_timeout_ms=5000)
    store = Store(db)
    store.zone = ZONE
    conn = db._connection()
    conn.execute("PRAGMA synchronous = OFF")  # a bench file: a power cut may lose it
    started = time.perf_counter()
    try:
        conn.execute("BEGIN")
        traffic = Traffic(store, clock, args)
        conn.execute("COMMIT")
        for _ in range(args.seed_days):
            conn.execute("BEGIN")
            for _ in range(args.sales_per_day):
                traffic.sale()
            conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        store.close()
    return time.perf_counter() - started


# How each seed row becomes copy k's: {column: SQL of the copy}. Keys and times move on by
# k x the seed's days (ids keep their UUIDv7 time order), totalizers by k x 10,000,000, seqs by
# k x the seed's events; columns not named are copied. The seed's open shift and unacknowledged
# events move to the newest copy.
CLONES: dict[str, dict[str, str]] = {
    "sales": {"id": "sid(id)", "seq": "seq + :events", "started_at": "ts(started_at)",
              "ended_at": "ts(ended_at)", "authorization_id": "sid(authorization_id)",
              "order_id": "oid(order_id)", "totals_volume_before": "dec(totals_volume_before)",
              "totals_volume_after": "dec(totals_volume_after)",
              "totals_amount_before": "dec(totals_amount_before)",
              "totals_amount_after": "dec(totals_amount_after)", "fill_key": "dec(fill_key)"},
    "events": {"seq": "seq + :events", "id": "sid(id)", "ts": "ts(ts)"},
    "payments": {"id": "sid(id)", "sale_id": "sid(sale_id)", "created_at": "ts(created_at)"},
    "authorizations": {"id": "sid(id)", "order_id": "oid(order_id)",
                       "created_at": "ts(created_at)", "updated_at": "ts(updated_at)"},
    "orders": {"order_id": "oid(order_id)", "sale_id": "sid(sale_id)",
               "authorization_id": "sid(authorization_id)", "expires_at": "ts(expires_at)",
               "created_at": "ts(created_at)", "updated_at": "ts(updated_at)"},
    "totals": {"id": "NULL", "volume_total": "dec(volume_total)",
               "amount_total": "dec(amount_total)", "read_at": "ts(read_at)"},
    "tank_readings": {"id": "NULL", "read_at": "ts(read_at)", "closes_day": "day(closes_day)"},
    "tank_reconciliations": {"day": "day(day)", "opening_at": "ts(opening_at)",
                             "closing_at": "ts(closing_at)", "created_at": "ts(created_at)"},
    "audit": {"seq": "NULL", "at": "ts(at)"},
    "shifts": {"id": "id + :shifts", "opened_at": "ts(opened_at)", "closed_at": "ts(closed_at)",
               "start_seq": "start_seq + :events", "end_seq": "end_seq + :events",
               "totals_mark": "totals_mark + :totals"},
    "shift_totals": {"shift": "shift + :shifts", "volume_total": "dec(volume_total)",
                     "amount_total": "dec(amount_total)", "read_at": "ts(read_at)"},
}
_CLOSED = {"shifts": "closed_at IS NOT NULL",
           "shift_totals": "shift IN (SELECT id FROM y.shifts WHERE closed_at IS NOT NULL)"}


def clone(seed: Path, target: Path, copies: range, days: int) -> float:
    """Appends copies `copies` of the seed database to `target`; copy 0 is the seed itself."""
    started = time.perf_counter()
    conn = sqlite3.connect(target, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("ATTACH ? AS y", (str(seed),))
        one = {"events": "SELECT value FROM y.counters WHERE name = 'event_seq'",
               "shifts": "SELECT MAX(id) FROM y.shifts", "totals": "SELECT MAX(id) FROM y.totals"}
        unit = {name: conn.execute(sql).fetchone()[0] for name, sql in one.items()}
        conn.execute("BEGIN")
        for k in copies:
            for name, shift in _shifts(k, days).items():
                conn.create_function(name, 1, shift, deterministic=True)
            params = {name: value * k for name, value in unit.items()}
            for table, changes in CLONES.items():
                columns = [r[1] for r in conn.execute(f"PRAGMA y.table_info({table})")]
                select = ", ".join(changes.get(c, c) for c in columns)
                conn.execute(f"INSERT INTO main.{table} ({', '.join(columns)}) SELECT {select} "
                             f"FROM y.{table} WHERE {_CLOSED.get(table, '1')} ORDER BY rowid",
                             params)  # fmt: skip
        newest = {name: value * (copies.stop - 1) for name, value in unit.items()}
        conn.execute("UPDATE shifts SET (start_seq, totals_mark) = (SELECT start_seq + :events, "
                     "totals_mark + :totals FROM y.shifts WHERE closed_at IS NULL) "
                     "WHERE closed_at IS NULL", newest)  # fmt: skip
        conn.execute("DELETE FROM outbox")
        conn.execute("INSERT INTO outbox SELECT seq + :events FROM y.outbox", newest)
        conn.execute("UPDATE counters SET value = :events + (SELECT value FROM y.counters WHERE "
                     "name = 'event_seq') WHERE name = 'event_seq'", newest)
        conn.execute("UPDATE counters SET value = (SELECT COUNT(*) FROM audit) "
                     "WHERE name = 'audit_seq'")
        conn.execute("COMMIT")
        conn.execute("DETACH y")
        conn.execute("PRAGMA journal_mode = WAL")
    finally:
        conn.close()
    return time.perf_counter() - started


def _shifts(k: int, days: int) -> dict[str, Callable[[Any], Any]]:
    """The SQL functions of copy k. Stored times are fixed-width UTC text and move by whole days,
    so only their date changes: one date computation per day, not one per row."""
    later = timedelta(days=k * days)

    @functools.cache
    def day(text: str) -> str:
        return (date.fromisoformat(text) + later).isoformat()

    @functools.cache
    def stamp(prefix: str) -> str:
        # A UUIDv7's first 8 hex digits are its time in units of 65.536 s.
        return f"{int(prefix, 16) + later // timedelta(milliseconds=65536):08x}"

    return {
        "ts": lambda t: None if t is None else day(t[:10]) + t[10:],
        "day": lambda t: None if t is None else day(t),
        "sid": lambda t: None if t is None else stamp(t[:8]) + t[8:],
        "dec": lambda t: None if t is None else format(Decimal(t) + k * 10_000_000, "f"),
        "oid": lambda t: None if t is None else f"{t}-{k:04d}",
    }
