"""Who may do what (CONTRACT section 3, docs/api.md "Sessions and roles"), role by endpoint.

A permitted request is sent where it cannot change the forecourt (an unknown nozzle, pump or
sale), so getting past the role check shows as a 404 of that thing, not a 403. A refused one is
sent at the real nozzle and pump, and nothing may happen there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.api.conftest import (
    PUMP1,
    PUMP2,
    ROLE_USERS,
    Api,
    assert_error,
    assert_forecourt_untouched,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

UNKNOWN_SALE = "01HZZZZZZZZZZZZZZZZZZZZZZZ"

#: Written from the documented table, not from the code's: a drift between the two must show.
MAY: dict[str, set[str]] = {
    "attendant": {"read", "authorize", "stop"},
    "cashier": {"read", "authorize", "stop", "payment"},
    "manager": {"read", "authorize", "stop", "payment"},
    "finance": {"read"},
    "admin": {"read", "authorize", "stop", "payment"},
}


@dataclass(frozen=True)
class Action:
    permission: str
    method: str
    # (path, body) when the role may do it (harmless target) and when it may not (real target).
    permitted: tuple[str, dict[str, Any] | None]
    refused: tuple[str, dict[str, Any] | None]
    permitted_status: int
    permitted_code: str | None


ACTIONS = {
    "read forecourt": Action("read", "GET", ("/api/v1/forecourt", None),
                             ("/api/v1/forecourt", None), 200, None),
    "read sales": Action("read", "GET", ("/api/v1/sales?limit=10", None),
                         ("/api/v1/sales", None), 200, None),
    "read a sale": Action("read", "GET", (f"/api/v1/sales/{UNKNOWN_SALE}", None),
                          (f"/api/v1/sales/{UNKNOWN_SALE}", None), 404, "unknown_sale"),
    "authorize": Action("authorize", "POST", ("/api/v1/nozzles/99/authorize", {}),
                        ("/api/v1/nozzles/1/authorize", {"preset": {"amount": "50.00"}}),
                        404, "unknown_nozzle"),
    "stop": Action("stop", "POST", ("/api/v1/pumps/99/stop", None),
                   ("/api/v1/pumps/1/stop", None), 404, "unknown_pump"),
    "pay": Action("payment", "POST",
                  (f"/api/v1/sales/{UNKNOWN_SALE}/payments", {"method": "cash", "amount": "10.00"}),
                  (f"/api/v1/sales/{UNKNOWN_SALE}/payments", {"method": "cash", "amount": "10.00"}),
                  404, "unknown_sale"),
}


async def test_the_table_covers_every_role() -> None:
    assert set(MAY) == set(ROLE_USERS)


@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize("role", sorted(ROLE_USERS))
async def test_role_may_or_may_not(api: Api, role: str, action: str) -> None:
    what = ACTIONS[action]
    client = await api.client(ROLE_USERS[role])
    if what.permission in MAY[role]:
        path, body = what.permitted
        response = await client.request(what.method, path, json=body)
        if what.permitted_code is None:
            assert response.status_code == what.permitted_status, response.text
        else:
            assert_error(response, what.permitted_status, what.permitted_code)
    else:
        path, body = what.refused
        response = await client.request(what.method, path, json=body)
        assert_error(response, 403, "forbidden")
        assert role in response.json()["error"]["message"]
    await assert_forecourt_untouched(api, client)


async def test_finance_reads_the_forecourt_and_sales(api: Api) -> None:
    client = await api.client("fin")
    forecourt = await client.get("/api/v1/forecourt")
    assert forecourt.status_code == 200, forecourt.text
    assert [p["number"] for p in forecourt.json()["pumps"]] == [1, 2]
    sales = await client.get("/api/v1/sales")
    assert sales.status_code == 200, sales.text
    assert sales.json() == {"sales": []}


async def test_a_refused_stop_does_not_reach_the_pump(api: Api) -> None:
    # An idle simulated pump notes a STOP it cannot apply in "refused": the trace of a stop sent.
    assert api.sim is not None
    client = await api.client("fin")
    assert_error(await client.post("/api/v1/pumps/1/stop"), 403, "forbidden")
    assert_error(await client.post("/api/v1/pumps/2/stop"), 403, "forbidden")
    for address in (PUMP1, PUMP2):
        assert api.sim.pump(address).refused == []
