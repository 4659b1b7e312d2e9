"""Live events over the WebSocket ``/api/v1/events`` (CONTRACT section 3, docs/api.md).

A real WebSocket client against the daemon's port; the forecourt moves because the simulated
customer lifts and hangs nozzles.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.api.conftest import PUMP1, Api
from tests.e2e.conftest import wait_pump_state
from tests.helpers import wait_until

pytestmark = pytest.mark.asyncio(loop_scope="module")

Message = dict[str, Any]


async def receive(ws: ClientConnection, timeout: float = 10.0) -> Message:
    raw = await asyncio.wait_for(ws.recv(), timeout)
    message: Message = json.loads(raw)
    return message


async def receive_until(ws: ClientConnection, match: Callable[[Message], bool],
                        timeout: float = 15.0) -> tuple[Message, list[Message]]:
    """The first message that matches, and every message seen before it."""
    seen: list[Message] = []
    async with asyncio.timeout(timeout):
        while True:
            message = await receive(ws, timeout)
            if match(message):
                return message, seen
            seen.append(message)


def nozzle_state(message: Message, pump: int, nozzle: int) -> str | None:
    if message.get("type") != "pump.state" or message["data"]["number"] != pump:
        return None
    states = {n["number"]: n["state"] for n in message["data"]["nozzles"]}
    return states.get(nozzle)


async def no_subscribers(api: Api) -> None:
    # A closed console must not stay subscribed to the hub.
    await wait_until(lambda: api.station.hub.subscribers == 0, timeout=5,
                     what="no event subscriber left")


async def close_code(url: str, **kwargs: Any) -> int:
    try:
        async with websockets.connect(url, open_timeout=5, **kwargs) as ws:
            await receive(ws, 5)
    except websockets.ConnectionClosed as closed:
        assert closed.rcvd is not None, "closed without a close frame"
        return closed.rcvd.code
    raise AssertionError("the connection stayed open and sent a message")


async def test_without_a_valid_token_nothing_is_sent(api: Api) -> None:
    logged_out = await api.login("att")
    bye = await api.anonymous().delete("/api/v1/session",
                                       headers={"Authorization": f"Bearer {logged_out}"})
    assert bye.status_code == 204
    for url in (api.ws_url, f"{api.ws_url}?token=garbage", f"{api.ws_url}?token={logged_out}"):
        try:
            async with websockets.connect(url, open_timeout=5) as ws:
                with pytest.raises(websockets.ConnectionClosed):
                    await receive(ws, 5)
        except websockets.InvalidStatus as refused:
            assert refused.response.status_code in (401, 403)
    assert api.station.hub.subscribers == 0


@pytest.mark.parametrize("query", ["", "?token=garbage", "?token="])
async def test_without_a_token_the_socket_closes_with_4401(api: Api, query: str) -> None:
    assert await close_code(api.ws_url + query) == 4401


async def test_the_first_message_is_the_forecourt_snapshot(api: Api) -> None:
    token = await api.token("fin")  # reading live events is a read: every role may
    async with websockets.connect(f"{api.ws_url}?token={token}", open_timeout=5) as ws:
        first = await receive(ws)
    assert first["type"] == "forecourt.snapshot"
    pumps = first["data"]["pumps"]
    assert [p["number"] for p in pumps] == [1, 2]
    assert [[n["number"] for n in p["nozzles"]] for p in pumps] == [[1, 2], [3, 4]]
    forecourt = await (await api.client("fin")).get("/api/v1/forecourt")
    assert [p["number"] for p in forecourt.json()["pumps"]] == [1, 2]
    await no_subscribers(api)


async def test_a_bearer_header_works_like_the_query_token(api: Api) -> None:
    token = await api.token("att")
    async with websockets.connect(api.ws_url, open_timeout=5,
                                  additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        assert (await receive(ws))["type"] == "forecourt.snapshot"
    await no_subscribers(api)


async def test_a_lifted_nozzle_shows_as_calling_then_idle(api: Api) -> None:
    assert api.sim is not None
    client = await api.client("att")
    await wait_pump_state(client, 1, "idle")
    token = await api.token("att")
    async with websockets.connect(f"{api.ws_url}?token={token}", open_timeout=5) as ws:
        assert (await receive(ws))["type"] == "forecourt.snapshot"
        api.sim.lift(PUMP1, 1)
        calling, _ = await receive_until(ws, lambda m: nozzle_state(m, 1, 1) == "calling")
        assert calling["data"]["state"] == "calling"
        assert "seq" not in calling  # live state, not a record
        assert datetime.fromisoformat(calling["ts"]).utcoffset() is not None
        # Only the lifted nozzle calls.
        assert nozzle_state(calling, 1, 2) == "idle"
        api.sim.hang(PUMP1, 1)
        idle, _ = await receive_until(ws, lambda m: nozzle_state(m, 1, 1) == "idle")
        assert idle["data"]["state"] == "idle"
    await no_subscribers(api)


async def test_a_completed_sale_is_sent_with_its_seq(api: Api) -> None:
    assert api.sim is not None
    client = await api.client("att")
    await wait_pump_state(client, 1, "idle")
    token = await api.token("att")
    async with websockets.connect(f"{api.ws_url}?token={token}", open_timeout=5) as ws:
        assert (await receive(ws))["type"] == "forecourt.snapshot"
        response = await client.post("/api/v1/nozzles/1/authorize",
                                     json={"preset": {"volume": "2.00"}})
        assert response.status_code == 202, response.text
        api.sim.lift(PUMP1, 1)
        await wait_until(lambda: api.sim is not None and len(api.sim.fills()) == 1,
                         timeout=20, what="the fill")
        api.sim.hang(PUMP1, 1)
        event, before = await receive_until(ws, lambda m: m.get("type") == "sale.completed",
                                            timeout=20)
    await no_subscribers(api)
    assert isinstance(event["seq"], int) and event["seq"] >= 1
    assert event["id"] and datetime.fromisoformat(event["ts"]).utcoffset() is not None
    sale = event["data"]
    assert sale["seq"] == event["seq"]
    assert (sale["nozzle"], sale["volume"], sale["amount"]) == (1, "2.00", "15.00")
    assert sale["authorization_id"] == response.json()["authorization_id"]
    assert sale["paid"] is False and sale["payments"] == []
    # The sale as GET /api/v1/sales shows it (CONTRACT section 4).
    listed = (await client.get(f"/api/v1/sales/{sale['id']}")).json()
    assert sale == listed
    # The console saw the pump fuel before the sale arrived.
    assert any(nozzle_state(m, 1, 1) == "fuelling" for m in before)


async def test_logging_out_ends_the_live_feed(api: Api) -> None:
    assert api.sim is not None
    client = await api.client("att", fresh=True)
    token = client.headers["Authorization"].removeprefix("Bearer ")
    async with websockets.connect(f"{api.ws_url}?token={token}", open_timeout=5) as ws:
        assert (await receive(ws))["type"] == "forecourt.snapshot"
        assert (await client.delete("/api/v1/session")).status_code == 204
        api.sim.lift(PUMP1, 2)  # something to tell: the feed then notices the session is gone
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await receive_until(ws, lambda m: False, timeout=10)
        api.sim.hang(PUMP1, 2)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    await no_subscribers(api)


# CONTRACT: "Times are RFC 3339 with an offset; the station's timezone decides what is
# printed". Sale times follow it (+08:00); the envelopes' own "ts" do not yet.

async def test_live_state_is_stamped_in_station_time(api: Api) -> None:
    assert api.sim is not None
    token = await api.token("att")
    async with websockets.connect(f"{api.ws_url}?token={token}", open_timeout=5) as ws:
        assert (await receive(ws))["type"] == "forecourt.snapshot"
        api.sim.lift(PUMP1, 1)
        try:
            calling, _ = await receive_until(ws, lambda m: nozzle_state(m, 1, 1) == "calling")
        finally:
            api.sim.hang(PUMP1, 1)
        await receive_until(ws, lambda m: nozzle_state(m, 1, 1) == "idle")
    await no_subscribers(api)
    assert calling["ts"].endswith("+08:00"), calling["ts"]


async def test_events_are_stamped_in_station_time(api: Api) -> None:
    assert api.sim is not None
    token = await api.token("att")
    async with websockets.connect(f"{api.ws_url}?token={token}", open_timeout=5) as ws:
        assert (await receive(ws))["type"] == "forecourt.snapshot"
        api.sim.alarm(PUMP1, 0x21)  # a durable event: pump.alarm
        alarm, _ = await receive_until(ws, lambda m: m.get("type") == "pump.alarm")
    await no_subscribers(api)
    assert alarm["data"]["pump"] == 1 and isinstance(alarm["seq"], int)
    assert alarm["ts"].endswith("+08:00"), alarm["ts"]
