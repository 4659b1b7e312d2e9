"""One attendant sale against a station and its simulator, with the standard library only.

Run inside the Debian root by tests/package/test_deb.py (the package's own Python, no test
dependencies there):  python3 sale.py STATION_URL CA_FILE SIMULATOR_URL USER PIN
Prints the station's health version and the sale as JSON; exits non-zero on any failure.
"""

from __future__ import annotations

import json
import ssl
import sys
import time
import urllib.request
from typing import Any

DEADLINE = 60.0


def call(url: str, method: str = "GET", body: Any = None, token: str | None = None,
         context: ssl.SSLContext | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def until(what: str, check: Any) -> Any:
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        try:
            found = check()
        except OSError:
            found = None
        if found:
            return found
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def main(station: str, ca: str, sim: str, user: str, pin: str) -> None:
    context = ssl.create_default_context(cafile=ca) if station.startswith("https") else None

    def api(path: str, method: str = "GET", body: Any = None, token: str | None = None
            ) -> tuple[int, Any]:
        return call(station + path, method, body, token, context)

    health = until("the station's health", lambda: api("/api/v1/health")[1])
    status, session = api("/api/v1/session", "POST", {"user": user, "pin": pin})
    assert status == 200, session
    token = session["token"]
    before = len(api("/api/v1/sales?limit=1000", token=token)[1]["sales"])

    def pump_idle() -> bool:
        pumps = api("/api/v1/forecourt", token=token)[1]["pumps"]
        return any(p["number"] == 1 and p["state"] == "idle" for p in pumps)

    until("pump 1 idle", pump_idle)
    status, body = api("/api/v1/nozzles/1/authorize", "POST",
                       {"preset": {"amount": "20.00"}}, token)
    assert status == 202, body
    fills = len(call(sim + "/fills")[1]["fills"])
    call(sim + "/pumps/0x50/nozzles/1/lift", "POST")
    until("the fill", lambda: len(call(sim + "/fills")[1]["fills"]) > fills)
    call(sim + "/pumps/0x50/nozzles/1/hang", "POST")
    sales = until("the sale", lambda: (lambda s: s if len(s) > before else None)(
        api("/api/v1/sales?limit=1000", token=token)[1]["sales"]))
    print(json.dumps({"version": health["version"], "sales": len(sales),
                      "sale": max(sales, key=lambda s: str(s["ended_at"]))}))


if __name__ == "__main__":
    main(*sys.argv[1:6])
