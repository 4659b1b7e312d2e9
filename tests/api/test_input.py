"""Bad input changes nothing and gets a 4xx in the one error shape (CONTRACT section 3).

Every request here is sent by a manager, who may authorize, stop and pay, so only the input
itself can be the reason for a refusal. After each, no authorization exists anywhere (API,
store, the pump itself) and there is no sale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.api.conftest import Api, assert_error, assert_forecourt_untouched
from tests.e2e.conftest import wait_pump_state

pytestmark = pytest.mark.asyncio(loop_scope="module")

UNKNOWN_SALE = "01HZZZZZZZZZZZZZZZZZZZZZZZ"
AUTHORIZE = "/api/v1/nozzles/1/authorize"
PAY = f"/api/v1/sales/{UNKNOWN_SALE}/payments"


@dataclass(frozen=True)
class Bad:
    method: str
    path: str
    json: Any = None
    content: bytes | None = None
    params: dict[str, str] | None = None
    status: int = 422
    code: str | None = "invalid_request"


def preset(**fields: Any) -> Bad:
    return Bad("POST", AUTHORIZE, json={"preset": fields})


CASES: dict[str, Bad] = {
    # ---- authorize: the body
    "malformed json": Bad("POST", AUTHORIZE, content=b'{"preset": {"amount": "10.00"'),
    "json not an object": Bad("POST", AUTHORIZE, json=["preset"]),
    "json a string": Bad("POST", AUTHORIZE, json="full"),
    "extra top-level key": Bad("POST", AUTHORIZE,
                               json={"preset": {"amount": "10.00"}, "pump": 1}),
    "extra preset key": preset(amount="10.00", currency="CNY"),
    "both amount and volume": preset(amount="10.00", volume="2.00"),
    "empty preset": preset(),
    "preset null amount and volume": preset(amount=None, volume=None),
    "preset not an object": Bad("POST", AUTHORIZE, json={"preset": "10.00"}),
    "negative amount": preset(amount="-10.00"),
    "negative volume": preset(volume="-2.00"),
    "amount as a float": preset(amount=10.5),
    "amount as an integer": preset(amount=100),
    "volume as a float": preset(volume=2.0),
    "amount with a comma": preset(amount="10,00"),
    "amount in exponent form": preset(amount="1e2"),
    "amount NaN": preset(amount="NaN"),
    "amount Infinity": preset(amount="Infinity"),
    "amount with spaces": preset(amount=" 10.00"),
    "amount empty": preset(amount=""),
    "amount too large": preset(amount="10000000.00"),
    "amount with too many decimals": preset(amount="10.005"),
    "volume with too many decimals": Bad("POST", AUTHORIZE,
                                         json={"preset": {"volume": "2.001"}},
                                         status=400, code="invalid_preset"),
    "volume with four decimals": preset(volume="2.0001"),
    # ---- authorize and stop: the target
    "unknown nozzle": Bad("POST", "/api/v1/nozzles/99/authorize", json={}, status=404,
                          code="unknown_nozzle"),
    "nozzle 0": Bad("POST", "/api/v1/nozzles/0/authorize", json={}, status=404,
                    code="unknown_nozzle"),
    "negative nozzle": Bad("POST", "/api/v1/nozzles/-1/authorize", json={}, status=404,
                           code="unknown_nozzle"),
    "nozzle not a number": Bad("POST", "/api/v1/nozzles/one/authorize", json={}),
    "unknown nozzle with a preset": Bad("POST", "/api/v1/nozzles/5/authorize",
                                        json={"preset": {"volume": "2.00"}}, status=404,
                                        code="unknown_nozzle"),
    "unknown pump stop": Bad("POST", "/api/v1/pumps/9/stop", status=404, code="unknown_pump"),
    "pump not a number": Bad("POST", "/api/v1/pumps/first/stop"),
    "authorize with GET": Bad("GET", AUTHORIZE, status=405, code="method_not_allowed"),
    "no such endpoint": Bad("GET", "/api/v1/nozzles", status=404, code="not_found"),
    # ---- sales: the query
    "limit 0": Bad("GET", "/api/v1/sales", params={"limit": "0"}),
    "limit 5000": Bad("GET", "/api/v1/sales", params={"limit": "5000"}),
    "limit not a number": Bad("GET", "/api/v1/sales", params={"limit": "ten"}),
    "since_seq -1": Bad("GET", "/api/v1/sales", params={"since_seq": "-1"}),
    "since_seq a float": Bad("GET", "/api/v1/sales", params={"since_seq": "1.5"}),
    "unpaid not a boolean": Bad("GET", "/api/v1/sales", params={"unpaid": "maybe"}),
    "unknown sale": Bad("GET", f"/api/v1/sales/{UNKNOWN_SALE}", status=404,
                        code="unknown_sale"),
    # ---- payments
    "payment unknown method": Bad("POST", PAY, json={"method": "bitcoin", "amount": "10.00"}),
    "payment method missing": Bad("POST", PAY, json={"amount": "10.00"}),
    "payment amount missing": Bad("POST", PAY, json={"method": "cash"}),
    "payment negative": Bad("POST", PAY, json={"method": "cash", "amount": "-10.00"}),
    "payment amount a float": Bad("POST", PAY, json={"method": "cash", "amount": 10.0}),
    "payment extra key": Bad("POST", PAY,
                             json={"method": "cash", "amount": "10.00", "change": "0.00"}),
    "payment malformed json": Bad("POST", PAY, content=b"method=cash&amount=10.00"),
    "payment on unknown sale": Bad("POST", PAY, json={"method": "cash", "amount": "10.00"},
                                   status=404, code="unknown_sale"),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_bad_input_is_refused_and_changes_nothing(api: Api, case: str) -> None:
    bad = CASES[case]
    client = await api.client("boss")
    headers = {"Content-Type": "application/json"} if bad.content is not None else None
    response = await client.request(bad.method, bad.path, json=bad.json, content=bad.content,
                                    params=bad.params, headers=headers)
    assert_error(response, bad.status, bad.code)
    await assert_forecourt_untouched(api, client)


async def test_a_validation_error_names_the_field(api: Api) -> None:
    client = await api.client("boss")
    response = await client.post(AUTHORIZE, json={"preset": {"amount": "-1"}})
    assert_error(response, 422, "invalid_request")
    assert "amount" in response.json()["error"]["message"]
    response = await client.get("/api/v1/sales", params={"limit": "0"})
    assert_error(response, 422, "invalid_request")
    assert "limit" in response.json()["error"]["message"]


@pytest.mark.parametrize("value", [{"amount": "0.00"}, {"volume": "0"}])
async def test_a_zero_preset_is_a_4xx(api: Api, value: dict[str, str]) -> None:
    client = await api.client("boss")
    response = await client.post(AUTHORIZE, json={"preset": value})
    assert 400 <= response.status_code < 500, response.text
    assert_error(response, response.status_code)
    await assert_forecourt_untouched(api, client)


async def test_the_station_still_authorizes_after_all_that(api: Api) -> None:
    # The refusals above must not have left the pump or the controller in a state of their own.
    assert api.sim is not None
    client = await api.client("boss")
    # A loaded test machine may have taken the in-process simulator's pump offline for a
    # moment (its answers share this event loop); the point here is the refusals' aftermath.
    await wait_pump_state(client, 1, "idle")
    response = await client.post(AUTHORIZE, json={"preset": {"volume": "2.00"}})
    assert response.status_code == 202, response.text
    assert response.json()["authorization_id"]
    assert api.sim.pump(0x50).preset_volume == 200  # centilitres, as the pump holds it
