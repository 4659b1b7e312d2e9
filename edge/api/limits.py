"""What a request may be before the API reads it: its Host, its size, its integers.

`RequestGuard` is the outermost layer of the app (inside only Starlette's error handler). It
refuses, before a byte of the body is read:

- a request whose Host the station does not go by (421 `host_not_allowed`, hosts.py), and a
  WebSocket whose Origin is another site's (closed before the handshake: 403);
- a body announced larger than `max_body` (413 `body_too_large`), and a body that grows past it
  while it streams in (chunked): whoever reads it, the audit middleware or the endpoint, gets
  `BodyTooLarge` at the chunk that crosses the limit, so at most the limit plus one chunk is
  ever held per request.

Starlette has a body limit of its own (RequestBodyLimitMiddleware), but it answers in plain
text; the contract's clients (the console, the cloud's tools) read one JSON error shape.
WebSocket messages are limited by uvicorn itself (`ws_max_size`, edge/station.py).

The bounded parameter types at the end put domain/bounds.py into the OpenAPI schema, so that
an integer beyond SQLite's is a 422 and never reaches the store.
"""

# No "from __future__ import annotations": FastAPI reads the Annotated types at run time.
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Path, Query
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.bounds import INT64, ROW_ID, SEQ
from edge.api.hosts import HostPolicy

log = logging.getLogger(__name__)

#: Headers on every answer, the guard's refusals included (app.py adds them to the rest).
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

#: The guard's refusals: status and error code (docs/runbook.md).
REFUSALS = {421: "host_not_allowed", 413: "body_too_large"}

#: Called after the guard refused a request (scope, status, error code): the app audits it
#: when a logged-in user sent it.
OnRefused = Callable[[Scope, int, str], Awaitable[None]]


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """The one error shape of the API: `{"error": {"code", "message"}}`."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status,
                        headers=headers)


class BodyTooLarge(HTTPException):
    """Raised to whoever reads a body past the limit. An HTTPException, so that FastAPI's body
    reading lets it through to the app's handler (any other error there becomes a 400)."""

    code = REFUSALS[413]

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the station accepts "
                              f"({limit // 1024} KiB)")


def _shown(value: str | None) -> str:
    if value is None:
        return "a request without a Host header"
    return repr(value[:80])


class RequestGuard:
    def __init__(self, app: ASGIApp, *, hosts: HostPolicy, max_body: int,
                 on_refused: OnRefused | None = None) -> None:
        self.app = app
        self.hosts = hosts
        self.max_body = max_body
        self.on_refused = on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host")
        if not self.hosts.allows_host(host):
            log.warning("refused a request for %s from %s", _shown(host), _client(scope))
            await self._refuse(scope, receive, send, 421, REFUSALS[421],
                               f"this station does not answer to {_shown(host)}")
            return
        if scope["type"] == "websocket":
            origin = headers.get("origin")
            if not self.hosts.allows_origin(origin, host):
                log.warning("refused a WebSocket from origin %r (%s)", (origin or "")[:80],
                            _client(scope))
                await send({"type": "websocket.close", "code": 1008})  # a 403 handshake
                return
            await self.app(scope, receive, send)
            return
        await self._http(scope, receive, send, headers)

    async def _http(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await self._too_large(scope, receive, send)
            return
        received = 0
        started = False

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited, watched)
        except BodyTooLarge:
            # Read outside the router (the audit middleware reads first): answered here.
            if started:
                raise
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        log.warning("refused a request body over %d bytes to %s from %s", self.max_body,
                    scope.get("path"), _client(scope))
        await self._refuse(scope, receive, send, 413, BodyTooLarge.code,
                           str(BodyTooLarge(self.max_body).detail))

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int, code: str,
                      message: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        else:
            response = error_response(status, code, message, headers=SECURITY_HEADERS)
            await response(scope, receive, send)
        if self.on_refused is not None:
            await self.on_refused(scope, status, code)


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every HTTP answer that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "an unknown client"


# ---------------------------------------------------------------------- bounded integers

#: `since_seq`: a position in the ledger or the audit log (0: from the start).
SinceSeq = Annotated[int, Query(ge=SEQ.low, le=SEQ.high)]
#: A pump or nozzle number in a path: any number SQLite could hold (an unknown one is a 404).
NumberPath = Annotated[int, Path(ge=INT64.low, le=INT64.high)]
#: A store-assigned id in a path (a shift).
RowIdPath = Annotated[int, Path(ge=ROW_ID.low, le=ROW_ID.high)]
