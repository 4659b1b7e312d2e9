"""Pump service and recovery reviews: what a manager settles (docs/api.md, "Pumps").

- ``POST /api/v1/forecourt/stop``: every pump on every line stops now (attendant and up).
- ``POST /api/v1/pumps/{n}/suspend`` / ``resume``: pause a filling where the pump can.
- ``POST /api/v1/pumps/{n}/release``: back in service after impossible figures (manager).
- ``GET /api/v1/reviews``, ``POST /api/v1/reviews/{id}/accept|dismiss``: fuel that left a
  nozzle while nothing recorded it, without two agreeing witnesses (manager).

Every change is audited by the API's audit middleware (edge/audit.py names the actions).
"""

# No "from __future__ import annotations": FastAPI reads the Annotated dependencies at run time.
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import FastAPI, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from domain.model import NewSale, TotalsReading
from edge.api.auth import Permission, Session
from edge.api.limits import NumberPath
from edge.store.reviews import ReviewNotOpen, UnknownReview, review_view

if TYPE_CHECKING:
    from edge.station import Station

log = logging.getLogger(__name__)

Require = Callable[[Permission], Any]
ErrorFactory = Callable[[int, str, str], Exception]
ReviewId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f-]+$")]
Reason = Annotated[str, Field(min_length=2, max_length=500)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReasonBody(_Strict):
    reason: Reason


class AcceptBody(_Strict):
    # Which witness gives the sale's figures: the totals' delta (the meter) or the filling the
    # pump reported (when it did).
    figures: Literal["totals", "filling"] = "totals"
    reason: Reason | None = None


def register(app: FastAPI, station: "Station", require: Require,
             api_error: ErrorFactory) -> None:

    @app.post("/api/v1/forecourt/stop", status_code=202)
    async def stop_all(session: Annotated[Session, require(Permission.STOP)]) -> dict[str, Any]:
        result = await station.forecourt.stop_all(session.user)
        log.warning("station-wide emergency stop by %s", session.user)
        return {"stopped": True, **result}

    @app.post("/api/v1/pumps/{number}/reset")
    async def reset(number: NumberPath,
                    session: Annotated[Session, require(Permission.STOP)]) -> dict[str, Any]:
        was = await station.forecourt.pump(number).reset_stop(session.user)
        return {"pump": number, "reset": was}

    @app.post("/api/v1/pumps/{number}/suspend", status_code=202)
    async def suspend(number: NumberPath,
                      _: Annotated[Session, require(Permission.STOP)]) -> dict[str, Any]:
        await station.forecourt.pump(number).suspend()
        return {"pump": number, "suspended": True}

    @app.post("/api/v1/pumps/{number}/resume", status_code=202)
    async def resume(number: NumberPath,
                     _: Annotated[Session, require(Permission.STOP)]) -> dict[str, Any]:
        await station.forecourt.pump(number).resume()
        return {"pump": number, "resumed": True}

    @app.post("/api/v1/pumps/{number}/release")
    async def release(number: NumberPath, body: ReasonBody,
                      session: Annotated[Session, require(Permission.SERVICE)]
                      ) -> dict[str, Any]:
        pump = station.forecourt.pump(number)
        was = await station.ledger.write(station.store.release_pump, number, user=session.user,
                                         reason=body.reason)
        await station.ledger.publish_new()
        if was is None and pump.out_of_service is None:
            raise api_error(409, "pump_in_service", f"pump {number} is not out of service")
        pump.service_restored()
        log.warning("pump %d released back into service by %s: %s", number, session.user,
                    body.reason)
        return {"pump": number, "released": True,
                "was": None if was is None else was.reason}

    @app.get("/api/v1/reviews")
    async def reviews(_: Annotated[Session, require(Permission.READ)],
                      status: Literal["open", "accepted", "dismissed"] | None = None,
                      limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
        rows = await station.ledger.read(station.store.list_reviews, status=status, limit=limit)
        return {"reviews": [review_view(r, station.zone) for r in rows]}

    async def _open(review_id: str) -> Any:
        review = await station.ledger.read(station.store.get_review, review_id)
        if review is None:
            raise api_error(404, "unknown_review", f"there is no review {review_id}")
        if review.status != "open":
            raise api_error(409, "review_settled", f"review {review_id} is already "
                                                   f"{review.status}")
        return review

    @app.post("/api/v1/reviews/{review_id}/accept")
    async def accept(review_id: ReviewId, body: AcceptBody,
                     session: Annotated[Session, require(Permission.SERVICE)]
                     ) -> dict[str, Any]:
        review = await _open(review_id)
        price = station.forecourt.prices.prices.get(review.grade, Decimal(0))
        if body.figures == "filling":
            if review.filling is None:
                raise api_error(409, "no_filling", "the pump reported no filling for this "
                                                   "review; accept it with its totals")
            volume = Decimal(review.filling["volume"])
            amount = Decimal(review.filling["amount"])
            price = Decimal(review.filling.get("price", price))
        else:
            volume = review.volume_delta
            if review.totals_amount_after is not None and review.totals_amount_before is not None:
                amount = review.totals_amount_after - review.totals_amount_before
            else:
                amount = (volume * price).quantize(Decimal("0.01"))
        before = TotalsReading(review.pump, review.nozzle, review.totals_volume_before,
                               review.totals_amount_before or Decimal(0), review.created_at,
                               "review")
        after = TotalsReading(review.pump, review.nozzle, review.totals_volume_after,
                              review.totals_amount_after or Decimal(0), review.created_at,
                              "review")
        sale = NewSale(pump=review.pump, nozzle=review.nozzle, logical=review.logical,
                       grade=review.grade, price=price, volume=volume, amount=amount,
                       price_set_id=None, started_at=None, ended_at=review.created_at,
                       authorization_id=None, order_id=review.order_id, recovered=True,
                       totals_before=before, totals_after=after, flags=("reviewed",))
        try:
            settled, recorded = await station.ledger.write(
                station.store.accept_review, review_id, user=session.user, sale=sale,
                reason=body.reason)
        except (UnknownReview, ReviewNotOpen) as exc:
            raise api_error(409, "review_settled", str(exc)) from None
        await station.ledger.publish_new()
        await station.orders.review_settled(settled, recorded)
        log.warning("review %s accepted by %s: sale %s (%s L)", review_id, session.user,
                    recorded.id, recorded.volume)
        return {"review": review_view(settled, station.zone), "sale": station.sale_view(recorded)}

    @app.post("/api/v1/reviews/{review_id}/dismiss")
    async def dismiss(review_id: ReviewId, body: ReasonBody,
                      session: Annotated[Session, require(Permission.SERVICE)]
                      ) -> dict[str, Any]:
        await _open(review_id)
        try:
            settled = await station.ledger.write(station.store.dismiss_review, review_id,
                                                 user=session.user, reason=body.reason)
        except (UnknownReview, ReviewNotOpen) as exc:
            raise api_error(409, "review_settled", str(exc)) from None
        await station.ledger.publish_new()
        await station.orders.review_settled(settled, None)
        log.warning("review %s dismissed by %s: %s", review_id, session.user, body.reason)
        return {"review": review_view(settled, station.zone)}
