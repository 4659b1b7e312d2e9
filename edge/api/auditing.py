"""Every change a logged-in user asks through the API goes into the audit log, done or refused.

Here in one place so that no endpoint can forget it (docs/audit.md). Logins are recorded by the
session endpoint, which alone knows the name tried; refusals before a request reaches the app
(a body too large, a Host the station does not answer to) come through `refused`, called by the
guard in limits.py.

Whatever the body holds (not JSON, not UTF-8, lone surrogates, nesting without end) the entry
is written: the body is recorded as far as it can be, by its size when not at all, and text
that UTF-8 cannot hold is escaped by the audit store (edge/store/audit.py).

A plain ASGI middleware, not Starlette's BaseHTTPMiddleware: that one hands the endpoint its
body through a task group, which turns a body refused half-way (limits.BodyTooLarge) into an
exception group that FastAPI answers with a 400.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge.api.auth import Session
from edge.audit import READ_METHODS, api_action, record, redact

if TYPE_CHECKING:
    from edge.station import Station

# A request body larger than this is recorded by its size only.
AUDIT_BODY_LIMIT = 4096
# Nesting deeper than this is recorded by its size only (a JSON parser recurses).
AUDIT_BODY_DEPTH = 16


def _deeper_than(value: Any, limit: int) -> bool:
    level = [value]
    for _ in range(limit):
        level = [child for item in level if isinstance(item, dict | list)
                 for child in (item.values() if isinstance(item, dict) else item)]
        if not level:
            return False
    return True


def body_record(raw: bytes) -> Any:
    """The request body for its audit entry, secrets masked; None when it has none."""
    if not raw:
        return None
    if len(raw) > AUDIT_BODY_LIMIT:
        return {"bytes": len(raw)}
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return {"bytes": len(raw), "json": False}
    if _deeper_than(parsed, AUDIT_BODY_DEPTH):
        return {"bytes": len(raw), "depth": f">{AUDIT_BODY_DEPTH}"}
    return redact(parsed)


class Auditor:
    """Decides which requests are audited and writes their entries."""

    def __init__(self, station: Station, routes: Callable[[], list[Any]]) -> None:
        self.station = station
        self.routes = routes  # the app's routes, to name a request refused before routing

    def session_of(self, scope: Scope) -> Session | None:
        """The session of a request that is audited: a change asked by a logged-in user."""
        request = Request(scope)
        login = request.method == "POST" and request.url.path == "/api/v1/session"
        if (request.method in READ_METHODS or login
                or not request.url.path.startswith("/api/")):
            return None
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        # Looked up before the request runs: a logout ends the session.
        return self.station.sessions.get(token.strip())

    async def write(self, session: Session, scope: Scope, *, status: int, outcome: str,
                    body: Any = None) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None)
        if route is None:  # refused before routing: name it by the route it was for
            template = next((getattr(r, "path", None) for r in self.routes()
                             if r.matches(scope)[0] is Match.FULL), None)
        method, path = scope["method"], scope["path"]
        params = {k: str(v) for k, v in scope.get("path_params", {}).items()}
        details: dict[str, Any] = {"method": method, "path": path, "status": status}
        if body is not None:
            details["body"] = body
        # What the endpoint itself says the change was (a price's old -> new): set on
        # request.state.audit_details, kept even when the request was refused.
        change = (scope.get("state") or {}).get("audit_details")
        if change is not None:
            details["change"] = change
        await record(self.station.ledger, actor=session.user, role=session.role.value,
                     action=api_action(method, template, path),
                     target=",".join(params.values()) or None, outcome=outcome,
                     details=details)

    async def refused(self, scope: Scope, status: int, code: str) -> None:
        """The guard refused the request before it was read (limits.OnRefused)."""
        session = self.session_of(scope)
        if session is not None:
            await self.write(session, scope, status=status, outcome=code)


class AuditChanges:
    """The middleware: reads the body of an audited request (within the guard's limit), hands
    it on unchanged, and records the outcome once the app has answered."""

    def __init__(self, app: ASGIApp, *, auditor: Auditor) -> None:
        self.app = app
        self.auditor = auditor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        session = self.auditor.session_of(scope) if scope["type"] == "http" else None
        if session is None:
            await self.app(scope, receive, send)
            return
        raw = await Request(scope, receive).body()
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()  # a disconnect, when the app waits for one

        status = 500

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, replay, watched)
        except Exception:
            await self.auditor.write(session, scope, status=500, outcome="internal_error",
                                     body=body_record(raw))
            raise
        state = scope.get("state") or {}
        outcome = "ok" if status < 400 else state.get("error_code", f"http_{status}")
        await self.auditor.write(session, scope, status=status, outcome=outcome,
                                 body=body_record(raw))
