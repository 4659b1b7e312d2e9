"""The HTTP API under attack from the station LAN, against a real daemon (docs/security.md).

One ``forecourt run`` child process serves the module; its pumps are simulated over a real
socket by this process. Each test sends what a hostile client on the LAN, or a web page in a
browser on the LAN, could send: bodies too large to hold, integers too large to store, text
that is not text, a Host or an Origin of another site, a WebSocket kept open after its logout,
and an anonymous scrape of the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import websockets

from simulator.control import Simulator, run_simulator
from tests.e2e.conftest import USERS, sim_pumps, write_config
from tests.e2e.daemon import Daemon
from tests.helpers import free_port, wait_until

pytestmark = pytest.mark.asyncio(loop_scope="module")

PUMP1 = 0x50
METRICS_TOKEN = "metrics-7f3a9c2e5b1d4f60a8e2c7b9"
#: One hostile body: big enough that holding it shows in the daemon's peak memory, small
#: enough to send three at once quickly on a loaded test machine. The limit is 64 KiB.
BIG = 32 * 1024 * 1024
CHUNK = 256 * 1024
#: What a client sends before it waits for the answer: sixteen times the limit.
PROBE = 1024 * 1024
INT64_OVER = 2**63  # one more than SQLite's largest INTEGER


@dataclass
class Station:
    daemon: Daemon
    sim: Simulator
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/events"

    def anonymous(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=15, **kwargs)

    async def login(self, user: str) -> str:
        async with self.anonymous() as client:
            response = await client.post("/api/v1/session",
                                         json={"user": user, "pin": USERS[user][1]})
        assert response.status_code == 200, response.text
        token: str = response.json()["token"]
        return token

    async def client(self, user: str) -> httpx.AsyncClient:
        token = await self.login(user)
        return self.anonymous(headers={"Authorization": f"Bearer {token}"})

    def peak_memory(self) -> int:
        """The daemon's peak resident set (VmHWM), in bytes."""
        assert self.daemon.process is not None
        status = Path(f"/proc/{self.daemon.process.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM in /proc/PID/status")


@asynccontextmanager
async def daemon(tmp_path: Path, api_keys: str) -> AsyncIterator[Station]:
    """`forecourt run` with `api_keys` added to its [api] section, pumps simulated here."""
    async with run_simulator(sim_pumps()) as sim:
        assert sim.url is not None
        port = free_port()
        path = write_config(tmp_path, sim.url, port)
        text = path.read_text("utf-8")
        assert text.count("[api]\n") == 1
        path.write_text(text.replace("[api]\n", f"[api]\n{api_keys}", 1), "utf-8")
        running = Daemon(path, port)
        await running.start()
        try:
            yield Station(running, sim, port)
        finally:
            assert running.process is not None
            if running.process.returncode is None:
                os.kill(running.process.pid, signal.SIGTERM)
            assert await running.wait() == 0, running.log.read_text(errors="replace")[-2000:]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def station(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Station]:
    tmp_path = tmp_path_factory.mktemp("security")
    token_file = tmp_path / "metrics.token"
    token_file.write_text(METRICS_TOKEN + "\n")
    token_file.chmod(0o600)
    async with daemon(tmp_path, f'metrics_token_file = "{token_file}"\n') as running:
        yield running


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.json() == {"error": {"code": code, "message": response.json()["error"][
        "message"]}}, response.text
    assert response.json()["error"]["message"]


# ---------------------------------------------------------------------- oversized bodies


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes the client got to send before the answer came


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


async def post_big(station: Station, path: str, *, size: int, chunked: bool,
                   token: str | None = None) -> Answer:
    """POST `size` bytes to `path`: the first PROBE bytes, then nothing more until the daemon
    answers (a daemon that read the whole body before answering never would), then the rest,
    which the daemon must not hold either."""
    reader, writer = await asyncio.open_connection("127.0.0.1", station.port)
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{station.port}",
            "Content-Type: application/json"]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}")
    if token is not None:
        head.append(f"Authorization: Bearer {token}")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    answer = asyncio.ensure_future(read_answer(reader))
    piece = b" " * CHUNK  # JSON whitespace: the start of a body a parser must read on
    sent = 0

    async def send(upto: int) -> None:
        nonlocal sent
        while sent < upto:
            part = piece[:upto - sent]
            writer.write(f"{len(part):x}\r\n".encode() + part + b"\r\n" if chunked else part)
            await writer.drain()
            sent += len(part)

    try:
        with contextlib.suppress(ConnectionError):  # the daemon may close once it answered
            await send(PROBE)
        try:
            status, headers, body = await asyncio.wait_for(answer, 60)
        except TimeoutError:
            raise AssertionError(f"no answer to {path} while the body was still coming: the "
                                 f"daemon waits for all of it") from None
        before_answer = sent
        with contextlib.suppress(ConnectionError):  # the rest, however much it still takes
            await send(size)
            if chunked:
                writer.write(b"0\r\n\r\n")
                await writer.drain()
    finally:
        writer.close()
    return Answer(status, headers, body, before_answer)


async def test_oversized_bodies_are_refused_before_they_are_read(station: Station) -> None:
    boss = await station.login("boss")
    peak_before = station.peak_memory()
    answers = await asyncio.gather(
        post_big(station, "/api/v1/session", size=BIG, chunked=False),
        post_big(station, "/api/v1/session", size=BIG, chunked=True),
        post_big(station, "/api/v1/prices", size=BIG, chunked=True, token=boss))
    grown = station.peak_memory() - peak_before
    for answer in answers:
        assert answer.status == 413, answer
        assert answer.headers["content-type"] == "application/json", answer
        error = httpx.Response(413, content=answer.body).json()["error"]
        assert error["code"] == "body_too_large" and error["message"], answer
    # Three bodies of 32 MiB were sent: the daemon's peak memory did not grow by even one.
    assert grown < BIG, f"the daemon's peak memory grew by {grown / 2**20:.0f} MiB"

    # The manager's refused change is in the audit log like any other refusal.
    async with await station.client("boss") as client:
        entries = (await client.get("/api/v1/audit", params={"limit": 1000})).json()["entries"]
    refused = [e for e in entries if e["outcome"] == "body_too_large"]
    assert [e["action"] for e in refused] == ["prices.schedule"], entries
    assert refused[0]["actor"] == "boss"


async def test_a_body_just_over_the_limit_is_refused_and_one_under_it_read(
        station: Station) -> None:
    async with station.anonymous() as client:
        over = await client.post("/api/v1/session", content=b" " * (64 * 1024 + 1),
                                 headers={"Content-Type": "application/json"})
        assert_error(over, 413, "body_too_large")
        under = await client.post("/api/v1/session", content=b" " * (64 * 1024 - 64),
                                  headers={"Content-Type": "application/json"})
        assert_error(under, 422, "invalid_request")


async def test_a_websocket_message_over_the_limit_closes_the_socket(station: Station) -> None:
    token = await station.login("att")
    async with websockets.connect(f"{station.ws_url}?token={token}", open_timeout=5) as ws:
        await asyncio.wait_for(ws.recv(), 10)  # the snapshot
        await ws.send("x" * (64 * 1024 + 1))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


# ---------------------------------------------------------------------- integers and text


@pytest.mark.parametrize(("path", "params"), [
    ("/api/v1/sales", {"since_seq": str(INT64_OVER)}),
    ("/api/v1/audit", {"since_seq": str(INT64_OVER)}),
    ("/api/v1/sales", {"since_seq": str(10**30)}),
    ("/api/v1/sales", {"limit": str(INT64_OVER)}),
    (f"/api/v1/shifts/{INT64_OVER}", None),
])
async def test_integers_too_large_to_store_are_refused(station: Station, path: str,
                                                       params: dict[str, str] | None) -> None:
    async with await station.client("boss") as client:
        assert_error(await client.get(path, params=params), 422, "invalid_request")


@pytest.mark.parametrize("path", [f"/api/v1/nozzles/{INT64_OVER}/authorize",
                                  f"/api/v1/pumps/{INT64_OVER}/stop",
                                  f"/api/v1/nozzles/-{INT64_OVER + 1}/authorize"])
async def test_numbers_in_paths_too_large_to_store_are_refused(station: Station,
                                                               path: str) -> None:
    async with await station.client("boss") as client:
        assert_error(await client.post(path, json={}), 422, "invalid_request")


async def audit_entries(station: Station) -> list[dict[str, Any]]:
    async with await station.client("boss") as client:
        response = await client.get("/api/v1/audit", params={"limit": 1000})
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


def texts(value: Any) -> set[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set(value) | {t for v in value.values() for t in texts(v)}
    if isinstance(value, list):
        return {t for v in value for t in texts(v)}
    return set()


@pytest.mark.parametrize(("body", "shown"), [
    # A lone surrogate escape: valid JSON, but no UTF-8 text can hold it.
    (b'{"prices": {"\\udc00": "7.50"}}', "\\udc00"),
    (b'{"prices": {"92": "\\ud800\\ud800"}}', "\\ud800\\ud800"),
    # Bytes that are not UTF-8 at all.
    (b'{"prices": {"92": "\xff\xfe"}}', None),
    # Nesting deeper than a JSON parser recurses.
    (b"[" * 3000 + b"]" * 3000, None),
], ids=["surrogate key", "surrogate pair reversed", "not utf-8", "deep nesting"])
async def test_a_refused_request_is_audited_whatever_its_body_holds(
        station: Station, body: bytes, shown: str | None) -> None:
    before = len(await audit_entries(station))
    async with await station.client("boss") as client:
        response = await client.post("/api/v1/prices", content=body,
                                     headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    entries = (await audit_entries(station))[before:]
    mine = [e for e in entries if e["action"] == "prices.schedule"]
    assert len(mine) == 1, entries
    assert mine[0]["outcome"] == response.json()["error"]["code"]
    assert mine[0]["details"]["status"] == response.status_code
    if shown is not None:
        assert shown in texts(mine[0]["details"]["body"]), mine[0]


async def test_the_audit_chain_holds_with_all_that_in_it(station: Station) -> None:
    verify = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge.cli", "audit", "verify", "--config",
        str(station.daemon.config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await verify.communicate()
    assert verify.returncode == 0, out.decode(errors="replace")
    assert any(e["outcome"] == "body_too_large" for e in await audit_entries(station))


# ---------------------------------------------------------------------- Host and Origin


@pytest.mark.parametrize("host", ["rebind.example", "rebind.example:{port}", "127.0.0.1.nip.io",
                                  "localhost.rebind.example:{port}", ""])
async def test_a_request_for_another_host_is_refused(station: Station, host: str) -> None:
    # DNS rebinding: a page from rebind.example whose name now points at the station sends
    # its requests with its own name in Host. The login is not reached.
    headers = {"Host": host.format(port=station.port)}
    async with station.anonymous() as client:
        login = await client.post("/api/v1/session", headers=headers,
                                  json={"user": "boss", "pin": USERS["boss"][1]})
        assert_error(login, 421, "host_not_allowed")
        assert_error(await client.get("/", headers=headers), 421, "host_not_allowed")
        assert_error(await client.get("/api/v1/health", headers=headers), 421,
                     "host_not_allowed")


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST",
                                  "[::1]:{port}", "127.0.0.1"])
async def test_the_station_s_own_names_are_served(station: Station, host: str) -> None:
    async with station.anonymous() as client:
        response = await client.get("/api/v1/health",
                                    headers={"Host": host.format(port=station.port)})
    assert response.status_code == 200, response.text


async def test_a_websocket_from_another_origin_is_refused(station: Station) -> None:
    token = await station.login("att")
    url = f"{station.ws_url}?token={token}"
    for origin in ("http://rebind.example", f"http://rebind.example:{station.port}",
                   "null", f"http://127.0.0.1:{station.port + 1}"):
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(url, origin=origin,  # type: ignore[arg-type]
                                          open_timeout=5):
                pass
        assert refused.value.response.status_code == 403, origin
    # The console's own origin, and a client that sends none (not a browser), are served.
    for own in (f"http://127.0.0.1:{station.port}", None):
        async with websockets.connect(url, origin=own,  # type: ignore[arg-type]
                                      open_timeout=5) as ws:
            assert "forecourt.snapshot" in await asyncio.wait_for(ws.recv(), 10)


# ---------------------------------------------------------------------- WebSocket sessions


async def test_the_websocket_sends_nothing_after_logout(station: Station) -> None:
    token = await station.login("att")
    async with websockets.connect(f"{station.ws_url}?token={token}", open_timeout=5) as ws:
        await asyncio.wait_for(ws.recv(), 10)  # the snapshot
        async with station.anonymous() as client:
            bye = await client.delete("/api/v1/session",
                                      headers={"Authorization": f"Bearer {token}"})
        assert bye.status_code == 204
        # Something happens on the forecourt right after the logout.
        station.sim.lift(PUMP1, 1)
        after: list[str | bytes] = []
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                after.append(await asyncio.wait_for(ws.recv(), 10))
    station.sim.hang(PUMP1, 1)
    assert after == []
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_an_idle_websocket_is_closed_when_its_session_ends(station: Station) -> None:
    token = await station.login("att")
    async with websockets.connect(f"{station.ws_url}?token={token}", open_timeout=5) as ws:
        await asyncio.wait_for(ws.recv(), 10)  # the snapshot
        async with station.anonymous() as client:
            bye = await client.delete("/api/v1/session",
                                      headers={"Authorization": f"Bearer {token}"})
        assert bye.status_code == 204
        # Nothing happens on the forecourt: the socket is still closed.
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


# ---------------------------------------------------------------------- metrics


async def test_anonymous_metrics_are_refused(station: Station) -> None:
    async with station.anonymous() as client:
        response = await client.get("/metrics")
        assert_error(response, 401, "unauthenticated")
        assert "forecourt_sales_today" not in response.text
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
        assert_error(wrong, 401, "unauthenticated")


async def test_metrics_with_the_token_or_a_manager_session(station: Station) -> None:
    async with station.anonymous(headers={"Authorization": f"Bearer {METRICS_TOKEN}"}) as c:
        scraped = await c.get("/metrics")
    assert scraped.status_code == 200, scraped.text
    assert 'forecourt_sales_today_yuan{grade="92"}' in scraped.text
    async with await station.client("boss") as client:
        assert (await client.get("/metrics")).status_code == 200
    async with await station.client("att") as client:
        assert_error(await client.get("/metrics"), 403, "forbidden")


async def test_open_metrics_never_show_sales_to_an_anonymous_client(
        tmp_path: Path) -> None:
    async with daemon(tmp_path, "metrics_open = true\n") as running:
        async with running.anonymous() as client:
            response = await client.get("/metrics")
        assert response.status_code == 200, response.text
        assert "forecourt_pump_online" in response.text
        assert "forecourt_sales" not in response.text
        async with await running.client("boss") as client:
            assert "forecourt_sales_today" in (await client.get("/metrics")).text
        # Open to anybody: an attendant's session too, still without the sales.
        async with await running.client("att") as client:
            response = await client.get("/metrics")
        assert response.status_code == 200, response.text
        assert "forecourt_sales" not in response.text


async def test_the_daemon_is_still_serving(station: Station) -> None:
    async with await station.client("att") as client:
        response = await client.get("/api/v1/forecourt")
        assert response.status_code == 200, response.text
    await wait_until(lambda: station.daemon.process is not None
                     and station.daemon.process.returncode is None, what="the daemon alive")
