"""The local HTTP API (CONTRACT section 3) and the console's static files.

Every error leaves as ``{"error": {"code", "message"}}`` with a 4xx status (5xx only for the
station's own trouble: storage refusing writes, a pump not confirming); bad input never reaches
the controller. Swagger UI is off: it pulls scripts from a CDN and a station is often offline;
``/api/v1/openapi.json`` stays for tools.
"""

# No "from __future__ import annotations": FastAPI reads the Annotated dependencies at run time.
import asyncio
import logging
import secrets
from decimal import Decimal
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import (
    BackgroundTasks,
    Depends,
    FastAPI,
    Query,
    Request,
    WebSocket,
    WebSocketDisconnect,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.accounts import AccountUse
from domain.errors import StationError
from domain.model import PAYMENT_METHODS, Preset, rfc3339
from edge.api.auditing import AuditChanges, Auditor
from edge.api.auth import Permission, Session, may
from edge.api.books import register as register_books
from edge.api.console_api import register as register_console
from edge.api.hosts import HostPolicy
from edge.api.limits import (
    NumberPath,
    RequestGuard,
    RowIdPath,
    SecurityHeaders,
    SinceSeq,
    error_response,
)
from edge.api.logins import LoginDesk, LoginRefused, throttle_policy
from edge.api.metrics import metrics_token, render_metrics, sees_sales
from edge.api.operations import register as register_operations
from edge.api.pumps import register as register_pumps
from edge.store import StoreError, StoreUnavailable

if TYPE_CHECKING:
    from edge.station import Station

log = logging.getLogger(__name__)

# Money has two places; a volume may have three (pumps configured for millilitres).
MONEY_PATTERN = r"^[0-9]{1,6}(\.[0-9]{1,2})?$"
VOLUME_PATTERN = r"^[0-9]{1,6}(\.[0-9]{1,3})?$"
MoneyText = Annotated[str, Field(pattern=MONEY_PATTERN, examples=["100.00"])]
VolumeText = Annotated[str, Field(pattern=VOLUME_PATTERN, examples=["20.00"])]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# How often an open event WebSocket checks that its session still holds (it also checks
# before every message it sends).
SESSION_CHECK_SECONDS = 1.0


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SessionRequest(Strict):
    user: str = Field(min_length=1, max_length=64)
    pin: str = Field(min_length=1, max_length=32)


class PresetBody(Strict):
    amount: MoneyText | None = None
    volume: VolumeText | None = None

    @model_validator(mode="after")
    def _one(self) -> "PresetBody":
        if (self.amount is None) == (self.volume is None):
            raise ValueError("give exactly one of amount or volume")
        if Decimal(self.amount or self.volume or "0") <= 0:
            raise ValueError("a preset must be greater than zero")
        return self

    def to_preset(self) -> Preset:
        if self.amount is not None:
            return Preset("amount", Decimal(self.amount))
        assert self.volume is not None
        return Preset("volume", Decimal(self.volume))


class AccountBody(Strict):
    """A sale on a credit account (挂账): the card or plate, and who signs (docs/books.md)."""

    kind: Literal["card", "plate"]
    value: str = Field(min_length=1, max_length=32)
    signer: str = Field(min_length=1, max_length=64)


class AuthorizeRequest(Strict):
    preset: PresetBody | None = None
    account: AccountBody | None = None


class PaymentRequest(Strict):
    method: Literal["cash", "wechat", "alipay", "card", "account"]
    amount: MoneyText


class ShiftCloseRequest(Strict):
    """A person's close (edge/shift_close.py): the counted cash, why it closes with sales
    unpaid or authorizations open, and a second close within a minute asked for again."""

    counted_cash: MoneyText | None = None
    reason: str | None = Field(default=None, min_length=2, max_length=500)
    repeat: bool = False


def create_app(station: "Station") -> FastAPI:
    app = FastAPI(title="forecourt station API", version=station.version, docs_url=None,
                  redoc_url=None, openapi_url="/api/v1/openapi.json")

    # ------------------------------------------------------------- errors in one shape

    def noted(request: Request, code: str) -> str:
        # The audit middleware records the error code as the request's outcome.
        request.state.error_code = code
        return code

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        noted(request, exc.code)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(exc.status, exc.code, exc.message, headers)

    @app.exception_handler(StationError)
    async def _station_error(request: Request, exc: StationError) -> JSONResponse:
        return error_response(exc.status, noted(request, exc.code), exc.message)

    @app.exception_handler(StoreUnavailable)
    async def _store_unavailable(request: Request, exc: StoreUnavailable) -> JSONResponse:
        return error_response(503, noted(request, "storage_unavailable"),
                              f"the station cannot write: {exc}")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append(f"{where}: {err.get('msg', 'invalid')}" if where else
                            str(err.get("msg", "invalid")))
        return error_response(422, noted(request, "invalid_request"),
                              "; ".join(problems) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed",
                413: "body_too_large"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, noted(request, code), str(exc.detail))

    # Outermost last: the guard refuses before anything reads, the audit sees what is left.
    api_config = station.config.api
    auditor = Auditor(station, lambda: app.router.routes)
    app.add_middleware(AuditChanges, auditor=auditor)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestGuard, hosts=HostPolicy.for_listen(
        api_config.host, api_config.allowed_hosts), max_body=api_config.max_request,
        on_refused=auditor.refused)

    # ------------------------------------------------------------- who is asking

    def session_from(token: str | None) -> Session:
        if not token:
            raise ApiError(401, "unauthenticated", "log in first (POST /api/v1/session)")
        session = station.sessions.get(token)
        if session is None:
            raise ApiError(401, "session_expired", "the session has expired; log in again")
        return session

    async def bearer(request: Request) -> Session:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        # A user changed from the command line ends their sessions too (edge/api/auth.py).
        await station.sessions.refresh(desk.read_stamps)
        return session_from(token.strip() if scheme.lower() == "bearer" else None)

    def require(permission: Permission) -> Any:
        def dependency(session: Annotated[Session, Depends(bearer)]) -> Session:
            if not may(session.role, permission):
                raise ApiError(403, "forbidden",
                               f"a {session.role.value} may not do this ({permission.value})")
            return session
        return Depends(dependency)

    # ------------------------------------------------------------- endpoints

    desk = LoginDesk(ledger=station.ledger, sessions=station.sessions,
                     policy=throttle_policy(station.config.api))

    @app.post("/api/v1/session", response_model=None,
              responses={401: {"description": "unknown user or wrong PIN"},
                         429: {"description": "too many wrong PINs: wait Retry-After s"},
                         503: {"description": "too many logins at once"}})
    async def open_session(body: SessionRequest, request: Request) -> JSONResponse:
        # Refusals are answered here rather than raised: the audit entries of a refusal are
        # written after the answer has left (background), which a raised error would drop.
        later = BackgroundTasks()
        address = request.client.host if request.client is not None else "unknown"
        try:
            session = await desk.open_session(address, body.user, body.pin, later.add_task)
        except LoginRefused as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
            if exc.retry_after is not None:
                headers["Retry-After"] = str(exc.retry_after)
            refused = error_response(exc.status, noted(request, exc.code), exc.message, headers)
            refused.background = later
            return refused
        return JSONResponse({"token": session.token, "role": session.role.value,
                             "expires_at": rfc3339(session.expires_at.astimezone(station.zone))},
                            background=later)

    @app.delete("/api/v1/session", status_code=204)
    async def close_session(request: Request,
                            session: Annotated[Session, Depends(bearer)]) -> Response:
        station.sessions.close(session.token)
        return Response(status_code=204)

    @app.get("/api/v1/health")
    async def health() -> dict[str, Any]:
        return await station.health()

    @app.get("/api/v1/forecourt")
    async def forecourt(_: Annotated[Session, require(Permission.READ)]) -> dict[str, Any]:
        return station.forecourt.snapshot()

    @app.post("/api/v1/nozzles/{number}/authorize", status_code=202)
    async def authorize(number: NumberPath, body: AuthorizeRequest,
                        session: Annotated[Session, require(Permission.AUTHORIZE)]
                        ) -> dict[str, Any]:
        preset = body.preset.to_preset() if body.preset else None
        account = (AccountUse(body.account.kind, body.account.value, body.account.signer)
                   if body.account else None)
        auth = await station.forecourt.authorize(number, preset, user=session.user,
                                                 account=account)
        return {"authorization_id": auth.id, "nozzle": number, "state": auth.state}

    @app.post("/api/v1/pumps/{number}/stop", status_code=202)
    async def stop(number: NumberPath,
                   session: Annotated[Session, require(Permission.STOP)]) -> dict[str, Any]:
        await station.forecourt.stop(number, session.user)
        log.warning("emergency stop of pump %d by %s", number, session.user)
        return {"pump": number, "stopped": True}

    @app.get("/api/v1/sales")
    async def sales(_: Annotated[Session, require(Permission.READ)],
                    since_seq: SinceSeq = 0,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                    unpaid: bool | None = None) -> dict[str, Any]:
        rows = await station.ledger.read(station.store.sales, since_seq=since_seq, limit=limit,
                                         unpaid=unpaid)
        return {"sales": [station.sale_view(s) for s in rows]}

    @app.get("/api/v1/sales/{sale_id}")
    async def sale(sale_id: str,
                   _: Annotated[Session, require(Permission.READ)]) -> dict[str, Any]:
        found = await station.ledger.read(station.store.get_sale, sale_id)
        if found is None:
            raise ApiError(404, "unknown_sale", f"there is no sale {sale_id}")
        return station.sale_view(found)

    @app.post("/api/v1/sales/{sale_id}/payments", status_code=201)
    async def pay(sale_id: str, body: PaymentRequest,
                  session: Annotated[Session, require(Permission.PAYMENT)]) -> dict[str, Any]:
        assert body.method in PAYMENT_METHODS
        try:
            await station.ledger.write(station.store.add_payment, sale_id, method=body.method,
                                       amount=Decimal(body.amount), user=session.user)
        except StoreUnavailable:
            raise
        except StoreError as exc:
            code = type(exc).__name__
            status = 404 if code == "UnknownSale" else 409
            snake = "".join("_" + c.lower() if c.isupper() else c for c in code).lstrip("_")
            raise ApiError(status, snake, str(exc)) from None
        found = await station.ledger.read(station.store.get_sale, sale_id)
        assert found is not None
        view = station.sale_view(found)
        # Live, not a record: consoles refresh the sale and the day's figures; a receipt
        # prints now when [printer] print_at says so (edge/receipts.py).
        station.hub.publish({"type": "payment.recorded", "ts": rfc3339(station.now()),
                             "data": view})
        return view

    async def sale_for_receipt(sale_id: str) -> dict[str, Any]:
        if station.receipts is None:
            raise ApiError(409, "printer_not_configured",
                           "this station has no [printer] section in its config")
        found = await station.ledger.read(station.store.get_sale, sale_id)
        if found is None:
            raise ApiError(404, "unknown_sale", f"there is no sale {sale_id}")
        return station.sale_view(found)

    @app.post("/api/v1/sales/{sale_id}/receipt", status_code=202)
    async def print_receipt(sale_id: str,
                            session: Annotated[Session, require(Permission.RECEIPT)]
                            ) -> JSONResponse:
        sale_view = await sale_for_receipt(sale_id)
        assert station.receipts is not None
        outcome = await station.receipts.print_sale(sale_view)
        log.info("receipt of sale %s requested by %s", sale_id, session.user)
        return JSONResponse(outcome.to_api(), status_code=202 if outcome.queued else 503)

    @app.get("/api/v1/sales/{sale_id}/receipt.png")
    async def receipt_preview(sale_id: str,
                              _: Annotated[Session, require(Permission.READ)]) -> Response:
        sale_view = await sale_for_receipt(sale_id)
        assert station.receipts is not None
        try:
            png = await station.receipts.preview(sale_view)
        except ValueError as exc:
            raise ApiError(409, "receipt_unavailable", str(exc)) from None
        return Response(png, media_type="image/png")

    @app.post("/api/v1/printer/retry", status_code=202)
    async def printer_retry(_: Annotated[Session, require(Permission.RECEIPT)]
                            ) -> dict[str, Any]:
        if station.receipts is None:
            raise ApiError(409, "printer_not_configured",
                           "this station has no [printer] section in its config")
        station.receipts.retry_now()
        return station.receipts.status()

    @app.get("/api/v1/tanks")
    async def tanks(_: Annotated[Session, require(Permission.READ)]) -> dict[str, Any]:
        if station.tanks is None:
            return {"tanks": []}
        view: dict[str, Any] = await station.tanks.view()
        return view

    # ------------------------------------------------------------- shifts (班结)

    @app.post("/api/v1/shifts/current/close")
    async def close_shift(session: Annotated[Session, require(Permission.SHIFT_CLOSE)],
                          body: ShiftCloseRequest | None = None) -> dict[str, Any]:
        asked = body or ShiftCloseRequest()
        report: dict[str, Any] = await station.shifts.close(
            user=session.user, checked=True, reason=asked.reason, repeat=asked.repeat,
            counted_cash=None if asked.counted_cash is None else Decimal(asked.counted_cash))
        return report

    async def shift_report(shift_id: int | None) -> dict[str, Any]:
        report = await station.shifts.report(shift_id)
        if report is None:
            raise ApiError(404, "unknown_shift", f"there is no shift {shift_id}")
        return report

    @app.get("/api/v1/shifts/current")
    async def current_shift(_: Annotated[Session, require(Permission.READ)]) -> dict[str, Any]:
        return await shift_report(None)

    @app.get("/api/v1/shifts/{shift_id}")
    async def shift(shift_id: RowIdPath,
                    _: Annotated[Session, require(Permission.READ)]) -> dict[str, Any]:
        return await shift_report(shift_id)

    @app.get("/api/v1/audit")
    async def audit(_: Annotated[Session, require(Permission.AUDIT)],
                    since_seq: SinceSeq = 0,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        rows = await station.ledger.read(station.store.audit_entries, since_seq, limit)
        return {"entries": [e.to_api(station.zone) for e in rows]}

    register_operations(app, station, require, ApiError, desk=desk)
    register_pumps(app, station, require, ApiError)
    register_console(app, station, require, ApiError)
    register_books(app, station, require, ApiError)

    async def current_session(token: str) -> Session | None:
        await station.sessions.refresh(desk.read_stamps)
        return station.sessions.get(token)

    scrape_token = metrics_token(api_config)

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        # A Prometheus scraper sends the token of [api] metrics_token_file; a person, their
        # session. Without either, only an open endpoint answers, and never with sales.
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        if token and scrape_token and secrets.compare_digest(token.encode(),
                                                             scrape_token.encode()):
            sales = True
        elif token:
            session = await current_session(token)
            if session is None:
                raise ApiError(401, "unauthenticated", "not the metrics token, nor a session")
            if sees_sales(session.role):
                sales = True
            elif api_config.metrics_open:
                sales = False  # open to anybody, so to this session too, without the sales
            else:
                raise ApiError(403, "forbidden", f"a {session.role.value} may not read the "
                               "station's figures")
        elif api_config.metrics_open:
            sales = False
        else:
            raise ApiError(401, "unauthenticated", "send the metrics token (Authorization: "
                           "Bearer, [api] metrics_token_file) or log in as a manager")
        body, content_type = await asyncio.to_thread(render_metrics, station, sales=sales)
        return Response(body, media_type=content_type)

    @app.websocket("/api/v1/events")
    async def events(websocket: WebSocket, token: str | None = None) -> None:
        # The Host and the Origin were checked before the handshake (limits.py); messages
        # larger than [api] max_request_kib close the socket (uvicorn's ws_max_size).
        header = websocket.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            token = header[7:].strip()
        session = station.sessions.get(token) if token else None
        await websocket.accept()
        if session is None:
            # Accepted first so that the console gets a close code it can act on, not a
            # handshake refusal.
            await websocket.close(code=4401, reason="log in first")
            return

        async def ended() -> bool:
            # A logout, an expiry, or the user changed or disabled (through the API at once,
            # through the command line once the stamps are read again).
            return await current_session(session.token) is None

        async with station.hub.subscribe() as subscription:
            await websocket.send_json({"type": "forecourt.snapshot",
                                       "data": station.forecourt.snapshot()})
            receiver = asyncio.ensure_future(websocket.receive())
            getter = asyncio.ensure_future(subscription.get())
            try:
                while True:
                    done, _ = await asyncio.wait({getter, receiver},
                                                 timeout=SESSION_CHECK_SECONDS,
                                                 return_when=asyncio.FIRST_COMPLETED)
                    if receiver in done:
                        if receiver.result()["type"] == "websocket.disconnect":
                            return  # the console left
                        receiver = asyncio.ensure_future(websocket.receive())
                    # Checked before anything is sent: nothing leaves after the session ends.
                    if await ended():
                        await websocket.close(code=4401, reason="session ended")
                        return
                    if getter in done:
                        await websocket.send_json(getter.result())
                        getter = asyncio.ensure_future(subscription.get())
            except WebSocketDisconnect:
                pass
            finally:
                receiver.cancel()
                getter.cancel()

    # The console's script and style are files of their own so that the policy allows no
    # inline code at all; the receipt preview is fetched with the token and shown as a blob.
    console_policy = {"Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; "
                                                 "connect-src 'self'; frame-ancestors 'none'"}
    console_assets = {"console.js": "text/javascript", "console.css": "text/css",
                      "console.svg": "image/svg+xml", "messages.js": "text/javascript",
                      "panes.js": "text/javascript", "books.js": "text/javascript"}

    @app.get("/", response_class=HTMLResponse)
    async def console() -> HTMLResponse:
        page = resources.files("edge").joinpath("static/console.html").read_text("utf-8")
        return HTMLResponse(page, headers=console_policy)

    @app.get("/static/{name}", include_in_schema=False)
    async def console_asset(name: str) -> Response:
        if name not in console_assets:
            raise ApiError(404, "not_found", f"there is no {name}")
        body = resources.files("edge").joinpath("static", name).read_bytes()
        return Response(body, media_type=console_assets[name], headers=console_policy)

    return app
