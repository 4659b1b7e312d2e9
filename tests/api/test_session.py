"""Sessions (CONTRACT section 3): login, wrong PINs, lockout, logout, and what needs a login."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.api.conftest import PINS, ROLE_USERS, Api, assert_error, assert_forecourt_untouched

pytestmark = pytest.mark.asyncio(loop_scope="module")

SHANGHAI = timedelta(hours=8)
SESSION_TTL = timedelta(hours=8)  # the default [api] session_ttl_minutes

#: Everything behind a login: (method, path, JSON body).
PROTECTED: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/api/v1/forecourt", None),
    ("POST", "/api/v1/nozzles/1/authorize", {}),
    ("POST", "/api/v1/nozzles/1/authorize", {"preset": {"volume": "2.00"}}),
    ("POST", "/api/v1/pumps/1/stop", None),
    ("GET", "/api/v1/sales", None),
    ("GET", "/api/v1/sales/01HZZZZZZZZZZZZZZZZZZZZZZZ", None),
    ("POST", "/api/v1/sales/01HZZZZZZZZZZZZZZZZZZZZZZZ/payments",
     {"method": "cash", "amount": "1.00"}),
    ("DELETE", "/api/v1/session", None),
]
PROTECTED_IDS = [f"{m} {p}" + (" preset" if b else "") for m, p, b in PROTECTED]


@pytest.mark.parametrize(("role", "user"), sorted(ROLE_USERS.items()))
async def test_login_returns_token_role_and_expiry_in_station_time(
        api: Api, role: str, user: str) -> None:
    before = datetime.now(UTC)
    response = await api.anonymous().post("/api/v1/session",
                                          json={"user": user, "pin": PINS[user]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"token", "role", "expires_at"}
    assert body["role"] == role
    assert isinstance(body["token"], str) and len(body["token"]) >= 32
    assert body["expires_at"].endswith("+08:00"), body["expires_at"]
    expires = datetime.fromisoformat(body["expires_at"])
    assert expires.utcoffset() == SHANGHAI
    assert before + SESSION_TTL - timedelta(seconds=5) <= expires
    assert expires <= datetime.now(UTC) + SESSION_TTL + timedelta(seconds=5)


async def test_two_logins_get_two_tokens(api: Api) -> None:
    assert await api.login("att") != await api.login("att")


async def test_wrong_pin_and_unknown_user_are_refused_alike(api: Api) -> None:
    client = api.anonymous()
    wrong = await client.post("/api/v1/session", json={"user": "att", "pin": "9999"})
    assert_error(wrong, 401, "bad_credentials")
    unknown = await client.post("/api/v1/session", json={"user": "nobody", "pin": "1111"})
    assert_error(unknown, 401, "bad_credentials")
    # Same answer for both: the API does not tell which user names exist.
    assert wrong.json() == unknown.json()
    # One wrong PIN does not stop the right one.
    assert (await client.post("/api/v1/session",
                              json={"user": "att", "pin": PINS["att"]})).status_code == 200


@pytest.mark.parametrize("body", [
    {"user": "att"},
    {"pin": "1111"},
    {"user": "att", "pin": "1111", "role": "admin"},
    {"user": "", "pin": "1111"},
    {"user": "att", "pin": 1111},
    [],
], ids=["no pin", "no user", "extra key", "empty user", "pin as number", "not an object"])
async def test_malformed_login_is_422(api: Api, body: Any) -> None:
    response = await api.anonymous().post("/api/v1/session", json=body)
    assert_error(response, 422, "invalid_request")


async def test_five_wrong_pins_make_this_console_wait_even_with_the_right_pin(
        api: Api) -> None:
    client = api.anonymous()
    for _ in range(5):
        response = await client.post("/api/v1/session", json={"user": "lock", "pin": "0000"})
        assert_error(response, 401, "bad_credentials")
    sixth = await client.post("/api/v1/session", json={"user": "lock", "pin": "0000"})
    assert_error(sixth, 429, "login_throttled")
    assert int(sixth.headers["Retry-After"]) >= 1
    right = await client.post("/api/v1/session", json={"user": "lock", "pin": PINS["lock"]})
    assert_error(right, 429, "login_throttled")
    # Nobody else waits (tests/api/test_logins.py: nor does another console).
    other = await client.post("/api/v1/session", json={"user": "att", "pin": PINS["att"]})
    assert other.status_code == 200, other.text


async def test_logout_makes_the_token_useless(api: Api) -> None:
    client = await api.client("att", fresh=True)
    keeper = await api.client("att", fresh=True)  # another session of the same user
    assert (await client.get("/api/v1/forecourt")).status_code == 200
    response = await client.delete("/api/v1/session")
    assert response.status_code == 204, response.text
    assert_error(await client.get("/api/v1/forecourt"), 401)
    assert_error(await client.post("/api/v1/nozzles/1/authorize", json={}), 401)
    assert_error(await client.delete("/api/v1/session"), 401)
    # Only that session ended.
    assert (await keeper.get("/api/v1/forecourt")).status_code == 200
    await assert_forecourt_untouched(api, keeper)


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED, ids=PROTECTED_IDS)
async def test_no_token_is_401_with_a_bearer_challenge(
        api: Api, method: str, path: str, body: dict[str, Any] | None) -> None:
    response = await api.anonymous().request(method, path, json=body)
    assert_error(response, 401, "unauthenticated")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    await assert_forecourt_untouched(api, await api.client("boss"))


@pytest.mark.parametrize("authorization", [
    "Bearer not-a-token",
    "Bearer",
    "Basic YXR0OjExMTE=",
    "not-a-token",
], ids=["garbage", "empty bearer", "basic", "no scheme"])
@pytest.mark.parametrize(("method", "path", "body"), PROTECTED, ids=PROTECTED_IDS)
async def test_a_bad_token_is_401(api: Api, authorization: str, method: str, path: str,
                                  body: dict[str, Any] | None) -> None:
    client = api.anonymous()
    response = await client.request(method, path, json=body,
                                    headers={"Authorization": authorization})
    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_a_token_in_the_query_string_is_not_a_login_for_http(api: Api) -> None:
    token = await api.login("att")
    response = await api.anonymous().get("/api/v1/forecourt", params={"token": token})
    assert_error(response, 401, "unauthenticated")


@pytest.mark.parametrize("path", ["/api/v1/health", "/"])
async def test_public_endpoints_need_no_login(api: Api, path: str) -> None:
    response = await api.anonymous().get(path)
    assert response.status_code == 200, response.text


async def test_metrics_need_a_token_or_a_session_by_default(api: Api) -> None:
    # [api] metrics_token_file or metrics_open opens them to a scraper (tests/security).
    assert_error(await api.anonymous().get("/metrics"), 401, "unauthenticated")
