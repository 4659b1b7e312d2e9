"""The plain-HTTP listener of a station that serves HTTPS: every request is sent to HTTPS.

A tablet's bookmark or a cashier typing `station:8080` lands here and is redirected (308, so a
POST stays a POST) to the same host and path on the HTTPS port. Nothing is served in plain
text, and a Host the station does not answer to gets 421, not a redirect to a name somebody
else chose (the HTTPS side would refuse it anyway). No session, no cookies, no body read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from edge.api.hosts import HostPolicy, split_host

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def https_location(host_header: str | None, path: str, query: bytes, https_port: int,
                   hosts: HostPolicy) -> str | None:
    """Where a request for `host_header` + `path` goes on HTTPS; None for a Host refused."""
    if not hosts.allows_host(host_header):
        return None
    split = split_host(host_header)
    assert split is not None  # allows_host said yes
    host = f"[{split[0]}]" if ":" in split[0] else split[0]
    port = "" if https_port == 443 else f":{https_port}"
    tail = f"?{query.decode('latin-1')}" if query else ""
    return f"https://{host}{port}{path}{tail}"


def redirect_app(https_port: int, hosts: HostPolicy) -> Callable[[Scope, Receive, Send],
                                                                 Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        path = scope.get("raw_path", b"").decode("latin-1") or scope.get("path", "/")
        location = https_location(headers.get("host"), path.split("?")[0] or "/",
                                  scope.get("query_string", b""), https_port, hosts)
        if location is None:
            body = b'{"error": {"code": "host_not_allowed", "message": "unknown host"}}'
            await send({"type": "http.response.start", "status": 421,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await send({"type": "http.response.start", "status": 308,
                    "headers": [(b"location", location.encode("latin-1")),
                                (b"content-length", b"0"),
                                (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": b""})

    return app
