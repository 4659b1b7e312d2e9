"""The station's books over the local API (docs/books.md, docs/api.md): deliveries received,
non-sale fills, totalizer corrections, month close (进销存) and credit accounts (挂账).

Every change here is recorded by the audit middleware, done or refused. Refusals of the books
leave as `{"error": {"code", "message"}}` like the rest of the API.
"""

# No "from __future__ import annotations": FastAPI reads the Annotated dependencies at run time.
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import FastAPI, Query
from fastapi import Path as FastApiPath
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator

from edge.api.auth import Permission, Session
from edge.api.limits import NumberPath
from edge.books.closing import account_view, statement_csv
from edge.books.delivery import Bill
from edge.books.receiving import entered_reading
from edge.store.accounts import Limits
from edge.store.books import (
    CORRECTION_CAUSES,
    NONSALE_KINDS,
    BooksError,
    NonSaleRequest,
)

if TYPE_CHECKING:
    from edge.books.parts import Books
    from edge.station import Station

Require = Callable[[Permission], Any]
ErrorFactory = Callable[[int, str, str], Exception]

_VOLUME = r"^[0-9]{1,7}(\.[0-9]{1,3})?$"
_SIGNED_VOLUME = r"^-?[0-9]{1,7}(\.[0-9]{1,3})?$"
_TOTAL = r"^[0-9]{1,12}(\.[0-9]{1,3})?$"
_TEMPERATURE = r"^-?[0-9]{1,2}(\.[0-9]{1,2})?$"
_DENSITY = r"^[0-9]{3,4}(\.[0-9]{1,2})?$"
_MONTH = r"^[0-9]{4}-[0-9]{2}$"
Volume = Annotated[StrictStr, Field(pattern=_VOLUME, examples=["20000.00"])]
Name = Annotated[StrictStr, Field(min_length=1, max_length=64)]
Note = Annotated[StrictStr, Field(min_length=1, max_length=500)]
MonthText = Annotated[str, FastApiPath(pattern=_MONTH)]
ReceiptId = Annotated[str, FastApiPath(min_length=1, max_length=64)]
AccountId = Annotated[str, FastApiPath(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BillBody(_Strict):
    number: Name
    volume_l: Volume
    density20: Annotated[StrictStr, Field(pattern=_DENSITY, examples=["737.5"])]
    temperature_c: Annotated[StrictStr, Field(pattern=_TEMPERATURE)] | None = None
    truck: Name
    seals: list[Name] = Field(default_factory=list, max_length=20)
    depot: Name | None = None

    def to_bill(self) -> Bill:
        return Bill(number=self.number, volume_l=Decimal(self.volume_l),
                    density20=Decimal(self.density20),
                    temperature_c=(None if self.temperature_c is None
                                   else Decimal(self.temperature_c)),
                    truck=self.truck, seals=tuple(self.seals), depot=self.depot)


class ReadingBody(_Strict):
    """A reading entered by hand (the gauge is off, or disagrees with the dipstick)."""

    volume_l: Volume
    temperature_c: Annotated[StrictStr, Field(pattern=_TEMPERATURE)] | None = None
    level_mm: Volume | None = None
    reason: Note


class OpenReceipt(_Strict):
    tank: int = Field(ge=1, le=99)
    bill: BillBody
    delivery_id: Name | None = None
    before: ReadingBody | None = None


class ReceiveBody(_Strict):
    after: ReadingBody | None = None
    outcome: Literal["accepted", "driver_pays", "depot_remeasure", "manager_accepts"] | None = None
    driver: Name
    receiver: Name
    supervisor: Name | None = None
    note: Note | None = None


class CancelBody(_Strict):
    note: Note


class PresetBody(_Strict):
    volume: Volume | None = None
    amount: Volume | None = None


class NonSaleBody(_Strict):
    kind: Literal["self_check", "own_use", "returned", "transfer"]
    reason: Note
    witnesses: list[Name] = Field(min_length=1, max_length=5)
    to_tank: int | None = Field(default=None, ge=1, le=99)
    preset: PresetBody | None = None

    @model_validator(mode="after")
    def _transfer(self) -> "NonSaleBody":
        if (self.kind == "transfer") != (self.to_tank is not None):
            raise ValueError("to_tank is given for a transfer, and only for a transfer")
        return self


class TotalsBody(_Strict):
    volume_total: Annotated[StrictStr, Field(pattern=_TOTAL)]
    amount_total: Annotated[StrictStr, Field(pattern=_TOTAL)]


class CorrectionBody(_Strict):
    nozzle: int = Field(ge=1, le=999)
    cause: Literal["reset", "board_swap", "other"]
    before: TotalsBody
    after: TotalsBody
    note: Note


class ClosingBody(_Strict):
    volume_l: Volume
    reason: Note


class CloseMonthBody(_Strict):
    closing: dict[str, ClosingBody] = Field(default_factory=dict, max_length=99)


class AdjustmentBody(_Strict):
    tank: int = Field(ge=1, le=99)
    volume_l: Annotated[StrictStr, Field(pattern=_SIGNED_VOLUME)]
    reason: Note
    corrects_month: Annotated[StrictStr, Field(pattern=_MONTH)] | None = None


class LimitsBody(_Strict):
    grades: list[Annotated[StrictStr, Field(min_length=1, max_length=16)]] | None = None
    amount: Volume | None = None
    volume: Volume | None = None
    fills: int | None = Field(default=None, ge=1, le=1000)


class AccountBody(_Strict):
    id: Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    name: Name
    cards: list[Name] = Field(default_factory=list, max_length=100)
    plates: list[Name] = Field(default_factory=list, max_length=100)
    limits: LimitsBody = LimitsBody()


class BlockBody(_Strict):
    reason: Note


def _csv(text: str, filename: str) -> Response:
    # A BOM so that Excel, which the station's accountant opens it with, reads UTF-8.
    return Response("\ufeff" + text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def register(app: FastAPI, station: "Station", require: Require,
             api_error: ErrorFactory) -> None:
    """Adds the books' endpoints to `app` (the station's `books` must be running)."""

    def books_error(exc: BooksError) -> Exception:
        return api_error(exc.status, exc.code, exc.message)

    def ready() -> "Books":
        if station.books is None:
            raise api_error(503, "books_unavailable", "the books are starting; try again")
        return station.books

    # ------------------------------------------------------------- deliveries (卸油验收)

    @app.get("/api/v1/deliveries/receipts")
    async def receipts(_: Annotated[Session, require(Permission.READ)],
                       status: Literal["open", "received", "cancelled"] | None = None,
                       limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
        books = ready()
        found = await books.service.ledger.read(books.service.deliveries.receipts, limit, status)
        return {"receipts": found}

    @app.get("/api/v1/deliveries/receipts/{receipt_id}")
    async def receipt(receipt_id: ReceiptId,
                      _: Annotated[Session, require(Permission.READ)]) -> dict[str, Any]:
        books = ready()
        found = await books.service.ledger.read(books.service.deliveries.get, receipt_id)
        if found is None:
            raise api_error(404, "unknown_receipt", f"there is no delivery receipt {receipt_id}")
        return dict(found)

    @app.post("/api/v1/deliveries/receipts", status_code=201)
    async def open_receipt(body: OpenReceipt,
                           session: Annotated[Session, require(Permission.SERVICE)]
                           ) -> dict[str, Any]:
        books = ready()
        before = None if body.before is None else _entered(body.before)
        try:
            return dict(await books.receiving.open(tank=body.tank, bill=body.bill.to_bill(),
                                                   before=before, delivery_id=body.delivery_id,
                                                   user=session.user))
        except BooksError as exc:
            raise books_error(exc) from None

    def _entered(reading: ReadingBody) -> Any:
        return entered_reading(
            Decimal(reading.volume_l),
            None if reading.temperature_c is None else Decimal(reading.temperature_c),
            None if reading.level_mm is None else Decimal(reading.level_mm), reading.reason,
            station.now())

    @app.post("/api/v1/deliveries/receipts/{receipt_id}/receive")
    async def receive(receipt_id: ReceiptId, body: ReceiveBody,
                      _: Annotated[Session, require(Permission.SERVICE)]) -> dict[str, Any]:
        books = ready()
        try:
            return dict(await books.receiving.receive(
                receipt_id, after=None if body.after is None else _entered(body.after),
                outcome=body.outcome, driver=body.driver, receiver=body.receiver,
                supervisor=body.supervisor, note=body.note))
        except BooksError as exc:
            raise books_error(exc) from None

    @app.post("/api/v1/deliveries/receipts/{receipt_id}/cancel")
    async def cancel(receipt_id: ReceiptId, body: CancelBody,
                     _: Annotated[Session, require(Permission.SERVICE)]) -> dict[str, Any]:
        books = ready()
        try:
            return dict(await books.receiving.cancel(receipt_id, body.note))
        except BooksError as exc:
            raise books_error(exc) from None

    @app.post("/api/v1/deliveries/receipts/{receipt_id}/print", status_code=202)
    async def print_slip(receipt_id: ReceiptId,
                         _: Annotated[Session, require(Permission.RECEIPT)]) -> dict[str, Any]:
        books = ready()
        found = await books.service.ledger.read(books.service.deliveries.get, receipt_id)
        if found is None or found["status"] != "received":
            raise api_error(404, "unknown_receipt", f"no received delivery {receipt_id}")
        printed = await books.receiving.print(found)
        if printed is None:
            raise api_error(409, "printer_not_configured",
                            "this station has no [printer] section in its config")
        return dict(printed)

    @app.get("/api/v1/deliveries/detected")
    async def detected(_: Annotated[Session, require(Permission.READ)],
                       limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
        """Deliveries the gauges found, newest first, each with the receipt received for it
        (null: the paperwork is still to do)."""
        books = ready()
        found = await books.service.ledger.read(station.store.deliveries, limit=limit)
        receipts = {r["delivery_id"]: r["id"] for r in await books.service.ledger.read(
            books.service.deliveries.receipts, 500) if r["delivery_id"] and
            r["status"] != "cancelled"}
        zone = station.zone
        return {"deliveries": [{
            "delivery_id": d.id, "tank": d.tank, "grade": d.grade,
            "volume_l": format(d.volume_l, "f"),
            "started_at": d.started_at.astimezone(zone).isoformat(),
            "ended_at": d.ended_at.astimezone(zone).isoformat(),
            "receipt_id": receipts.get(d.id)} for d in found]}

    # ------------------------------------------------------------- non-sale fills

    @app.post("/api/v1/nozzles/{number}/nonsale", status_code=202)
    async def nonsale(number: NumberPath, body: NonSaleBody,
                      session: Annotated[Session, require(Permission.AUTHORIZE)]
                      ) -> dict[str, Any]:
        books = ready()
        if body.to_tank is not None and (station.config.tanks is None or all(
                t.number != body.to_tank for t in station.config.tanks.tanks)):
            raise api_error(422, "unknown_tank", f"there is no tank {body.to_tank}")
        preset = None
        if body.preset is not None:
            from edge.api.app import PresetBody as SalePreset
            try:
                preset = SalePreset(amount=body.preset.amount,
                                    volume=body.preset.volume).to_preset()
            except ValueError as exc:
                raise api_error(422, "invalid_request", str(exc)) from None
        auth = await station.forecourt.authorize(number, preset, user=session.user)
        books.service.expect_nonsale(auth.id)
        await books.service.ledger.write(books.service.store.save_nonsale_request,
                                         NonSaleRequest(auth.id, number, body.kind, body.reason,
                                                        tuple(body.witnesses), body.to_tank,
                                                        session.user, station.now()))
        return {"authorization_id": auth.id, "nozzle": number, "state": auth.state,
                "kind": body.kind, "kinds": list(NONSALE_KINDS)}

    @app.get("/api/v1/nonsale")
    async def nonsale_fills(_: Annotated[Session, require(Permission.READ)],
                            since_seq: Annotated[int, Query(ge=0, le=2**62)] = 0,
                            ) -> dict[str, Any]:
        books = ready()
        found = await books.service.ledger.read(books.service.store.nonsale_in_seqs, since_seq,
                                                None)
        return {"fills": found}

    # ------------------------------------------------------------- totalizer corrections

    @app.post("/api/v1/totals/corrections", status_code=201)
    async def correction(body: CorrectionBody,
                         session: Annotated[Session, require(Permission.SERVICE)]
                         ) -> dict[str, Any]:
        books = ready()
        try:
            pump, _nozzle = station.config.nozzle(body.nozzle)
        except KeyError:
            raise api_error(404, "unknown_nozzle", f"there is no nozzle {body.nozzle}") from None
        assert body.cause in CORRECTION_CAUSES
        try:
            return dict(await books.service.ledger.write(
                books.service.store.record_correction, pump=pump.number, nozzle=body.nozzle,
                cause=body.cause,
                before=(Decimal(body.before.volume_total), Decimal(body.before.amount_total)),
                after=(Decimal(body.after.volume_total), Decimal(body.after.amount_total)),
                note=body.note, user=session.user))
        except BooksError as exc:
            raise books_error(exc) from None
        finally:
            await books.service.ledger.publish_new()

    @app.get("/api/v1/totals/corrections")
    async def corrections(_: Annotated[Session, require(Permission.READ)]) -> dict[str, Any]:
        books = ready()
        return {"corrections": await books.service.ledger.read(books.service.store.corrections)}

    # ------------------------------------------------------------- month close (进销存)

    @app.get("/api/v1/books/months/{month}")
    async def month(month: MonthText,
                    _: Annotated[Session, require(Permission.READ)]) -> dict[str, Any]:
        books = ready()
        try:
            return dict(await books.closing.month(month))
        except BooksError as exc:
            raise books_error(exc) from None

    @app.get("/api/v1/books/months/{month}/csv", response_class=Response,
             responses={200: {"content": {"text/csv": {}}}})
    async def month_csv(month: MonthText,
                        _: Annotated[Session, require(Permission.READ)]) -> Response:
        books = ready()
        try:
            body = await books.closing.month(month)
        except BooksError as exc:
            raise books_error(exc) from None
        return _csv(books.closing.csv(body), f"books-{month}.csv")

    @app.post("/api/v1/books/months/{month}/close")
    async def close_month(month: MonthText, body: CloseMonthBody,
                          session: Annotated[Session, require(Permission.SERVICE)]
                          ) -> dict[str, Any]:
        books = ready()
        entered = {}
        for tank, closing in body.closing.items():
            if not tank.isdigit():
                raise api_error(422, "invalid_request", f"closing: {tank!r} is not a tank number")
            entered[int(tank)] = (Decimal(closing.volume_l), closing.reason)
        try:
            return dict(await books.closing.close(month, user=session.user, entered=entered))
        except BooksError as exc:
            raise books_error(exc) from None

    @app.post("/api/v1/books/adjustments", status_code=201)
    async def adjustment(body: AdjustmentBody,
                         session: Annotated[Session, require(Permission.SERVICE)]
                         ) -> dict[str, Any]:
        books = ready()
        try:
            return dict(await books.closing.adjust(
                tank=body.tank, volume=Decimal(body.volume_l), reason=body.reason,
                corrects=body.corrects_month, user=session.user))
        except BooksError as exc:
            raise books_error(exc) from None

    @app.get("/api/v1/books/adjustments")
    async def adjustments(_: Annotated[Session, require(Permission.READ)]) -> dict[str, Any]:
        books = ready()
        found = await books.service.ledger.read(books.service.months.adjustments, None)
        return {"adjustments": [{**a, "created_at": a["created_at"].astimezone(
            station.zone).isoformat()} for a in found]}

    # ------------------------------------------------------------- credit accounts (挂账)

    @app.get("/api/v1/accounts")
    async def accounts(_: Annotated[Session, require(Permission.READ)]) -> dict[str, Any]:
        books = ready()
        found = await books.service.ledger.read(books.service.accounts.all)
        return {"accounts": [account_view(a, station.zone) for a in found]}

    @app.post("/api/v1/accounts")
    async def save_account(body: AccountBody,
                           _: Annotated[Session, require(Permission.SERVICE)]) -> dict[str, Any]:
        books = ready()
        try:
            saved = await books.service.ledger.write(
                books.service.accounts.upsert, account_id=body.id, name=body.name,
                cards=body.cards, plates=body.plates,
                limits=Limits.from_api(body.limits.model_dump()), source="local")
        except BooksError as exc:
            raise books_error(exc) from None
        await books.service.ledger.publish_new()
        return account_view(saved, station.zone)

    async def set_blocked(account_id: str, blocked: bool, reason: str | None) -> dict[str, Any]:
        books = ready()
        try:
            saved = await books.service.ledger.write(books.service.accounts.set_blocked,
                                                     account_id, blocked=blocked, reason=reason)
        except BooksError as exc:
            raise books_error(exc) from None
        await books.service.ledger.publish_new()
        return account_view(saved, station.zone)

    @app.post("/api/v1/accounts/{account_id}/block")
    async def block(account_id: AccountId, body: BlockBody,
                    _: Annotated[Session, require(Permission.SERVICE)]) -> dict[str, Any]:
        return await set_blocked(account_id, True, body.reason)

    @app.post("/api/v1/accounts/{account_id}/unblock")
    async def unblock(account_id: AccountId,
                      _: Annotated[Session, require(Permission.SERVICE)]) -> dict[str, Any]:
        return await set_blocked(account_id, False, None)

    async def statement(account_id: str, month_text: str) -> dict[str, Any]:
        books = ready()
        try:
            body, _rows = await books.closing.statement(account_id, month_text)
        except BooksError as exc:
            raise books_error(exc) from None
        return body

    MonthQuery = Annotated[str, Query(pattern=_MONTH)]

    @app.get("/api/v1/accounts/{account_id}/statement")
    async def account_statement(account_id: AccountId, month: MonthQuery,
                                _: Annotated[Session, require(Permission.READ)]
                                ) -> dict[str, Any]:
        return await statement(account_id, month)

    @app.get("/api/v1/accounts/{account_id}/statement.csv", response_class=Response,
             responses={200: {"content": {"text/csv": {}}}})
    async def account_statement_csv(account_id: AccountId, month: MonthQuery,
                                    _: Annotated[Session, require(Permission.READ)]) -> Response:
        body = await statement(account_id, month)
        return _csv(statement_csv(body), f"statement-{account_id}-{month}.csv")

    @app.post("/api/v1/accounts/{account_id}/statement/print", status_code=202)
    async def print_statement(account_id: AccountId, month: MonthQuery,
                              _: Annotated[Session, require(Permission.RECEIPT)]
                              ) -> dict[str, Any]:
        body = await statement(account_id, month)
        printed = await ready().closing.print_statement(body)
        if printed is None:
            raise api_error(409, "printer_not_configured",
                            "this station has no [printer] section in its config")
        return dict(printed)
