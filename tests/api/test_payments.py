"""Payments on real sales (CONTRACT section 3): partial, split across methods, over, refused.

The sales are made the way a customer makes them: an attendant authorizes nozzle 1 for 2 litres,
the simulated customer lifts the nozzle, the pump stops at the preset, the nozzle goes back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.api.conftest import PUMP1, Api, assert_error
from tests.e2e.conftest import wait_pump_state, wait_sales
from tests.helpers import wait_until

pytestmark = pytest.mark.asyncio(loop_scope="module")

SALE_KEYS = {"id", "seq", "nozzle", "grade", "volume", "amount", "price", "started_at",
             "ended_at", "order_id", "paid", "payments"}  # CONTRACT section 3; more may follow


async def make_sale(api: Api, client: httpx.AsyncClient, count: int) -> dict[str, Any]:
    assert api.sim is not None
    await wait_pump_state(client, 1, "idle")
    response = await client.post("/api/v1/nozzles/1/authorize",
                                 json={"preset": {"volume": "2.00"}})
    assert response.status_code == 202, response.text
    api.sim.lift(PUMP1, 1)
    await wait_until(lambda: len(api.sim.fills()) >= count if api.sim else False, timeout=20,
                     what="the fill")
    api.sim.hang(PUMP1, 1)
    found = await wait_sales(client, count)
    sale: dict[str, Any] = found[-1]
    assert sale["authorization_id"] == response.json()["authorization_id"]
    return sale


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def two_sales(station_api: Api) -> AsyncIterator[list[dict[str, Any]]]:
    """Two unpaid sales of 2.00 L of 92 at 7.50: 15.00 each."""
    client = await station_api.client("att")
    first = await make_sale(station_api, client, 1)
    second = await make_sale(station_api, client, 2)
    await station_api.aclose()
    yield [first, second]


async def unpaid_ids(client: httpx.AsyncClient) -> list[str]:
    response = await client.get("/api/v1/sales", params={"unpaid": "true"})
    assert response.status_code == 200, response.text
    return [s["id"] for s in response.json()["sales"]]


async def test_a_new_sale_is_unpaid_and_shown_as_the_contract_says(
        api: Api, two_sales: list[dict[str, Any]]) -> None:
    sale = two_sales[0]
    assert set(sale) >= SALE_KEYS
    assert sale["nozzle"] == 1 and sale["grade"] == "92"
    assert (sale["volume"], sale["price"], sale["amount"]) == ("2.00", "7.50", "15.00")
    assert sale["paid"] is False and sale["payments"] == [] and sale["order_id"] is None
    assert isinstance(sale["seq"], int) and sale["seq"] >= 1
    for key in ("started_at", "ended_at"):
        assert sale[key].endswith("+08:00"), sale[key]
    assert datetime.fromisoformat(sale["started_at"]) <= datetime.fromisoformat(sale["ended_at"])
    client = await api.client("fin")
    one = await client.get(f"/api/v1/sales/{sale['id']}")
    assert one.status_code == 200, one.text
    assert one.json()["id"] == sale["id"] and one.json()["seq"] == sale["seq"]


async def test_sales_come_in_seq_order_from_since_seq(
        api: Api, two_sales: list[dict[str, Any]]) -> None:
    first, second = two_sales
    assert first["seq"] < second["seq"]
    client = await api.client("fin")

    async def ids(**params: Any) -> list[str]:
        response = await client.get("/api/v1/sales", params=params)
        assert response.status_code == 200, response.text
        return [s["id"] for s in response.json()["sales"]]

    assert await ids() == [first["id"], second["id"]]
    assert await ids(since_seq=first["seq"]) == [second["id"]]
    assert await ids(since_seq=first["seq"] - 1) == [first["id"], second["id"]]
    assert await ids(since_seq=second["seq"]) == []
    assert await ids(limit=1) == [first["id"]]
    assert await ids(since_seq=first["seq"], limit=1) == [second["id"]]


async def test_partial_then_rest_pays_the_sale(api: Api, two_sales: list[dict[str, Any]]) -> None:
    sale_id = two_sales[0]["id"]
    path = f"/api/v1/sales/{sale_id}/payments"
    cashier = await api.client("cash")
    assert sale_id in await unpaid_ids(cashier)

    # An attendant may not take money; more than is due is refused. Neither leaves a trace.
    refused = await (await api.client("att")).post(path, json={"method": "cash",
                                                                "amount": "5.00"})
    assert_error(refused, 403, "forbidden")
    over = await cashier.post(path, json={"method": "cash", "amount": "15.01"})
    assert_error(over, 409, "overpayment")
    untouched = (await cashier.get(f"/api/v1/sales/{sale_id}")).json()
    assert untouched["payments"] == [] and untouched["paid"] is False

    partial = await cashier.post(path, json={"method": "cash", "amount": "10.00"})
    assert partial.status_code == 201, partial.text
    body = partial.json()
    assert body["id"] == sale_id and body["paid"] is False
    (payment,) = body["payments"]
    assert (payment["method"], payment["amount"], payment["user"]) == ("cash", "10.00", "cash")
    assert payment["created_at"].endswith("+08:00")
    assert sale_id in await unpaid_ids(cashier)

    # Still only 5.00 due.
    assert_error(await cashier.post(path, json={"method": "wechat", "amount": "5.01"}),
                 409, "overpayment")
    rest = await cashier.post(path, json={"method": "wechat", "amount": "5.00"})
    assert rest.status_code == 201, rest.text
    body = rest.json()
    assert body["paid"] is True
    assert [(p["method"], p["amount"]) for p in body["payments"]] == [("cash", "10.00"),
                                                                     ("wechat", "5.00")]
    assert sum(Decimal(p["amount"]) for p in body["payments"]) == Decimal(body["amount"])
    assert sale_id not in await unpaid_ids(cashier)
    assert two_sales[1]["id"] in await unpaid_ids(cashier)  # the other sale is still due

    # A paid sale takes nothing more, and says so.
    assert_error(await cashier.post(path, json={"method": "cash", "amount": "0.01"}),
                 409, "overpayment")
    again = (await cashier.get(f"/api/v1/sales/{sale_id}")).json()
    assert again["paid"] is True and len(again["payments"]) == 2


@pytest.mark.parametrize("method", ["cash", "wechat", "alipay", "card", "account"])
async def test_every_contract_method_is_taken(api: Api, two_sales: list[dict[str, Any]],
                                              method: str) -> None:
    sale_id = two_sales[1]["id"]
    response = await (await api.client("boss")).post(
        f"/api/v1/sales/{sale_id}/payments", json={"method": method, "amount": "1.00"})
    assert response.status_code == 201, response.text
    assert response.json()["payments"][-1]["method"] == method


async def test_a_payment_with_three_decimals_is_refused(
        api: Api, two_sales: list[dict[str, Any]]) -> None:
    sale_id = two_sales[1]["id"]
    client = await api.client("cash")
    before = (await client.get(f"/api/v1/sales/{sale_id}")).json()
    response = await client.post(f"/api/v1/sales/{sale_id}/payments",
                                 json={"method": "cash", "amount": "1.005"})
    after = (await client.get(f"/api/v1/sales/{sale_id}")).json()
    assert after == before
    assert_error(response, 422, "invalid_request")


async def test_zero_payment_is_refused(api: Api, two_sales: list[dict[str, Any]]) -> None:
    sale_id = two_sales[1]["id"]
    client = await api.client("cash")
    before = (await client.get(f"/api/v1/sales/{sale_id}")).json()
    response = await client.post(f"/api/v1/sales/{sale_id}/payments",
                                 json={"method": "cash", "amount": "0.00"})
    assert 400 <= response.status_code < 500
    assert_error(response, response.status_code)
    assert (await client.get(f"/api/v1/sales/{sale_id}")).json() == before

