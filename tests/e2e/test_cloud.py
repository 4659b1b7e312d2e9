"""The cloud link end to end: real Mosquitto, daemon, pump simulator and cloud peer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain.model import Role
from edge.config import load_config
from edge.station import Station
from edge.store import Store
from simulator.cloud import CloudPeer
from simulator.control import Simulator
from sync.keys import generate, load_private_key
from tests.e2e.conftest import USERS, start_station
from tests.helpers import StationSpec, free_port, wait_until
from tests.mosquitto import Mosquitto

SID = "XJ-TEST-0001"
PUMP1 = 0x50


@dataclass
class Cloudy:
    station: Station
    cloud: CloudPeer
    broker: Mosquitto
    sim: Simulator

    def events(self, type_: str) -> list[dict[str, Any]]:
        return [e for _, e in sorted(self.cloud.received.items()) if e["type"] == type_]

    def order_statuses(self, order_id: str) -> list[str]:
        return [e["data"]["status"] for e in self.events("order.updated")
                if e["data"]["order_id"] == order_id]

    async def wait_status(self, order_id: str, status: str, timeout: float = 20) -> None:
        await wait_until(lambda: status in self.order_statuses(order_id), timeout=timeout,
                         what=f"order {order_id} {status}")

    async def station_client(self) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.station.port}", timeout=15)
        r = await client.post("/api/v1/session", json={"user": "att", "pin": USERS["att"][1]})
        client.headers["Authorization"] = f"Bearer {r.json()['token']}"
        return client


def order(order_id: str, *, nozzle: int = 1, grade: str = "92", price: str = "7.50",
          amount: str = "100.00", paid: str = "120.00") -> dict[str, Any]:
    expires = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    return {"order_id": order_id, "nozzle": nozzle, "grade": grade, "price": price,
            "preset": {"amount": amount}, "paid": paid, "expires_at": expires}


def expiring() -> str:
    return (datetime.now(UTC) + timedelta(minutes=5)).isoformat()


@pytest.fixture
async def cloudy(sim: Simulator, tmp_path: Path) -> AsyncIterator[Cloudy]:
    private, public = generate(tmp_path / "keys")
    with Mosquitto(tmp_path / "broker") as broker:
        assert sim.url is not None
        spec = StationSpec(port_url=sim.url, db=tmp_path / "station.db", api_port=free_port(),
                           broker=broker.url, cloud_public_key=public, lift_timeout_seconds=10)
        path = tmp_path / "station.toml"
        path.write_text(spec.toml(), "utf-8")
        with Store.open(spec.db) as store:
            for name, (role, pin) in USERS.items():
                store.upsert_user(name, role=Role(role), pin=pin)
        async with CloudPeer(broker.url, SID, private_key=load_private_key(private)) as cloud:
            station, task = await start_station(path)
            try:
                await wait_until(lambda: cloud.online() is True, timeout=10, what="station online")
                yield Cloudy(station, cloud, broker, sim)
            finally:
                station.request_stop()
                await asyncio.wait_for(task, 20)
        assert load_config(path).sync is not None


async def pumps_idle(c: Cloudy) -> None:
    async def idle() -> bool:
        views = c.station.forecourt.snapshot()["pumps"]
        return all(p["state"] == "idle" for p in views)
    await wait_until(idle, timeout=15, what="pumps idle")


async def test_an_app_order_fuels_and_completes_with_its_refund(cloudy: Cloudy) -> None:
    await pumps_idle(cloudy)
    reply = await cloudy.cloud.command("order.create", order("A-1001"))
    assert reply["data"]["ok"] is True, reply
    assert reply["data"]["result"]["status"] == "authorized"
    assert cloudy.station.forecourt.pumps[1].reserved_by == "A-1001"
    cloudy.sim.lift(PUMP1, 1)
    await wait_until(lambda: len(cloudy.sim.fills()) == 1, timeout=15, what="the fill")
    cloudy.sim.hang(PUMP1, 1)
    await cloudy.wait_status("A-1001", "completed")
    assert cloudy.order_statuses("A-1001") == ["accepted", "authorized", "fuelling", "completed"]
    done = next(e for e in cloudy.events("order.updated") if e["data"]["status"] == "completed")
    (sale,) = [e["data"] for e in cloudy.events("sale.completed")]
    assert done["data"]["sale_id"] == sale["id"]
    assert sale["order_id"] == "A-1001" and sale["amount"] == "100.00"
    assert done["data"]["refund"] == "20.00"
    assert cloudy.station.forecourt.pumps[1].reserved_by is None
    # Paid in the app: settled as recorded, never in the cashier's unpaid list.
    assert sale["paid"] is True
    assert [(p["method"], p["amount"]) for p in sale["payments"]] == [("app", "100.00")]
    assert cloudy.station.store.sales(unpaid=True, limit=10) == []


async def test_a_wrong_price_is_rejected_with_its_reason(cloudy: Cloudy) -> None:
    await pumps_idle(cloudy)
    reply = await cloudy.cloud.command("order.create", order("A-2001", price="7.40"))
    assert reply["data"]["ok"] is False
    assert reply["data"]["error"]["code"] == "price_mismatch"
    await cloudy.wait_status("A-2001", "rejected")
    (event,) = [e for e in cloudy.events("order.updated") if e["data"]["order_id"] == "A-2001"]
    assert event["data"]["reason"] == "price_mismatch"
    assert cloudy.sim.pump(PUMP1).status.name != "AUTHORIZED"


async def test_a_preset_beyond_what_was_paid_is_rejected(cloudy: Cloudy) -> None:
    await pumps_idle(cloudy)
    reply = await cloudy.cloud.command("order.create", order("A-2002", amount="200.00"))
    assert reply["data"]["error"]["code"] == "preset_exceeds_paid"


async def test_the_same_order_twice_is_one_order(cloudy: Cloudy) -> None:
    await pumps_idle(cloudy)
    first = await cloudy.cloud.command("order.create", order("A-3001"))
    second = await cloudy.cloud.command("order.create", order("A-3001"))
    assert first["data"]["ok"] and second["data"]["ok"]
    assert second["data"]["result"]["authorization_id"] == \
        first["data"]["result"]["authorization_id"]
    await asyncio.sleep(0.5)
    assert cloudy.order_statuses("A-3001") == ["accepted", "authorized"]


async def test_a_cancelled_order_resets_the_pump_and_frees_the_nozzle(cloudy: Cloudy) -> None:
    await pumps_idle(cloudy)
    created = await cloudy.cloud.command("order.create", order("A-4001"))
    assert created["data"]["ok"], created
    cancelled = await cloudy.cloud.command("order.cancel",
                                           {"order_id": "A-4001", "expires_at": expiring()})
    assert cancelled["data"]["ok"], cancelled
    assert cancelled["data"]["result"]["status"] == "cancelled"
    assert cancelled["data"]["result"]["refund"] == "120.00"
    await wait_until(lambda: cloudy.sim.pump(PUMP1).status.name == "RESET", timeout=5,
                     what="the pump reset")
    pump = cloudy.station.forecourt.pumps[1]
    assert pump.reserved_by is None and pump.auth is None
    auth = await cloudy.station.forecourt.authorize(1, None, user="att")
    assert auth.state == "authorized"


async def test_an_order_not_fuelled_in_time_expires(cloudy: Cloudy) -> None:
    await pumps_idle(cloudy)
    created = await cloudy.cloud.command("order.create", order("A-5001"))
    assert created["data"]["ok"], created
    await cloudy.wait_status("A-5001", "expired", timeout=25)
    expired = next(e for e in cloudy.events("order.updated") if e["data"]["status"] == "expired")
    assert expired["data"]["refund"] == "120.00"
    await wait_until(lambda: cloudy.sim.pump(PUMP1).status.name == "RESET", timeout=5,
                     what="the pump reset")
    assert cloudy.station.forecourt.pumps[1].reserved_by is None


async def test_a_price_schedule_reaches_every_pump_and_tags_sales(cloudy: Cloudy) -> None:
    await pumps_idle(cloudy)
    effective = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    reply = await cloudy.cloud.command("price.schedule", {
        "price_set_id": "PS-20261122", "effective_at": effective,
        "prices": {"92": "7.62"}, "expires_at": expiring()})
    assert reply["data"]["ok"], reply
    await wait_until(lambda: {e["data"]["pump"] for e in cloudy.events("price.applied")
                              if e["data"]["price_set_id"] == "PS-20261122"} == {1, 2},
                     timeout=20, what="price.applied for both pumps")
    assert cloudy.sim.pump(PUMP1).prices[1] == 762
    client = await cloudy.station_client()
    r = await client.post("/api/v1/nozzles/1/authorize", json={"preset": {"volume": "2.00"}})
    assert r.status_code == 202, r.text
    cloudy.sim.lift(PUMP1, 1)
    await wait_until(lambda: len(cloudy.sim.fills()) == 1, timeout=15, what="the fill")
    cloudy.sim.hang(PUMP1, 1)
    await wait_until(lambda: cloudy.events("sale.completed"), timeout=15, what="the sale")
    sale = cloudy.events("sale.completed")[0]["data"]
    assert sale["price"] == "7.62" and sale["amount"] == "15.24"
    assert sale["price_set_id"] == "PS-20261122"
    await client.aclose()


async def test_data_requests_page_sales_and_read_totals(cloudy: Cloudy) -> None:
    await pumps_idle(cloudy)
    reply = await cloudy.cloud.command("data.request", {"what": "totals",
                                                        "expires_at": expiring()})
    assert reply["data"]["ok"], reply
    nozzles = {(t["pump"], t["nozzle"]) for t in reply["data"]["result"]["totals"]}
    assert nozzles == {(1, 1), (1, 2), (2, 3), (2, 4)}
    sales = await cloudy.cloud.command("data.request", {"what": "sales", "since_seq": 0,
                                                        "limit": 10, "expires_at": expiring()})
    assert sales["data"]["result"] == {"sales": [], "next_since_seq": None}
    missing = await cloudy.cloud.command("data.request", {"what": "tanks",
                                                          "expires_at": expiring()})
    assert missing["data"]["error"]["code"] == "not_available"


async def test_a_forged_command_is_refused_and_changes_nothing(cloudy: Cloudy) -> None:
    await pumps_idle(cloudy)
    envelope = cloudy.cloud.command_envelope("order.create", order("A-6001"))
    payload = json.dumps({"body": json.dumps(envelope), "sig": "AAAA"}).encode()
    reply = await cloudy.cloud.request_raw(payload)
    assert reply["data"]["ok"] is False
    assert reply["data"]["error"]["code"] == "bad_signature"
    assert cloudy.order_statuses("A-6001") == []
    assert cloudy.station.forecourt.pumps[1].auth is None


async def test_status_is_retained_online_and_goes_offline_on_stop(
        sim: Simulator, tmp_path: Path) -> None:
    # Covered by the fixture's start; here the clean stop.
    _private, public = generate(tmp_path / "keys")
    with Mosquitto(tmp_path / "broker") as broker:
        assert sim.url is not None
        spec = StationSpec(port_url=sim.url, db=tmp_path / "station.db", api_port=free_port(),
                           broker=broker.url, cloud_public_key=public)
        path = tmp_path / "station.toml"
        path.write_text(spec.toml(), "utf-8")
        async with CloudPeer(broker.url, SID) as cloud:
            station, task = await start_station(path)
            await wait_until(lambda: cloud.online() is True, timeout=10, what="online")
            assert cloud.status is not None and cloud.status["data"]["boot_id"] == \
                station.boot_id
            station.request_stop()
            await asyncio.wait_for(task, 20)
            await wait_until(lambda: cloud.online() is False, timeout=10, what="offline")

