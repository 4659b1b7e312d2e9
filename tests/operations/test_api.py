"""Prices, users and the daily report through the real daemon and the pump simulator.

Tests run in file order on one station: the sale made first is the one the report must show.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.api.conftest import PUMP1, Api, assert_error
from tests.e2e.conftest import wait_pump_state, wait_sales
from tests.helpers import wait_until

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def make_sale(api: Api, client: httpx.AsyncClient, count: int) -> dict[str, Any]:
    """Two litres of 92 on nozzle 1, the way a customer buys them."""
    assert api.sim is not None
    await wait_pump_state(client, 1, "idle")
    response = await client.post("/api/v1/nozzles/1/authorize",
                                 json={"preset": {"volume": "2.00"}})
    assert response.status_code == 202, response.text
    api.sim.lift(PUMP1, 1)
    await wait_until(lambda: len(api.sim.fills()) >= count if api.sim else False, timeout=20,
                     what="the fill")
    api.sim.hang(PUMP1, 1)
    found: dict[str, Any] = (await wait_sales(client, count))[-1]
    return found


# ------------------------------------------------------------------- daily report


async def test_the_daily_report_shows_the_sales_made_at_the_pumps(api: Api) -> None:
    att = await api.client("att")
    cash = await api.client("cash")
    first = await make_sale(api, att, 1)
    second = await make_sale(api, att, 2)
    paid = await cash.post(f"/api/v1/sales/{first['id']}/payments",
                           json={"method": "wechat", "amount": first["amount"]})
    assert paid.status_code == 201, paid.text
    paid = await cash.post(f"/api/v1/sales/{second['id']}/payments",
                           json={"method": "cash", "amount": "5.00"})
    assert paid.status_code == 201, paid.text

    fin = await api.client("fin")
    response = await fin.get("/api/v1/reports/daily")
    assert response.status_code == 200, response.text
    report = response.json()
    today = datetime.fromisoformat(second["ended_at"]).date().isoformat()
    assert report["date"] == today
    volume = Decimal(first["volume"]) + Decimal(second["volume"])
    amount = Decimal(first["amount"]) + Decimal(second["amount"])
    assert report["totals"]["count"] == 2
    assert Decimal(report["totals"]["volume"]) == volume
    assert Decimal(report["totals"]["amount"]) == amount
    assert Decimal(report["totals"]["paid"]) == Decimal(first["amount"]) + Decimal("5.00")
    grades = {g["grade"]: g for g in report["by_grade"]}
    assert grades["92"]["name"] == "92号汽油" and grades["92"]["count"] == 2
    # The same day's figures in /metrics, for the station's dashboards.
    metrics = (await fin.get("/metrics")).text
    assert 'forecourt_sales_today{grade="92"} 2.0' in metrics, metrics
    assert f'forecourt_sales_today_yuan{{grade="92"}} {float(amount)}' in metrics, metrics
    assert 'forecourt_sales_today{grade="95"} 0.0' in metrics
    assert Decimal(grades["92"]["amount"]) == amount
    assert grades["95"]["count"] == 0
    hour = datetime.fromisoformat(second["ended_at"]).hour
    assert sum(h["count"] for h in report["by_hour"]) == 2
    assert report["by_hour"][hour]["count"] >= 1
    methods = {m["method"]: m for m in report["by_method"]}
    assert Decimal(methods["wechat"]["amount"]) == Decimal(first["amount"])
    assert Decimal(methods["cash"]["amount"]) == Decimal("5.00")

    response = await fin.get("/api/v1/reports/daily.csv", params={"date": today})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text.removeprefix("\ufeff"))))
    assert [r["sale_id"] for r in rows] == [first["id"], second["id"]]
    assert sum(Decimal(r["amount"]) for r in rows) == amount
    assert sum(Decimal(r["volume"]) for r in rows) == volume
    assert sum(Decimal(r["wechat"]) + Decimal(r["cash"]) for r in rows) == \
        Decimal(report["totals"]["paid"])


async def test_another_day_has_no_sales_and_a_bad_date_is_refused(api: Api) -> None:
    fin = await api.client("fin")
    response = await fin.get("/api/v1/reports/daily", params={"date": "2020-01-01"})
    assert response.status_code == 200, response.text
    assert response.json()["totals"]["count"] == 0
    response = await fin.get("/api/v1/reports/daily.csv", params={"date": "2020-01-01"})
    assert response.text.removeprefix("\ufeff").strip().count("\n") == 0  # the header alone
    assert_error(await fin.get("/api/v1/reports/daily", params={"date": "2020-13-45"}), 422,
                 "invalid_request")
    for far in ("9999-12-31", "0001-01-01"):
        assert_error(await fin.get("/api/v1/reports/daily", params={"date": far}), 422,
                     "invalid_date")
        assert_error(await fin.get("/api/v1/reports/daily.csv", params={"date": far}), 422,
                     "invalid_date")
    assert_error(await api.anonymous().get("/api/v1/reports/daily"), 401, "unauthenticated")


# ------------------------------------------------------------------- prices


async def test_prices_show_each_grade_with_its_name(api: Api) -> None:
    response = await (await api.client("att")).get("/api/v1/prices")
    assert response.status_code == 200, response.text
    body = response.json()
    grades = {g["grade"]: g for g in body["grades"]}
    assert grades["92"] == {"grade": "92", "name": "92号汽油", "price": "7.50",
                            "band_percent": "15"}
    assert body["price_set_id"] == "config"


@pytest.mark.parametrize("user", ["att", "cash", "fin"])
async def test_only_a_manager_or_admin_may_change_prices(api: Api, user: str) -> None:
    client = await api.client(user)
    assert_error(await client.post("/api/v1/prices", json={"prices": {"95": "8.10"}}), 403,
                 "forbidden")


@pytest.mark.parametrize("prices", [{"95": 8.1}, {"95": 8}, {"95": "8.1234"}, {"95": "0"},
                                    {"95": "-1.00"}, {"95": "abc"}, {}])
async def test_a_price_is_a_positive_decimal_string(api: Api, prices: dict[str, Any]) -> None:
    boss = await api.client("boss")
    assert_error(await boss.post("/api/v1/prices", json={"prices": prices}), 422,
                 "invalid_request")


async def test_an_unknown_grade_or_a_past_time_is_refused_with_its_code(api: Api) -> None:
    boss = await api.client("boss")
    assert_error(await boss.post("/api/v1/prices", json={"prices": {"98": "9.00"}}), 422,
                 "unknown_grade")
    past = (api.station.now() - timedelta(hours=1)).isoformat()
    assert_error(await boss.post("/api/v1/prices",
                                 json={"prices": {"95": "8.10"}, "effective_at": past}),
                 422, "effective_at_in_past")
    assert_error(await boss.post("/api/v1/prices", json={"prices": {"95": "8.10"},
                                                          "effective_at": "2030-01-01T00:00:00"}),
                 422, "invalid_request")  # no offset
    assert_error(await boss.post("/api/v1/prices",
                                 json={"prices": {"95": "8.10"},
                                       "effective_at": "9999-12-31T23:59:59-23:59"}),
                 422, "effective_at_too_far")
    listed = (await boss.get("/api/v1/prices")).json()
    assert listed["schedules"] == []


async def test_a_scheduled_change_waits_for_its_time(api: Api) -> None:
    boss = await api.client("boss")
    at = (api.station.now() + timedelta(days=30)).replace(microsecond=0)
    response = await boss.post("/api/v1/prices",
                               json={"prices": {"0": "7.20"}, "effective_at": at.isoformat()})
    assert response.status_code == 201, response.text
    schedule = response.json()
    assert schedule["state"] == "pending" and schedule["applied_at"] is None
    assert schedule["prices"] == {"0": "7.20"}
    assert schedule["source"] == "local:boss"
    assert schedule["price_set_id"].startswith("LOCAL-") and \
        schedule["price_set_id"].endswith("-boss")
    assert datetime.fromisoformat(schedule["effective_at"]) == at
    listed = (await boss.get("/api/v1/prices")).json()
    assert [s["price_set_id"] for s in listed["schedules"]] == [schedule["price_set_id"]]
    assert {g["grade"]: g["price"] for g in listed["grades"]}["0"] == "7.16"


async def test_an_emergency_change_is_applied_and_programmed_into_the_pump(api: Api) -> None:
    station = api.station
    last = await station.ledger.read(station.store.last_seq)
    root = await api.client("root")
    response = await root.post("/api/v1/prices",
                               json={"prices": {"95": "8.13"}, "emergency": True})
    assert response.status_code == 201, response.text
    price_set_id = response.json()["price_set_id"]

    async def applied() -> set[int] | None:
        found = [e for e in await station.ledger.read(station.store.events_since, last)
                 if e.type == "price.applied" and e.data.get("price_set_id") == price_set_id]
        # Every pump is programmed with the new set, whichever grades it sells.
        pumps = {e.data["pump"] for e in found}
        return pumps if pumps == {1, 2} else None

    pumps: set[int] = await wait_until(applied, timeout=15, what="price.applied from both pumps")
    assert pumps == {1, 2}
    listed = (await root.get("/api/v1/prices")).json()
    assert listed["price_set_id"] == price_set_id
    assert {g["grade"]: g["price"] for g in listed["grades"]}["95"] == "8.13"
    mine = [s for s in listed["schedules"] if s["price_set_id"] == price_set_id]
    assert mine[0]["state"] == "applied"
    assert station.forecourt.prices.prices["95"] == Decimal("8.13")
    audit = await station.ledger.read(station.store.audit_entries, 0, 1000)
    assert any(e.actor == "root" and e.outcome == "ok" and "price" in e.action for e in audit)


# ------------------------------------------------------------------- users


async def test_users_are_listed_without_their_pins(api: Api) -> None:
    for user in ("att", "cash", "fin"):
        assert_error(await (await api.client(user)).get("/api/v1/users"), 403, "forbidden")
    response = await (await api.client("boss")).get("/api/v1/users")
    assert response.status_code == 200, response.text
    users = {u["name"]: u for u in response.json()["users"]}
    assert {"att", "cash", "boss", "fin", "root"} <= set(users)
    assert users["root"]["role"] == "admin"
    assert set(users["att"]) == {"name", "role", "created_at", "updated_at", "disabled_at",
                                 "waiting_addresses", "locked_until"}
    assert "scrypt" not in response.text


async def test_a_manager_creates_and_changes_users_but_no_admin(api: Api) -> None:
    boss = await api.client("boss")
    response = await boss.post("/api/v1/users",
                               json={"name": "wang", "role": "cashier", "pin": "246810"})
    assert response.status_code == 201, response.text
    assert response.json()["role"] == "cashier"
    assert (await api.anonymous().post("/api/v1/session",
                                       json={"user": "wang", "pin": "246810"})).status_code == 200
    response = await boss.post("/api/v1/users",
                               json={"name": "wang", "role": "attendant", "pin": "135790"})
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "attendant"

    assert_error(await boss.post("/api/v1/users",
                                 json={"name": "boss2", "role": "admin", "pin": "1234"}),
                 403, "forbidden")
    assert_error(await boss.post("/api/v1/users",
                                 json={"name": "root", "role": "manager", "pin": "1234"}),
                 403, "forbidden")
    assert_error(await boss.post("/api/v1/users",
                                 json={"name": "x", "role": "cashier", "pin": "12"}),
                 422, "invalid_request")
    assert_error(await boss.post("/api/v1/users",
                                 json={"name": " x", "role": "cashier", "pin": "1234"}),
                 422, "invalid_user")
    assert_error(await (await api.client("cash")).post(
        "/api/v1/users", json={"name": "y", "role": "cashier", "pin": "1234"}), 403, "forbidden")
    names = {u["name"] for u in (await boss.get("/api/v1/users")).json()["users"]}
    assert "boss2" not in names and "x" not in names and "y" not in names

    response = await (await api.client("root")).post(
        "/api/v1/users", json={"name": "root2", "role": "admin", "pin": "97531"})
    assert response.status_code == 201, response.text
    audit = await api.station.ledger.read(api.station.store.audit_entries, 0, 1000)
    refused = [e for e in audit if e.actor == "boss" and e.outcome == "forbidden"]
    assert refused and all("1234" not in str(e.details) for e in refused)
