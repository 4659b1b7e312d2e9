"""Logins against the real daemon from several addresses (127.0.0.x): throttling per address
and name, one answer for every kind of wrong, unlocks (API and command line), sessions that
end when their user changes, and user names (docs/security.md, "Logins, sessions and users").

Each test keeps to addresses and users of its own: the throttle's counters live as long as the
module's station. Addresses that never logged in share a budget of PIN checks (a few a
second): where that budget is not what a test is about, `login` tries again after a
`503 login_busy`, as a console would.
"""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge.cli import main as cli
from tests.api.conftest import PINS, Api, assert_error
from tests.helpers import StationSpec, wait_until

pytestmark = pytest.mark.asyncio(loop_scope="module")


def at(api: Api, address: str) -> httpx.AsyncClient:
    """A client whose connections come from `address` (any of 127.0.0.0/8 is this machine)."""
    client = httpx.AsyncClient(base_url=api.base_url, timeout=15,
                               transport=httpx.AsyncHTTPTransport(local_address=address))
    api._clients.append(client)
    return client


async def login(client: httpx.AsyncClient, user: str, pin: str) -> httpx.Response:
    """The first answer that is not 503 login_busy (each of those is held a second)."""
    for _ in range(60):
        response = await client.post("/api/v1/session", json={"user": user, "pin": pin})
        if response.status_code != 503:
            return response
        assert_error(response, 503, "login_busy")
    raise AssertionError("login_busy for a minute")


def answer(response: httpx.Response) -> tuple[int, Any, str | None]:
    """Status, body (the seconds in a message left out: two answers a moment apart may differ
    by one) and Retry-After."""
    body = response.json()
    if "error" in body:
        body["error"]["message"] = re.sub(r"[0-9]+ s\b", "N s", body["error"]["message"])
    return response.status_code, body, response.headers.get("Retry-After")


def config_file(api: Api, tmp_path: Path) -> Path:
    """A config naming the running station's database, for the command line."""
    path = tmp_path / "station.toml"
    spec = StationSpec(port_url="socket://127.0.0.1:1", db=api.station.config.storage.path,
                       api_port=1)
    path.write_text(spec.toml(), "utf-8")
    return path


async def manager(api: Api) -> httpx.AsyncClient:
    return await api.client("boss")


# ----------------------------------------------------------------- throttling


async def test_an_unknown_name_and_a_known_one_get_the_same_answers(api: Api) -> None:
    known_at, unknown_at = at(api, "127.0.0.11"), at(api, "127.0.0.12")
    known, unknown = [], []
    for _ in range(7):  # side by side, so that both see the same moments
        mine, theirs = await asyncio.gather(login(known_at, "fin", "0000"),
                                            login(unknown_at, "nobody", "0000"))
        known.append(answer(mine))
        unknown.append(answer(theirs))
    assert [status for status, _, _ in known] == [401] * 5 + [429] * 2
    assert [(s, b) for s, b, _ in known] == [(s, b) for s, b, _ in unknown]
    assert known[5][1]["error"]["code"] == "login_throttled"
    # Retry-After: whole seconds (30 for the first wait), the same for both.
    for (_, _, mine_after), (_, _, theirs_after) in zip(known[5:], unknown[5:], strict=True):
        assert mine_after is not None and theirs_after is not None
        assert 25 <= int(mine_after) <= 30 and abs(int(mine_after) - int(theirs_after)) <= 1


async def test_one_stranger_cannot_keep_the_manager_out(api: Api) -> None:
    stranger = at(api, "127.0.0.21")
    statuses = [(await login(stranger, "boss", "0000")).status_code for _ in range(7)]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
    # The manager, at a console that never logged in before, gets in at once.
    office = await login(at(api, "127.0.0.22"), "boss", PINS["boss"])
    assert office.status_code == 200, office.text
    # The stranger still waits, with the right PIN too.
    assert_error(await login(stranger, "boss", PINS["boss"]), 429, "login_throttled")


async def test_a_flood_of_names_from_one_address_is_cut_short_and_not_written(
        api: Api) -> None:
    boss = await manager(api)
    audit = await boss.get("/api/v1/audit", params={"since_seq": 0, "limit": 1000})
    mark = audit.json()["entries"][-1]["seq"]
    flood = at(api, "127.0.0.31")
    # Someone who logged in once from there (so that the strangers' budget is not in the way:
    # test_login_desk.py checks that one), then tries every name.
    assert (await login(flood, "att", PINS["att"])).status_code == 200
    statuses: list[int] = []
    for wave in range(6):
        answers = await asyncio.gather(*(
            flood.post("/api/v1/session", json={"user": f"guess{wave}-{n}", "pin": "123456"})
            for n in range(8)))
        statuses += [a.status_code for a in answers]
    assert set(statuses) <= {401, 429, 503}, statuses
    # No more PINs checked than the address may try (pin_address_attempts, 20), then it waits.
    assert statuses.count(401) <= 20 and statuses.count(429) >= 1, statuses
    assert_error(await login(flood, "guess-last", "123456"), 429, "login_throttled")
    after = await boss.get("/api/v1/audit", params={"since_seq": mark, "limit": 1000})
    assert not any(e["actor"].startswith("guess") for e in after.json()["entries"])
    metrics = (await boss.get("/metrics")).text
    assert 'forecourt_login_failures_total{reason="unknown_user"}' in metrics
    # Another address is not concerned.
    assert (await login(at(api, "127.0.0.32"), "att", PINS["att"])).status_code == 200


# ----------------------------------------------------------------- unlocks


async def test_a_manager_lifts_the_throttling_through_the_api(api: Api) -> None:
    console = at(api, "127.0.0.41")
    for _ in range(6):
        await login(console, "cash", "0000")
    assert_error(await login(console, "cash", PINS["cash"]), 429, "login_throttled")
    attendant = await api.client("att")
    assert_error(await attendant.post("/api/v1/users/cash/unlock"), 403, "forbidden")
    boss = await manager(api)
    unlocked = await boss.post("/api/v1/users/cash/unlock")
    assert unlocked.status_code == 200, unlocked.text
    assert unlocked.json()["cleared_addresses"] == 1
    assert (await login(console, "cash", PINS["cash"])).status_code == 200
    assert_error(await boss.post("/api/v1/users/nobody/unlock"), 404, "unknown_user")
    entries = (await boss.get("/api/v1/audit", params={"limit": 1000})).json()["entries"]
    assert ("boss", "user.unlock", "cash", "ok") in [
        (e["actor"], e["action"], e["target"], e["outcome"]) for e in entries]


async def test_an_unlock_from_the_command_line_reaches_the_running_daemon(
        api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    console = at(api, "127.0.0.51")
    for _ in range(6):
        await login(console, "lock", "0000")
    assert_error(await login(console, "lock", PINS["lock"]), 429, "login_throttled")
    assert await asyncio.to_thread(
        cli, ["user", "unlock", "lock", "--config", str(config_file(api, tmp_path))]) == 0
    assert "lifted" in capsys.readouterr().out

    async def back_in() -> bool:
        return (await login(console, "lock", PINS["lock"])).status_code == 200
    await wait_until(back_in, timeout=10, interval=0.3, what="the unlock to reach the daemon")


# ----------------------------------------------------------------- sessions end with changes


async def test_a_new_role_or_pin_through_the_api_ends_the_sessions(api: Api) -> None:
    boss = await manager(api)
    created = await boss.post("/api/v1/users", json={"name": "zhang", "role": "attendant",
                                                     "pin": "8080"})
    assert created.status_code == 201, created.text
    token = (await login(api.anonymous(), "zhang", "8080")).json()["token"]
    zhang = api.anonymous()
    zhang.headers["Authorization"] = f"Bearer {token}"
    assert (await zhang.get("/api/v1/forecourt")).status_code == 200
    changed = await boss.post("/api/v1/users", json={"name": "zhang", "role": "cashier",
                                                     "pin": "8080"})
    assert changed.status_code == 200, changed.text
    assert_error(await zhang.get("/api/v1/forecourt"), 401, "session_expired")
    again = await login(api.anonymous(), "zhang", "8080")
    assert again.status_code == 200 and again.json()["role"] == "cashier"


async def test_a_disabled_user_is_logged_out_and_refused_like_a_wrong_pin(api: Api) -> None:
    boss = await manager(api)
    assert (await boss.post("/api/v1/users", json={"name": "zhao", "role": "attendant",
                                                   "pin": "7070"})).status_code == 201
    zhao = api.anonymous()
    zhao.headers["Authorization"] = (
        f"Bearer {(await login(api.anonymous(), 'zhao', '7070')).json()['token']}")
    disabled = await boss.post("/api/v1/users/zhao/disable")
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["disabled_at"] is not None
    assert_error(await zhao.get("/api/v1/forecourt"), 401, "session_expired")
    refused = await login(at(api, "127.0.0.61"), "zhao", "7070")
    wrong = await login(at(api, "127.0.0.62"), "att", "0000")
    assert_error(refused, 401, "bad_credentials")
    assert refused.json() == wrong.json()
    enabled = await boss.post("/api/v1/users/zhao/enable")
    assert enabled.status_code == 200 and enabled.json()["disabled_at"] is None
    assert (await login(at(api, "127.0.0.63"), "zhao", "7070")).status_code == 200
    listed = {u["name"]: u for u in (await boss.get("/api/v1/users")).json()["users"]}
    assert listed["zhao"]["disabled_at"] is None and "updated_at" in listed["zhao"]
    assert_error(await boss.post("/api/v1/users/boss/disable"), 409, "cannot_disable_self")
    assert_error(await boss.post("/api/v1/users/root/disable"), 403, "forbidden")
    assert_error(await boss.post("/api/v1/users/ghost/disable"), 404, "unknown_user")


async def test_changes_from_the_command_line_end_sessions_of_the_running_daemon(
        api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    boss = await manager(api)
    for name in ("qian", "sun"):
        assert (await boss.post("/api/v1/users", json={"name": name, "role": "attendant",
                                                       "pin": "6060"})).status_code == 201
    clients = {}
    for name in ("qian", "sun"):
        client = api.anonymous()
        token = (await login(api.anonymous(), name, "6060")).json()["token"]
        client.headers["Authorization"] = f"Bearer {token}"
        assert (await client.get("/api/v1/forecourt")).status_code == 200
        clients[name] = client
    config = str(config_file(api, tmp_path))
    monkeypatch.setattr("sys.stdin", io.StringIO("6161\n"))
    assert await asyncio.to_thread(
        cli, ["user", "add", "qian", "--role", "attendant", "--pin-stdin", "--config", config]
    ) == 0
    assert await asyncio.to_thread(cli, ["user", "disable", "sun", "--config", config]) == 0

    async def ended(name: str) -> bool:
        return (await clients[name].get("/api/v1/forecourt")).status_code == 401
    await wait_until(lambda: ended("qian"), timeout=10, what="qian's session to end")
    await wait_until(lambda: ended("sun"), timeout=10, what="sun's session to end")
    # The others' sessions go on.
    assert (await boss.get("/api/v1/forecourt")).status_code == 200
    assert (await login(at(api, "127.0.0.71"), "qian", "6161")).status_code == 200
    entries = (await boss.get("/api/v1/audit", params={"limit": 1000})).json()["entries"]
    cli_entries = [(e["action"], e["target"]) for e in entries if e["actor"] == "cli"]
    assert ("user.save", "qian") in cli_entries and ("user.disable", "sun") in cli_entries


# ----------------------------------------------------------------- names


@pytest.mark.parametrize(("name", "status", "code"), [
    ("r\u043eot", 422, "invalid_user"),  # a Cyrillic о among Latin letters
    ("Root", 409, "user_name_confusable"),  # beside the admin "root"
    ("李a", 422, "invalid_user"),
], ids=["cyrillic-o", "case", "han-latin"])
async def test_lookalike_and_mixed_names_are_refused(api: Api, name: str, status: int,
                                                     code: str) -> None:
    boss = await manager(api)
    response = await boss.post("/api/v1/users", json={"name": name, "role": "attendant",
                                                      "pin": "5050"})
    assert_error(response, status, code)
    names = [u["name"] for u in (await boss.get("/api/v1/users")).json()["users"]]
    assert name not in names


async def test_a_chinese_name_is_welcome(api: Api) -> None:
    boss = await manager(api)
    created = await boss.post("/api/v1/users", json={"name": "王小明", "role": "cashier",
                                                     "pin": "4040"})
    assert created.status_code == 201, created.text
    assert (await login(api.anonymous(), "王小明", "4040")).status_code == 200
