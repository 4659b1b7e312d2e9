"""Station operations over the local API: prices (调价), users and the daily report (日报).

A manager's price change goes through the same scheduler as the cloud's ``price.schedule``:
stored first, current at its ``effective_at``, each pump programmed as soon as it is free. The
audit middleware records every change asked here, done or refused.
"""

# No "from __future__ import annotations": FastAPI reads the Annotated dependencies at run time.
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictStr, model_validator

from domain.model import PriceSchedule, Role, Sale, User, rfc3339
from edge.api.auth import Permission, Session
from edge.pricing import PriceRefused
from edge.reports import daily_csv, daily_report, day_span
from edge.store.schedules import price_text

if TYPE_CHECKING:
    from edge.station import Station

# A price per litre: up to three decimals (some pumps price in tenths of a fen). Strings only:
# a JSON number would reach us as a float, and 7.1 as a float is not 7.10 yuan.
PRICE_PATTERN = r"^[0-9]{1,4}(\.[0-9]{1,3})?$"
PriceText = Annotated[StrictStr, Field(pattern=PRICE_PATTERN, examples=["7.62"])]
GradeCode = Annotated[StrictStr, Field(min_length=1, max_length=16)]
# A clock a little behind the station's must not refuse a change meant for "now".
PAST_TOLERANCE = timedelta(minutes=1)
# Further ahead is a typing mistake, not a plan (and far dates overflow on conversion to UTC).
FURTHEST_AHEAD = timedelta(days=366)
# Days a report may ask for: the station did not exist before, and the years near 9999
# overflow once turned into UTC.
REPORT_YEARS = range(1970, 9000)

Require = Callable[[Permission], Any]
ErrorFactory = Callable[[int, str, str], Exception]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriceChange(_Strict):
    prices: dict[GradeCode, PriceText] = Field(min_length=1, examples=[{"92": "7.62"}])
    effective_at: AwareDatetime | None = None
    emergency: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> "PriceChange":
        if self.emergency and self.effective_at is not None:
            raise ValueError("an emergency change is effective now: leave out effective_at")
        if any(Decimal(p) <= 0 for p in self.prices.values()):
            raise ValueError("a price must be greater than zero")
        return self


class UserChange(_Strict):
    name: str = Field(min_length=1, max_length=64)
    role: Role
    pin: str = Field(pattern=r"^[0-9]{4,12}$")


def schedule_view(schedule: PriceSchedule, station: "Station") -> dict[str, Any]:
    return {
        "price_set_id": schedule.price_set_id,
        "effective_at": rfc3339(schedule.effective_at.astimezone(station.zone)),
        "prices": {g: price_text(p) for g, p in sorted(schedule.prices.items())},
        "source": schedule.source,
        "created_at": rfc3339(schedule.created_at.astimezone(station.zone)),
        "applied_at": (None if schedule.applied_at is None
                       else rfc3339(schedule.applied_at.astimezone(station.zone))),
        "state": "pending" if schedule.applied_at is None else "applied",
    }


def user_view(user: User, station: "Station") -> dict[str, Any]:
    # Never the PIN hash: it is not even in User.
    return {
        "name": user.name,
        "role": user.role.value,
        "created_at": rfc3339(user.created_at.astimezone(station.zone)),
        "locked_until": (None if user.locked_until is None
                         else rfc3339(user.locked_until.astimezone(station.zone))),
    }


def register(app: FastAPI, station: "Station", require: Require,
             api_error: ErrorFactory) -> None:
    """Adds the prices, users and reports endpoints to `app`."""

    def grade_names() -> dict[str, str]:
        return {g.code: g.name for g in station.config.grades}

    # ------------------------------------------------------------- prices (调价)

    @app.get("/api/v1/prices")
    async def prices(_: Annotated[Session, require(Permission.READ)]) -> dict[str, Any]:
        price_set_id, current = await station.ledger.read(station.store.current_price_set)
        schedules = await station.ledger.read(station.store.price_schedules, 50)
        return {
            "price_set_id": price_set_id,
            "grades": [{"grade": code, "name": name,
                        "price": price_text(current[code]) if code in current else None}
                       for code, name in grade_names().items()],
            "schedules": [schedule_view(s, station) for s in schedules],
        }

    @app.post("/api/v1/prices", status_code=201)
    async def change_prices(body: PriceChange,
                            session: Annotated[Session, require(Permission.PRICES)]
                            ) -> dict[str, Any]:
        now = station.now()
        effective_at = now if body.effective_at is None else body.effective_at
        if effective_at < now - PAST_TOLERANCE:
            raise api_error(422, "effective_at_in_past",
                            f"effective_at {rfc3339(effective_at)} has passed; leave it out "
                            "for a change effective now")
        if effective_at > now + FURTHEST_AHEAD:
            raise api_error(422, "effective_at_too_far",
                            f"effective_at {rfc3339(effective_at)} is more than a year ahead")
        wanted = {g: Decimal(p) for g, p in body.prices.items()}
        price_set_id = f"LOCAL-{now:%Y%m%d%H%M%S}-{session.user}"
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
        return schedule_view(schedule, station)

    # ------------------------------------------------------------- users

    @app.get("/api/v1/users")
    async def users(_: Annotated[Session, require(Permission.USERS)]) -> dict[str, Any]:
        found = await station.ledger.read(station.store.list_users)
        return {"users": [user_view(u, station) for u in found]}

    @app.post("/api/v1/users")
    async def save_user(body: UserChange,
                        session: Annotated[Session, require(Permission.USERS)]) -> JSONResponse:
        existing = await station.ledger.read(station.store.get_user, body.name)
        touches_admin = body.role == Role.ADMIN or (
            existing is not None and existing.role == Role.ADMIN)
        if touches_admin and session.role != Role.ADMIN:
            raise api_error(403, "forbidden", "only an admin may create or change an admin")
        try:
            user = await station.ledger.write(station.store.upsert_user, body.name,
                                              role=body.role, pin=body.pin)
        except ValueError as exc:
            raise api_error(422, "invalid_user", str(exc)) from None
        return JSONResponse(user_view(user, station), status_code=200 if existing else 201)

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
        return daily_report(found, day=day, zone=station.zone,
                            grade_names=grade_names()).to_api()

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
