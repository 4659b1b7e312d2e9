"""`Store`: the station's durable ledger in one SQLite file.

A sale is durable before anyone is told about it: `record_sale` commits the sale, its totals
reading, its authorization's completion and its events in one transaction, and returns only
after COMMIT (WAL, synchronous=FULL). When nothing can be written (disk full, locked, I/O
error, read-only) every write raises `StoreUnavailable` and leaves nothing half-written; the
controller then refuses new authorizations until `check_writable()` passes again.

Thread safety: one connection, one lock (see db.py). Any thread may call any method. Writes
read the clock under the lock, so the times of events follow their seq order.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from domain.ids import IdMaker
from domain.model import (
    Authorization,
    Event,
    NewSale,
    Order,
    Payment,
    Preset,
    PriceSchedule,
    Review,
    Role,
    Sale,
    TotalsReading,
    User,
)
from domain.states import AuthorizationState
from edge.store import (
    audit,
    authorizations,
    commands,
    events,
    ledger,
    meta,
    orders,
    prices,
    reviews,
    schedules,
    shifts,
    tanks,
    users,
)
from edge.store.audit import AuditCheck, AuditEntry
from edge.store.codec import time_text
from edge.store.db import Clock, Database, utc_now
from edge.store.reviews import OutOfService
from edge.store.shifts import Shift
from edge.store.tanks import (
    AlertChange,
    Delivery,
    Reconciliation,
    TankAlert,
    TankReading,
)

DEFAULT_BUSY_TIMEOUT_MS = 5000

P = ParamSpec("P")
T = TypeVar("T")

# The smallest pump number above ?, and the smallest nozzle of pump ? above ?, among the totals
# readings: each a seek in totals_by_nozzle (SQLite's min/max optimization), so walking every
# nozzle costs a few seeks per nozzle, whatever the number of readings (a "skip scan").


class Store:
    def __init__(self, db: Database) -> None:
        """Use Store.open()."""
        self._db = db
        self._ids = IdMaker()
        # The station's time zone: how times appear in event data (stored times stay UTC).
        self.zone: tzinfo | None = None

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        clock: Clock | None = None,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        zone: tzinfo | None = None,
    ) -> Store:
        """Opens (creating it and its directory if needed) and migrates the ledger at `path`.

        `clock` returns aware datetimes (default: now in UTC). `busy_timeout_ms` is how long a
        write waits for another process's lock before StoreUnavailable("locked").
        Raises SchemaTooNew for a database written by a newer forecourt.
        """
        db = Database.open(Path(path), clock=clock or utc_now, busy_timeout_ms=busy_timeout_ms)
        store = cls(db)
        store.zone = zone
        return store

    @property
    def path(self) -> Path:
        return self._db.path

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- meta

    def get_meta(self, key: str) -> str | None:
        with self._db.read() as conn:
            return meta.get(conn, key)

    def set_meta(self, key: str, value: str) -> None:
        with self._db.write() as conn:
            meta.put(conn, key, value)

    def check_writable(self) -> None:
        """A tiny real write and commit; raises StoreUnavailable while the disk is full etc."""
        with self._db.write() as conn:
            now = self._db.now()
            meta.put(conn, "last_write_check", time_text(now))

    # --- events and outbox

    def append_event(self, type: str, data: dict[str, Any]) -> Event:
        """Appends one event (and its outbox row) in its own transaction."""
        with self._db.write() as conn:
            now = self._db.now()
            return events.append(conn, self._ids, now, type, data)

    def last_seq(self) -> int:
        """The seq of the newest event; 0 before the first."""
        with self._db.read() as conn:
            return events.last_seq(conn)

    def events_since(self, seq: int, limit: int = 500) -> list[Event]:
        """Events with a seq greater than `seq`, in seq order."""
        with self._db.read() as conn:
            return events.since(conn, seq, limit)

    def outbox_pending(self, *, after_seq: int = 0, limit: int = 500) -> list[Event]:
        """Events not yet acknowledged by the cloud, in seq order."""
        with self._db.read() as conn:
            return events.pending(conn, after_seq, limit)

    def outbox_ack(self, upto_seq: int, epoch: int = 1) -> int:
        """The cloud committed every event of `epoch` up to `upto_seq`; returns how many rows
        left the outbox."""
        with self._db.write() as conn:
            return events.ack(conn, upto_seq, epoch)

    def ledger_position(self) -> tuple[int, int]:
        """(current epoch, highest seq assigned), from the durable counters."""
        with self._db.read() as conn:
            return events.position(conn)

    def start_epoch(self, reason: str, details: dict[str, Any] | None = None) -> Event:
        """A new epoch and its `epoch.started` event (`forecourt db restore`)."""
        with self._db.write() as conn:
            return events.start_epoch(conn, self._ids, self._db.now(), reason=reason,
                                      details=details)

    def resolve_epoch_conflict(self, epoch: int, seq: int, cloud_epoch: int) -> Event | None:
        """The cloud reported (epoch, seq) taken: see events.resolve_conflict."""
        with self._db.write() as conn:
            return events.resolve_conflict(conn, self._ids, self._db.now(), epoch=epoch,
                                           seq=seq, cloud_epoch=cloud_epoch)

    def outbox_backlog(self) -> int:
        with self._db.read() as conn:
            return events.backlog(conn)

    # --- prices

    def current_price_set(self) -> tuple[str | None, dict[str, Decimal]]:
        with self._db.read() as conn:
            return prices.current(conn)

    def seed_prices(self, grade_prices: dict[str, Decimal]) -> None:
        """Stores the configuration's prices for grades that have none yet (price set
        "config"); prices set later by the cloud or a manager are kept."""
        with self._db.write() as conn:
            now = self._db.now()
            prices.seed(conn, now, grade_prices)

    def apply_price_set(
        self,
        price_set_id: str,
        grade_prices: dict[str, Decimal],
        *,
        source: str,
        effective_at: datetime,
    ) -> None:
        """Makes `grade_prices` current (grades not named keep theirs) and records the change."""
        with self._db.write() as conn:
            now = self._db.now()
            prices.apply(
                conn, now, price_set_id, grade_prices, source=source, effective_at=effective_at
            )

    # --- authorizations

    def create_authorization(
        self,
        *,
        pump: int,
        nozzle: int | None,
        preset: Preset | None,
        source: str,
        user: str | None = None,
        order_id: str | None = None,
    ) -> Authorization:
        """A new authorization in state "requested"."""
        with self._db.write() as conn:
            now = self._db.now()
            return authorizations.create(
                conn, self._ids, now, pump=pump, nozzle=nozzle, preset=preset, source=source,
                user=user, order_id=order_id,
            )  # fmt: skip

    def set_authorization_state(
        self, auth_id: str, state: AuthorizationState, *, reason: str | None = None
    ) -> Authorization:
        """Raises UnknownAuthorization for an unknown id."""
        with self._db.write() as conn:
            now = self._db.now()
            return authorizations.set_state(conn, now, auth_id, state, reason)

    def get_authorization(self, auth_id: str) -> Authorization | None:
        with self._db.read() as conn:
            return authorizations.get(conn, auth_id)

    def active_authorizations(self) -> list[Authorization]:
        """Authorizations in state requested, authorized or fuelling, oldest first."""
        with self._db.read() as conn:
            return authorizations.active(conn)

    # --- totalizers

    def record_totals(self, reading: TotalsReading) -> None:
        with self._db.write() as conn:
            ledger.record_totals(conn, reading)

    def last_totals(self, pump: int, nozzle: int) -> TotalsReading | None:
        with self._db.read() as conn:
            return ledger.last_totals(conn, pump, nozzle)

    # --- sales

    def record_sale(self, sale: NewSale) -> tuple[Sale, bool]:
        """Records a finished fill durably; (sale, True) once committed.

        Idempotent on (pump, nozzle, totals_after.volume_total): when that fill is already
        recorded, returns (the stored sale, False) and writes nothing. One transaction holds
        the sale, the totals_after reading, the authorization set to "completed", the
        `sale.completed` event (whose seq is the sale's seq, data sale_to_api(sale)) and one
        `reconciliation.discrepancy` event per item of sale.discrepancies.

        Sale ids are UUIDv7 text (see ids.py): unique, and sorted by creation time.
        A fill of zero volume does not move the totalizer, so it finds the previous sale of
        that nozzle: controllers do not record empty fills as sales.
        """
        with self._db.write() as conn:
            now = self._db.now()
            return ledger.record_sale(conn, self._ids, now, sale, zone=self.zone)

    def get_sale(self, sale_id: str) -> Sale | None:
        with self._db.read() as conn:
            return ledger.get_sale(conn, sale_id)

    def sales(
        self, *, since_seq: int = 0, limit: int = 100, unpaid: bool | None = None
    ) -> list[Sale]:
        """Sales with seq > since_seq in seq order; unpaid=True only unpaid, False only paid."""
        with self._db.read() as conn:
            return ledger.list_sales(conn, since_seq=since_seq, limit=limit, unpaid=unpaid)

    def add_payment(
        self, sale_id: str, *, method: str, amount: Decimal, user: str | None
    ) -> Payment:
        """Raises UnknownSale, InvalidPayment (method, amount <= 0) or Overpayment (more than
        is still due, including anything on a sale already paid)."""
        with self._db.write() as conn:
            now = self._db.now()
            return ledger.add_payment(
                conn, self._ids, now, sale_id, method=method, amount=amount, user=user
            )

    # --- users (PINs are hashed by the caller's thread, never under the lock: users.py)

    def upsert_user(self, name: str, *, role: Role, pin: str) -> User:
        """Creates or updates a user; ValueError for a bad PIN or name (UserNameRefused)."""
        users.check_name(name)
        users.check_pin_format(pin)
        return self.save_user(name, role=Role(role), pin_hash=users.hash_pin(pin))

    def save_user(self, name: str, *, role: Role, pin_hash: str) -> User:
        """Creates or updates a user from a finished PIN hash (users.hash_pin); raises
        UserNameRefused for a bad name or one that looks like another user's."""
        users.check_name(name)
        with self._db.write() as conn:
            return users.save(conn, self._db.now(), name, Role(role), pin_hash)

    def set_user_disabled(self, name: str, disabled: bool) -> users.Account:
        """Raises UnknownUser."""
        with self._db.write() as conn:
            return users.set_disabled(conn, self._db.now(), name, disabled)

    def get_user(self, name: str) -> User | None:
        with self._db.read() as conn:
            return users.get(conn, name)

    def list_users(self) -> list[User]:
        with self._db.read() as conn:
            return users.list_all(conn)

    def user_account(self, name: str) -> users.Account | None:
        with self._db.read() as conn:
            return users.account(conn, name)

    def user_accounts(self) -> list[users.Account]:
        with self._db.read() as conn:
            return users.accounts(conn)

    def user_login(self, name: str) -> users.LoginRecord | None:
        with self._db.read() as conn:
            return users.login_record(conn, name)

    def user_stamps(self) -> dict[str, str]:
        with self._db.read() as conn:
            return users.stamps(conn)

    def request_user_unlock(self, name: str) -> None:
        """Raises UnknownUser."""
        with self._db.write() as conn:
            users.request_unlock(conn, self._db.now(), name)

    def user_unlock_requests(self) -> dict[str, str]:
        with self._db.read() as conn:
            return users.unlock_requests(conn)

    # --- cloud commands: the replay cache

    def remember_command(self, command_id: str, expires_at: datetime) -> bool:
        """True when the id is new (and now remembered until `expires_at`), False when seen."""
        with self._db.write() as conn:
            now = self._db.now()
            return commands.remember(conn, now, command_id, expires_at)

    def forget_commands(self, expired_before: datetime) -> int:
        """Drops remembered ids that expired before `expired_before`; returns how many."""
        with self._db.write() as conn:
            return commands.forget(conn, expired_before)

    # --- app orders

    def create_order(
        self,
        *,
        order_id: str,
        nozzle: int,
        grade: str,
        price: Decimal,
        preset: Preset,
        paid: Decimal,
        expires_at: datetime,
        status: str,
        reason: str | None = None,
    ) -> tuple[Order, bool]:
        """(order, True) with its `order.updated` event in one transaction; (the stored
        order, False), writing nothing, when `order_id` is already known."""
        with self._db.write() as conn:
            now = self._db.now()
            return orders.create(
                conn, self._ids, now, order_id=order_id, nozzle=nozzle, grade=grade, price=price,
                preset=preset, paid=paid, expires_at=expires_at, status=status, reason=reason,
            )  # fmt: skip

    def update_order(
        self,
        order_id: str,
        *,
        status: str,
        reason: str | None = None,
        sale_id: str | None = None,
        refund: Decimal | None = None,
        authorization_id: str | None = None,
    ) -> Order:
        """Sets status and reason (sale_id, refund, authorization_id: None keeps the stored
        value) with its `order.updated` event in one transaction; no change, no event.
        Raises UnknownOrder."""
        with self._db.write() as conn:
            now = self._db.now()
            return orders.update(
                conn, self._ids, now, order_id, status=status, reason=reason, sale_id=sale_id,
                refund=refund, authorization_id=authorization_id,
            )  # fmt: skip

    def get_order(self, order_id: str) -> Order | None:
        with self._db.read() as conn:
            return orders.get(conn, order_id)

    def open_orders(self) -> list[Order]:
        """Orders accepted, authorized or fuelling, oldest first."""
        with self._db.read() as conn:
            return orders.open_orders(conn)

    def order_for_authorization(self, authorization_id: str) -> Order | None:
        with self._db.read() as conn:
            return orders.for_authorization(conn, authorization_id)

    # --- price schedules

    def schedule_prices(
        self,
        price_set_id: str,
        *,
        effective_at: datetime,
        prices: dict[str, Decimal],
        source: str,
    ) -> tuple[PriceSchedule, bool]:
        """(schedule, True) once stored; (the stored one, False) when the id is known."""
        with self._db.write() as conn:
            now = self._db.now()
            return schedules.schedule(
                conn, now, price_set_id, effective_at=effective_at, grade_prices=prices,
                source=source,
            )  # fmt: skip

    def due_price_schedules(self, now: datetime) -> list[PriceSchedule]:
        """Schedules not applied whose effective_at <= now, in effective order."""
        with self._db.read() as conn:
            return schedules.due(conn, now)

    def next_price_schedule(self) -> PriceSchedule | None:
        """The earliest schedule not applied yet."""
        with self._db.read() as conn:
            return schedules.upcoming(conn)

    def price_schedules(self, limit: int = 50) -> list[PriceSchedule]:
        """Schedules, applied or not, newest effective_at first."""
        with self._db.read() as conn:
            return schedules.newest(conn, limit)

    def apply_price_schedule(self, price_set_id: str) -> PriceSchedule:
        """Marks the schedule applied and makes it the current price set, in one transaction.
        Raises UnknownPriceSchedule; a schedule already applied is returned unchanged."""
        with self._db.write() as conn:
            now = self._db.now()
            return schedules.apply(conn, now, price_set_id)

    def record_pump_prices(
        self, pump: int, price_set_id: str, prices: dict[str, Decimal]
    ) -> Event:
        """The pump now holds `price_set_id`: a `price.applied` event and its pump row."""
        with self._db.write() as conn:
            now = self._db.now()
            return schedules.record_pump(conn, self._ids, now, pump, price_set_id, prices)

    def pump_price_set(self, pump: int) -> str | None:
        with self._db.read() as conn:
            return schedules.pump_price_set(conn, pump)

    # --- data pulls

    def latest_totals(self) -> list[TotalsReading]:
        """The latest totalizer reading of every (pump, nozzle), in that order."""
        with self._db.read() as conn:
            return ledger.latest_totals(conn)

    # --- tanks

    def record_tank_readings(self, readings: Sequence[TankReading]) -> list[Event]:
        """Stores readings as history, each with its `tank.reading` event, in one transaction."""
        with self._db.write() as conn:
            now = self._db.now()
            return tanks.record_readings(conn, self._ids, now, readings, self.zone)

    def latest_tank_readings(self) -> list[TankReading]:
        """The newest stored reading of every tank."""
        with self._db.read() as conn:
            return tanks.latest_readings(conn)

    def tank_readings(
        self, tank: int, *, since: datetime, until: datetime, limit: int = 1000
    ) -> list[TankReading]:
        """A tank's readings with since <= read_at < until, oldest first."""
        with self._db.read() as conn:
            return tanks.readings(conn, tank, since, until, limit)

    def change_tank_alerts(self, changes: Sequence[AlertChange]) -> list[Event]:
        """Raises and clears alerts with their `tank.alert` events; a raise of an open alert
        or a clear of a closed one writes nothing."""
        with self._db.write() as conn:
            now = self._db.now()
            return tanks.change_alerts(conn, self._ids, now, changes, self.zone)

    def open_tank_alerts(self) -> list[TankAlert]:
        with self._db.read() as conn:
            return tanks.open_alerts(conn)

    def record_delivery(
        self,
        *,
        tank: int,
        grade: str,
        started_at: datetime,
        ended_at: datetime,
        volume_l: Decimal,
        start_volume_l: Decimal,
        end_volume_l: Decimal,
        sold_l: Decimal,
    ) -> tuple[Delivery, Event]:
        """A detected delivery and its `delivery.detected` event."""
        with self._db.write() as conn:
            now = self._db.now()
            return tanks.record_delivery(
                conn, self._ids, now, tank=tank, grade=grade, started_at=started_at,
                ended_at=ended_at, volume_l=volume_l, start_volume_l=start_volume_l,
                end_volume_l=end_volume_l, sold_l=sold_l, zone=self.zone,
            )  # fmt: skip

    def deliveries(self, *, tank: int | None = None, limit: int = 100) -> list[Delivery]:
        with self._db.read() as conn:
            return tanks.deliveries(conn, tank, limit)

    def last_tank_close(self, tank: int) -> tuple[date, datetime] | None:
        """The newest day closed for `tank` and when its closing reading was taken."""
        with self._db.read() as conn:
            return tanks.last_close(conn, tank)

    def close_tank_day(
        self,
        reading: TankReading,
        day: date,
        *,
        nozzles: Sequence[int],
        tolerance: Callable[[Decimal], Decimal],
    ) -> tuple[Reconciliation | None, Event | None]:
        """Stores `reading` as the close of `day` and reconciles the tank since its previous
        close, the discrepancy event (beyond `tolerance(sales)`) in the same transaction.
        (None, None) for a tank's first close, and when `day` is closed already."""
        with self._db.write() as conn:
            now = self._db.now()
            return tanks.close_day(
                conn, self._ids, now, reading, day, nozzles=nozzles, tolerance=tolerance,
                zone=self.zone,
            )  # fmt: skip

    def reconciliations(
        self, *, tank: int | None = None, limit: int = 100
    ) -> list[Reconciliation]:
        """Daily reconciliations, newest day first."""
        with self._db.read() as conn:
            return tanks.reconciliations(conn, tank, limit)

    # --- audit log (see audit.py)

    def audit_append(
        self,
        *,
        actor: str,
        action: str,
        outcome: str = "ok",
        role: str | None = None,
        target: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Appends one hash-chained entry in its own transaction."""
        with self._db.write() as conn:
            now = self._db.now()
            return audit.append(conn, now, actor=actor, action=action, outcome=outcome,
                                role=role, target=target, details=details)

    def audit_entries(self, since_seq: int = 0, limit: int = 100) -> list[AuditEntry]:
        """Entries with seq > since_seq, oldest first."""
        with self._db.read() as conn:
            return audit.since(conn, since_seq, limit)

    def audit_verify(self) -> AuditCheck:
        """Walks the whole chain: intact, or the first entry altered or missing."""
        verifier = audit.Verifier()
        after = 0
        while True:
            # One read per batch: appends (and sales) go on in between.
            with self._db.read() as conn:
                rows = audit.batch(conn, after, audit.VERIFY_BATCH)
                written = audit.written(conn)
            verifier.feed(rows)
            if verifier.broken is not None or len(rows) < audit.VERIFY_BATCH:
                return verifier.finish(written)
            after = rows[-1][0]

    # --- shifts

    def open_first_shift(self) -> tuple[Shift, bool]:
        """(the open shift, False) when the station has shifts; else (shift 1, True), opened
        now with the totalizer readings then known."""
        with self._db.write() as conn:
            now = self._db.now()
            return shifts.open_first(conn, now)

    def current_shift(self) -> Shift | None:
        with self._db.read() as conn:
            return shifts.current(conn)

    def get_shift(self, shift_id: int) -> Shift | None:
        with self._db.read() as conn:
            return shifts.get(conn, shift_id)

    def shift_report(
        self, shift_id: int | None, *, grades: Mapping[int, str]
    ) -> dict[str, Any] | None:
        """The report of shift `shift_id` (None: the open one): frozen once closed, the running
        figures while open. None when there is no such shift."""
        with self._db.read() as conn:
            shift = shifts.current(conn) if shift_id is None else shifts.get(conn, shift_id)
            if shift is None:
                return None
            now = self._db.now()
            return shifts.running_report(conn, shift, now, grades=grades, zone=self.zone)

    def close_shift(
        self, *, closed_by: str, grades: Mapping[int, str], finish: shifts.Finish | None = None
    ) -> tuple[Shift, Shift, Event]:
        """One transaction: the open shift's closing totals (the latest reading of every
        nozzle), its report, the next shift opened with those totals, and the `shift.closed`
        event whose data is the report. Returns (closed shift, next shift, event).
        Raises NoOpenShift before the first shift was opened."""
        with self._db.write() as conn:
            now = self._db.now()
            return shifts.close(conn, self._ids, now, closed_by=closed_by, grades=grades,
                                zone=self.zone, finish=finish)  # fmt: skip

    # --- reports

    def sales_ended_between(self, start: datetime, end: datetime) -> list[Sale]:
        """Sales whose fill ended in [start, end), with their payments, in seq order."""
        # Imported here so that this block stands alone at the end of the class.
        from edge.store import reports

        with self._db.read() as conn:
            return reports.sales_ended_between(conn, start, end)

    # --- reviews and pumps out of service (reviews.py)

    def open_review(self, *, kind: str, grade: str, logical: int, before: TotalsReading,
                    after: TotalsReading, filling: dict[str, str] | None,
                    authorization_id: str | None, order_id: str | None) -> Review:
        with self._db.write() as conn:
            return reviews.open_review(conn, self._ids, self._db.now(), kind=kind, grade=grade,
                                       logical=logical, before=before, after=after,
                                       filling=filling, authorization_id=authorization_id,
                                       order_id=order_id, zone=self.zone)

    def get_review(self, review_id: str) -> Review | None:
        with self._db.read() as conn:
            return reviews.get(conn, review_id)

    def list_reviews(self, *, status: str | None = None, limit: int = 100) -> list[Review]:
        with self._db.read() as conn:
            return reviews.list_reviews(conn, status=status, limit=limit)

    def accept_review(self, review_id: str, *, user: str, sale: NewSale,
                      reason: str | None) -> tuple[Review, Sale]:
        with self._db.write() as conn:
            return reviews.accept(conn, self._ids, self._db.now(), review_id, user=user,
                                  sale=sale, reason=reason, zone=self.zone)

    def dismiss_review(self, review_id: str, *, user: str, reason: str) -> Review:
        with self._db.write() as conn:
            return reviews.dismiss(conn, self._ids, self._db.now(), review_id, user=user,
                                   reason=reason)

    def take_out_of_service(self, pump: int, *, reason: str,
                            details: dict[str, Any]) -> OutOfService | None:
        with self._db.write() as conn:
            return reviews.take_out_of_service(conn, self._ids, self._db.now(), pump,
                                               reason=reason, details=details)

    def release_pump(self, pump: int, *, user: str, reason: str) -> OutOfService | None:
        with self._db.write() as conn:
            return reviews.release(conn, self._ids, self._db.now(), pump, user=user,
                                   reason=reason)

    def pumps_out_of_service(self) -> dict[int, OutOfService]:
        with self._db.read() as conn:
            return reviews.out_of_service(conn)

    def last_sale_of_pump(self, pump: int) -> Sale | None:
        with self._db.read() as conn:
            return ledger.last_sale_of_pump(conn, pump)

    def sale_by_pump_key(self, pump: int, pump_key: str) -> Sale | None:
        with self._db.read() as conn:
            return ledger.sale_by_pump_key(conn, pump, pump_key)

    # --- tables another module keeps its SQL for (edge/store/console.py)

    def read_with(self, fn: Callable[Concatenate[sqlite3.Connection, P], T],
                  *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(connection, ...)` under the store's lock."""
        with self._db.read() as conn:
            return fn(conn, *args, **kwargs)

    def write_with(self, fn: Callable[Concatenate[sqlite3.Connection, datetime, P], T],
                   *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(connection, now, ...)` in one write transaction: all of it commits, or none."""
        with self._db.write() as conn:
            return fn(conn, self._db.now(), *args, **kwargs)
