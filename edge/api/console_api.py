"""What the console needs beyond the contract's endpoints (docs/api.md, "The console").

- ``GET /api/v1/console``: the station as the console shows it (name, zone and its label, the
  time now, the price bands, when receipts print, who may close a shift).
- ``GET /api/v1/alarms``, ``POST /api/v1/alarms/{seq}/ack``: the alarm list (edge/alarms.py) and
  a person acknowledging one.
- ``PUT`` / ``DELETE /api/v1/prices/schedules/{price_set_id}``: change or cancel a pending
  price schedule.
- ``GET /api/v1/shifts/current/check``: the pre-close check (edge/shift_close.py).
- ``GET /api/v1/console/sales``: the unpaid sales and today's newest, each with its receipt's
  print count and, for an app order, what was prepaid and refunded.
- ``GET /api/v1/console/audit``: the newest audit entries, newest first, with the number of the
  sale an entry is about.

Every change is audited by the API's audit middleware (edge/audit.py names the actions).
"""

# No "from __future__ import annotations": FastAPI reads the Annotated dependencies at run time.
import logging
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, Path, Query, Request

from domain.model import Sale, decimal_str, rfc3339
from edge.alarms import RAISING, TYPES, alarm_list
from edge.api.auth import Permission, Session
from edge.api.limits import RowIdPath
from edge.api.operations import PriceChange, schedule_view
from edge.local_time import offset_minutes, station_time, zone_label
from edge.price_band import check_band, steps
from edge.pricing import PriceRefused, check_effective_at
from edge.reports import day_span
from edge.store import UnknownPriceSchedule
from edge.store.console import (
    ScheduleApplied,
    UnknownAlarm,
    ack_alarm,
    alarm_acks,
    alarm_events,
    cancel_schedule,
    cancelled_schedules,
    last_audit_seq,
    receipt_counts,
    sale_numbers,
)
from edge.store.schedules import get as get_schedule
from edge.store.schedules import schedule as store_schedule

if TYPE_CHECKING:
    from edge.station import Station

log = logging.getLogger(__name__)

Require = Callable[[Permission], Any]
ErrorFactory = Callable[[int, str, str], Exception]
PriceSetId = Annotated[str, Path(min_length=1, max_length=128)]
#: How many alarm events the list is built from (the newest).
ALARM_EVENTS = 2000


def register(app: FastAPI, station: "Station", require: Require,
             api_error: ErrorFactory) -> None:

    @app.get("/api/v1/console")
    async def console(_: Annotated[Session, require(Permission.READ)]) -> dict[str, Any]:
        cfg = station.config
        now = station.now()
        printer = cfg.printer
        return {
            "station": {"name": cfg.station.name, "timezone": cfg.station.timezone,
                        "zone_label": zone_label(station.zone, now),
                        "utc_offset_minutes": offset_minutes(station.zone, now)},
            "now": rfc3339(now),
            "grades": [{"grade": g.code, "name": g.name,
                        "band_percent": format(g.price_band_percent, "f")}
                       for g in cfg.grades],
            "receipts": None if printer is None else {
                "auto_print": printer.auto_print, "print_at": printer.print_at.value},
            "printer": station.receipts.status() if station.receipts is not None else None,
        }

    # ------------------------------------------------------------- alarms

    @app.get("/api/v1/alarms")
    async def alarms(_: Annotated[Session, require(Permission.READ)],
                     limit: Annotated[int, Query(ge=1, le=500)] = 200) -> dict[str, Any]:
        store = station.store
        found = await station.ledger.read(store.read_with, alarm_events, TYPES, ALARM_EVENTS)
        acks = await station.ledger.read(store.read_with, alarm_acks,
                                         [e.seq for e in found if e.type in RAISING])
        pumps = {number: set(pump.alarms) for number, pump in station.forecourt.pumps.items()}
        return alarm_list(found, acks, pump_alarms=pumps, zone=station.zone, limit=limit)

    @app.post("/api/v1/alarms/{seq}/ack")
    async def acknowledge(seq: RowIdPath,
                          session: Annotated[Session, require(Permission.STOP)]
                          ) -> dict[str, Any]:
        try:
            ack, new = await station.ledger.write(station.store.write_with, ack_alarm, seq,
                                                  RAISING, session.user)
        except UnknownAlarm:
            raise api_error(404, "unknown_alarm", f"there is no alarm {seq}") from None
        by = {"by": ack.user, "at": rfc3339(ack.at.astimezone(station.zone))}
        if new:
            # Other consoles update their list and their badge.
            station.hub.publish({"type": "alarm.acknowledged", "ts": rfc3339(station.now()),
                                 "data": {"seq": seq, "acknowledged": by}})
        return {"seq": seq, "acknowledged": by, "new": new}

    # ------------------------------------------------------------- price schedules

    def bands() -> dict[str, Decimal]:
        return {g.code: g.price_band_percent for g in station.config.grades}

    async def cancelled_view(price_set_id: str) -> dict[str, Any]:
        found = await station.ledger.read(station.store.read_with, get_schedule, price_set_id)
        assert found is not None
        cancelled = await station.ledger.read(station.store.read_with, cancelled_schedules,
                                              [price_set_id])
        return schedule_view(found, station, cancelled.get(price_set_id))

    @app.delete("/api/v1/prices/schedules/{price_set_id}")
    async def cancel(price_set_id: PriceSetId,
                     session: Annotated[Session, require(Permission.PRICES)]) -> dict[str, Any]:
        try:
            _, new = await station.ledger.write(station.store.write_with, cancel_schedule,
                                                price_set_id, session.user)
        except UnknownPriceSchedule:
            raise api_error(404, "unknown_schedule",
                            f"there is no price schedule {price_set_id}") from None
        except ScheduleApplied:
            raise api_error(409, "schedule_applied", f"price set {price_set_id} is already "
                            "in force: schedule a new change instead") from None
        station.pricing.wake()
        if new:
            log.warning("price set %s cancelled by %s", price_set_id, session.user)
        return await cancelled_view(price_set_id)

    @app.put("/api/v1/prices/schedules/{price_set_id}")
    async def reschedule(price_set_id: PriceSetId, body: PriceChange, request: Request,
                         session: Annotated[Session, require(Permission.PRICES)]
                         ) -> dict[str, Any]:
        """A pending schedule changed: cancelled and replaced by a new one, in one
        transaction (the new one's id is returned)."""
        now = station.now()
        if body.emergency or (body.effective_at is None and body.effective_local is None):
            raise api_error(422, "effective_at_missing",
                            "a changed schedule needs effective_at or effective_local")
        effective_at: datetime = (body.effective_at if body.effective_at is not None
                                  else station_time(str(body.effective_local), station.zone))
        wanted = {g: Decimal(p) for g, p in body.prices.items()}
        found = steps(station.forecourt.prices.prices, wanted, bands())
        request.state.audit_details = {
            "replaces": price_set_id, "changes": [s.to_api() for s in found],
            "reason": body.reason, "effective_at": rfc3339(effective_at.astimezone(station.zone))}
        try:
            check_effective_at(effective_at, now)
            station.pricing.check(wanted)
        except PriceRefused as exc:
            raise api_error(422, exc.code, exc.message) from None
        check_band(found, confirmed=body.confirm_band, reason=body.reason)
        new_id = f"LOCAL-{now:%Y%m%d%H%M%S}{now.microsecond // 1000:03d}-{session.user}"
        if new_id == price_set_id:
            raise api_error(409, "price_set_exists", "changed a moment after it was made; "
                            "try again in a second")

        def replace(conn: Any, at: datetime) -> Any:
            _, cancelled_now = cancel_schedule(conn, at, price_set_id, session.user)
            if not cancelled_now:
                raise ScheduleApplied(price_set_id)  # cancelled before: nothing to change
            return store_schedule(conn, at, new_id, effective_at=effective_at,
                                  grade_prices=wanted, source=f"local:{session.user}")

        try:
            schedule, created = await station.ledger.write(station.store.write_with, replace)
        except UnknownPriceSchedule:
            raise api_error(404, "unknown_schedule",
                            f"there is no price schedule {price_set_id}") from None
        except ScheduleApplied:
            raise api_error(409, "schedule_applied", f"price set {price_set_id} is no longer "
                            "pending (in force or cancelled)") from None
        if not created:
            raise api_error(409, "price_set_exists", f"price set {new_id} exists; try again "
                            "in a second")
        station.pricing.wake()
        log.warning("price set %s replaced by %s by %s", price_set_id, new_id, session.user)
        return {**schedule_view(schedule, station), "replaces": price_set_id,
                "changes": [s.to_api() for s in found]}

    # ------------------------------------------------------------- sales and the audit log

    async def with_details(sales: list[Sale]) -> list[dict[str, Any]]:
        counts = await station.ledger.read(station.store.read_with, receipt_counts,
                                           [s.id for s in sales])
        shown = []
        for sale in sales:
            view = {**station.sale_view(sale), "receipt_prints": counts.get(sale.id, 0),
                    "order": None}
            if sale.order_id is not None:
                order = await station.ledger.read(station.store.get_order, sale.order_id)
                if order is not None:
                    view["order"] = {"paid": decimal_str(order.paid), "status": order.status,
                                     "refund": (None if order.refund is None
                                                else decimal_str(order.refund))}
            shown.append(view)
        return shown

    @app.get("/api/v1/console/sales")
    async def console_sales(_: Annotated[Session, require(Permission.READ)],
                            recent: Annotated[int, Query(ge=0, le=200)] = 30
                            ) -> dict[str, Any]:
        unpaid = await station.ledger.read(station.store.sales, since_seq=0, limit=1000,
                                           unpaid=True)
        start, end = day_span(station.now().date(), station.zone)
        today = await station.ledger.read(station.store.sales_ended_between, start, end)
        newest = list(reversed(today))[:recent] if recent else []
        return {"unpaid": await with_details(unpaid), "recent": await with_details(newest)}

    @app.get("/api/v1/console/audit")
    async def console_audit(_: Annotated[Session, require(Permission.AUDIT)],
                            limit: Annotated[int, Query(ge=1, le=500)] = 100
                            ) -> dict[str, Any]:
        last = await station.ledger.read(station.store.read_with, last_audit_seq)
        rows = await station.ledger.read(station.store.audit_entries, max(0, last - limit),
                                         limit)
        targets = [e.target for e in rows if e.target]
        numbers = await station.ledger.read(station.store.read_with, sale_numbers, targets)
        return {"entries": [{**e.to_api(station.zone), "sale_number": numbers.get(e.target or "")}
                            for e in reversed(rows)]}

    # ------------------------------------------------------------- shifts

    @app.get("/api/v1/shifts/current/check")
    async def shift_check(_: Annotated[Session, require(Permission.READ)]) -> dict[str, Any]:
        return await station.shifts.check()
