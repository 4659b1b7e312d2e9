"""Station operations over the local API: prices (调价), users and the daily report (日报).

Users: a change of role or PIN, or disabling a user, ends their sessions at once; a new PIN
also lifts their login throttling, and so does `POST /api/v1/users/{name}/unlock`. PINs are
hashed by the login desk's workers, never on the ledger's writer thread (edge/api/logins.py).

A manager's price change goes through the same scheduler as the cloud's ``price.schedule``:
stored first, current at its ``effective_at``, each pump programmed as soon as it is free. The
audit middleware records every change asked here, done or refused.
"""

# No "from __future__ import annotations": FastAPI reads the Annotated dependencies at run time.
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi import Path as FastApiPath
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictStr, model_validator

from domain.model import PriceSchedule, Role, Sale, rfc3339
from edge.api.auth import Permission, Session
from edge.api.logins import LoginDesk
from edge.local_time import station_time, zone_label
from edge.price_band import check_band, steps
from edge.pricing import PriceRefused
from edge.reports import daily_csv, daily_report, day_span
from edge.store import UnknownUser
from edge.store.console import Cancelled, cancelled_schedules
from edge.store.schedules import price_text
from edge.store.users import Account, UserNameRefused, check_name

if TYPE_CHECKING:
    from edge.station import Station

# A price per litre: up to three decimals (some pumps price in tenths of a fen). Strings only:
# a JSON number would reach us as a float, and 7.1 as a float is not 7.10 yuan.
PRICE_PATTERN = r"^[0-9]{1,4}(\.[0-9]{1,3})?$"
PriceText = Annotated[StrictStr, Field(pattern=PRICE_PATTERN, examples=["7.62"])]
GradeCode = Annotated[StrictStr, Field(min_length=1, max_length=16)]
StationTimeText = Annotated[StrictStr, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:"
                                                    r"[0-9]{2}(:[0-9]{2})?$",
                                            examples=["2026-12-05T08:00"])]
# A clock a little behind the station's must not refuse a change meant for "now".
PAST_TOLERANCE = timedelta(minutes=1)
# Further ahead is a typing mistake, not a plan (and far dates overflow on conversion to UTC).
FURTHEST_AHEAD = timedelta(days=366)
# Days a report may ask for: the station did not exist before, and the years near 9999
# overflow once turned into UTC.
REPORT_YEARS = range(1970, 9000)

Require = Callable[[Permission], Any]
ErrorFactory = Callable[[int, str, str], Exception]
UserName = Annotated[str, FastApiPath(min_length=1, max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriceChange(_Strict):
    prices: dict[GradeCode, PriceText] = Field(min_length=1, examples=[{"92": "7.62"}])
    effective_at: AwareDatetime | None = None
    # The time as typed at the station, read in the station's zone (edge/local_time.py).
    effective_local: StationTimeText | None = None
    emergency: bool = False
    # Beyond a grade's band (edge/price_band.py): asked twice, with a reason.
    confirm_band: bool = False
    reason: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _consistent(self) -> "PriceChange":
        if self.effective_at is not None and self.effective_local is not None:
            raise ValueError("give effective_at or effective_local, not both")
        if self.emergency and (self.effective_at is not None
                               or self.effective_local is not None):
            raise ValueError("an emergency change is effective now: leave out effective_at")
        if any(Decimal(p) <= 0 for p in self.prices.values()):
            raise ValueError("a price must be greater than zero")
        if self.effective_local is not None:
            try:
                datetime.fromisoformat(self.effective_local)
            except ValueError:
                raise ValueError(f"effective_local {self.effective_local} is not a time") from None
        return self


class UserChange(_Strict):
    name: str = Field(min_length=1, max_length=64)
    role: Role
    pin: str = Field(pattern=r"^[0-9]{4,12}$")


def schedule_view(schedule: PriceSchedule, station: "Station",
                  cancelled: Cancelled | None = None) -> dict[str, Any]:
    state = ("cancelled" if cancelled is not None
             else "pending" if schedule.applied_at is None else "applied")
    return {
        "price_set_id": schedule.price_set_id,
        "effective_at": rfc3339(schedule.effective_at.astimezone(station.zone)),
        "prices": {g: price_text(p) for g, p in sorted(schedule.prices.items())},
        "source": schedule.source,
        "created_at": rfc3339(schedule.created_at.astimezone(station.zone)),
        "applied_at": (None if schedule.applied_at is None
                       else rfc3339(schedule.applied_at.astimezone(station.zone))),
        "state": state,
        "cancelled_at": (None if cancelled is None
                         else rfc3339(cancelled.at.astimezone(station.zone))),
        "cancelled_by": None if cancelled is None else cancelled.by,
    }


def user_view(account: Account, station: "Station", desk: LoginDesk) -> dict[str, Any]:
    # Never the PIN hash: it is not even in Account.
    def local(value: datetime | None) -> str | None:
        return None if value is None else rfc3339(value.astimezone(station.zone))

    waiting, strangers_wait = desk.status(account.name)
    return {
        "name": account.name,
        "role": account.role.value,
        "created_at": local(account.created_at),
        "updated_at": local(account.updated_at),
        "disabled_at": local(account.disabled_at),
        # Login throttling (docs/security.md): addresses kept waiting for this name, and until
        # when addresses that never logged in are refused it (null: they are not).
        "waiting_addresses": waiting,
        "locked_until": local(None if strangers_wait is None
                              else station.now() + timedelta(seconds=strangers_wait)),
    }


def register(app: FastAPI, station: "Station", require: Require,
             api_error: ErrorFactory, *, desk: LoginDesk) -> None:
    """Adds the prices, users and reports endpoints to `app`."""

    def grade_names() -> dict[str, str]:
        return {g.code: g.name for g in station.config.grades}

    # ------------------------------------------------------------- prices (调价)

    def bands() -> dict[str, Decimal]:
        return {g.code: g.price_band_percent for g in station.config.grades}

    @app.get("/api/v1/prices")
    async def prices(_: Annotated[Session, require(Permission.READ)]) -> dict[str, Any]:
        price_set_id, current = await station.ledger.read(station.store.current_price_set)
        schedules = await station.ledger.read(station.store.price_schedules, 50)
        cancelled = await station.ledger.read(station.store.read_with, cancelled_schedules,
                                              [s.price_set_id for s in schedules])
        now = station.now()
        return {
            "price_set_id": price_set_id,
            "zone": station.config.station.timezone,
            "zone_label": zone_label(station.zone, now),
            "grades": [{"grade": code, "name": name,
                        "price": price_text(current[code]) if code in current else None,
                        "band_percent": format(bands()[code], "f")}
                       for code, name in grade_names().items()],
            "schedules": [schedule_view(s, station, cancelled.get(s.price_set_id))
                          for s in schedules],
        }

    @app.post("/api/v1/prices", status_code=201)
    async def change_prices(body: PriceChange, request: Request,
                            session: Annotated[Session, require(Permission.PRICES)]
                            ) -> dict[str, Any]:
        now = station.now()
        effective_at = now if body.effective_at is None else body.effective_at
        if body.effective_local is not None:
            effective_at = station_time(body.effective_local, station.zone)
        if effective_at < now - PAST_TOLERANCE:
            raise api_error(422, "effective_at_in_past",
                            f"effective_at {rfc3339(effective_at)} has passed; leave it out "
                            "for a change effective now")
        if effective_at > now + FURTHEST_AHEAD:
            raise api_error(422, "effective_at_too_far",
                            f"effective_at {rfc3339(effective_at)} is more than a year ahead")
        wanted = {g: Decimal(p) for g, p in body.prices.items()}
        found = steps(station.forecourt.prices.prices, wanted, bands())
        # Old -> new in the audit entry, refused or done (edge/api/auditing.py).
        request.state.audit_details = {
            "changes": [s.to_api() for s in found], "reason": body.reason,
            "effective_at": rfc3339(effective_at.astimezone(station.zone)),
            "emergency": body.effective_at is None and body.effective_local is None}
        check_band(found, confirmed=body.confirm_band, reason=body.reason)
        # To the millisecond: two changes by one person in one second are two price sets.
        price_set_id = f"LOCAL-{now:%Y%m%d%H%M%S}{now.microsecond // 1000:03d}-{session.user}"
        try:
            schedule = await station.pricing.schedule(
                price_set_id, effective_at=effective_at, prices=wanted,
                source=f"local:{session.user}")
        except PriceRefused as exc:
            raise api_error(422, exc.code, exc.message) from None
        if schedule.prices != wanted or schedule.effective_at != effective_at:
            # The same user twice in one second: the id is taken by the first change.
            raise api_error(409, "price_set_exists",
                            f"price set {price_set_id} was scheduled a moment ago; "
                            "try again in a second")
        return {**schedule_view(schedule, station), "changes": [s.to_api() for s in found]}

    # ------------------------------------------------------------- users

    async def account_of(name: str) -> Account:
        found = await station.ledger.read(station.store.user_account, name)
        if found is None:
            raise api_error(404, "unknown_user", f"there is no user {name!r}")
        return found

    def may_touch(session: Session, role: Role | None, existing: Account | None) -> None:
        touches_admin = role == Role.ADMIN or (
            existing is not None and existing.role == Role.ADMIN)
        if touches_admin and session.role != Role.ADMIN:
            raise api_error(403, "forbidden", "only an admin may create or change an admin")

    @app.get("/api/v1/users")
    async def users(_: Annotated[Session, require(Permission.USERS)]) -> dict[str, Any]:
        found = await station.ledger.read(station.store.user_accounts)
        return {"users": [user_view(a, station, desk) for a in found]}

    @app.post("/api/v1/users")
    async def save_user(body: UserChange,
                        session: Annotated[Session, require(Permission.USERS)]) -> JSONResponse:
        existing = await station.ledger.read(station.store.user_account, body.name)
        may_touch(session, body.role, existing)
        try:
            check_name(body.name)  # before the hash: a refused name costs nothing
            pin_hash = await desk.checker.hash(body.pin)
            await station.ledger.write(station.store.save_user, body.name, role=body.role,
                                       pin_hash=pin_hash)
        except UserNameRefused as exc:
            status = 409 if exc.code == "user_name_confusable" else 422
            raise api_error(status, exc.code, str(exc)) from None
        # A new role or PIN: their sessions end, and their login throttling is lifted.
        station.sessions.end_user(body.name)
        desk.unlock(body.name)
        return JSONResponse(user_view(await account_of(body.name), station, desk),
                            status_code=200 if existing else 201)

    async def set_disabled(name: str, session: Session, disabled: bool) -> dict[str, Any]:
        existing = await account_of(name)
        may_touch(session, None, existing)
        if disabled and name == session.user:
            raise api_error(409, "cannot_disable_self",
                            "you cannot disable yourself; ask another manager or an admin")
        try:
            changed = await station.ledger.write(station.store.set_user_disabled, name,
                                                 disabled)
        except UnknownUser:
            raise api_error(404, "unknown_user", f"there is no user {name!r}") from None
        if disabled:
            station.sessions.end_user(name)
        return user_view(changed, station, desk)

    @app.post("/api/v1/users/{name}/disable")
    async def disable_user(name: UserName,
                           session: Annotated[Session, require(Permission.USERS)]
                           ) -> dict[str, Any]:
        return await set_disabled(name, session, True)

    @app.post("/api/v1/users/{name}/enable")
    async def enable_user(name: UserName,
                          session: Annotated[Session, require(Permission.USERS)]
                          ) -> dict[str, Any]:
        return await set_disabled(name, session, False)

    @app.post("/api/v1/users/{name}/unlock")
    async def unlock_user(name: UserName,
                          _: Annotated[Session, require(Permission.USERS)]) -> dict[str, Any]:
        account = await account_of(name)
        cleared = desk.unlock(name)
        return {**user_view(account, station, desk), "cleared_addresses": cleared}

    # ------------------------------------------------------------- daily report (日报)

    async def day_sales(day: date | None) -> tuple[date, list[Sale]]:
        day = station.now().date() if day is None else day
        if day.year not in REPORT_YEARS:
            raise api_error(422, "invalid_date", f"no report for {day.isoformat()}")
        start, end = day_span(day, station.zone)
        found = await station.ledger.read(station.store.sales_ended_between, start, end)
        return day, found

    @app.get("/api/v1/reports/daily")
    async def report_daily(_: Annotated[Session, require(Permission.READ)],
                           day: Annotated[date | None, Query(alias="date")] = None
                           ) -> dict[str, Any]:
        day, found = await day_sales(day)
        body = daily_report(found, day=day, zone=station.zone,
                            grade_names=grade_names()).to_api()
        if station.books is not None:
            # Shown apart from the sales (docs/books.md): non-sale fuel, totalizer corrections,
            # each nozzle's litres per price period.
            start, end = day_span(day, station.zone)
            books = station.books.service
            body["books"] = await books.ledger.read(books.store.day_books, start, end)
        return body

    @app.get("/api/v1/reports/daily.csv", response_class=Response,
             responses={200: {"content": {"text/csv": {}}}})
    async def report_daily_csv(_: Annotated[Session, require(Permission.READ)],
                               day: Annotated[date | None, Query(alias="date")] = None
                               ) -> Response:
        day, found = await day_sales(day)
        text = daily_csv(found, day=day, zone=station.zone, grade_names=grade_names())
        # A BOM so that Excel, which the station's accountant opens it with, reads UTF-8.
        return Response("\ufeff" + text, media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="daily-{day.isoformat()}.csv"'})
