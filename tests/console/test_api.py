"""The API the console stands on, against the real daemon and the pump simulator: prices within
a band, schedules cancelled or changed, times in the station's zone, the shift's pre-close
check, the alarm list and its acknowledgements, and the console's own views."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import websockets

from simulator.control import Simulator
from tests.e2e.conftest import RunningStation, wait_pump_state, wait_sales
from tests.helpers import wait_until

BEIJING = ZoneInfo("Asia/Shanghai")
PUMP1 = 0x50


def code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


async def sell(sim: Simulator, client: httpx.AsyncClient, amount: str, count: int) -> dict:
    await wait_pump_state(client, 1, "idle")
    response = await client.post("/api/v1/nozzles/1/authorize",
                                 json={"preset": {"amount": amount}})
    assert response.status_code == 202, response.text
    sim.lift(PUMP1, 1)
    await wait_until(lambda: len(sim.fills()) >= count, timeout=20, what=f"fill {count}")
    sim.hang(PUMP1, 1)
    found: dict = (await wait_sales(client, count))[-1]
    return found


async def test_a_price_change_beyond_the_band_needs_confirm_and_a_reason(
        running: RunningStation) -> None:
    boss = await running.client("boss")
    audit = running.station.store.audit_entries
    far = await boss.post("/api/v1/prices", json={"prices": {"92": "9.00"}})  # +20 %
    assert far.status_code == 409 and code(far) == "price_outside_band", far.text
    no_reason = await boss.post("/api/v1/prices", json={"prices": {"92": "9.00"},
                                                        "confirm_band": True})
    assert no_reason.status_code == 409 and code(no_reason) == "price_outside_band"
    near = await boss.post("/api/v1/prices", json={"prices": {"95": "8.50"}})  # +6 %
    assert near.status_code == 201, near.text
    assert near.json()["changes"] == [{"grade": "95", "old": "8.02", "new": "8.50",
                                       "difference": "+0.48", "percent": "+6.0",
                                       "band_percent": "15", "beyond_band": False}]
    done = await boss.post("/api/v1/prices", json={"prices": {"92": "9.00"},
                                                   "confirm_band": True, "reason": "上调"})
    assert done.status_code == 201, done.text
    assert done.json()["changes"][0]["beyond_band"] is True
    assert done.json()["price_set_id"] != near.json()["price_set_id"]
    # Each entry is written once its answer has left: waited for, not assumed.
    entries = await wait_until(lambda: (found := [e for e in audit(0, 1000)
                                                  if e.action == "prices.schedule"])
                               and len(found) == 4 and found, what="four audit entries")
    assert [e.outcome for e in entries] == ["price_outside_band", "price_outside_band", "ok", "ok"]
    assert entries[-1].details["change"]["changes"][0]["old"] == "7.50"
    assert entries[-1].details["change"]["reason"] == "上调"
    await boss.aclose()


async def test_a_time_typed_at_the_station_is_station_time(running: RunningStation) -> None:
    boss = await running.client("boss")
    day = (datetime.now(BEIJING) + timedelta(days=1)).date()
    response = await boss.post("/api/v1/prices", json={
        "prices": {"0": "7.20"}, "effective_local": f"{day.isoformat()}T08:00"})
    assert response.status_code == 201, response.text
    at = datetime.fromisoformat(response.json()["effective_at"])
    assert at == datetime.combine(day, time(8), BEIJING) and at.utcoffset() == timedelta(hours=8)
    listed = (await boss.get("/api/v1/prices")).json()
    assert (listed["zone"], listed["zone_label"]) == ("Asia/Shanghai", "北京时间")
    for bad in ({"prices": {"0": "7.20"}, "effective_local": "2026-13-40T08:00"},
                {"prices": {"0": "7.20"}, "effective_local": "tomorrow"},
                {"prices": {"0": "7.20"}, "effective_local": f"{day}T08:00",
                 "effective_at": at.isoformat()}):
        refused = await boss.post("/api/v1/prices", json=bad)
        assert refused.status_code == 422 and code(refused) == "invalid_request", refused.text
    await boss.aclose()


async def test_a_pending_schedule_is_cancelled_or_changed(running: RunningStation) -> None:
    boss = await running.client("boss")
    att = await running.client("att")
    at = (datetime.now(BEIJING) + timedelta(hours=3)).replace(microsecond=0)
    made = (await boss.post("/api/v1/prices", json={
        "prices": {"95": "8.10"}, "effective_at": at.isoformat()})).json()
    first = made["price_set_id"]
    forbidden = await att.delete(f"/api/v1/prices/schedules/{first}")
    assert forbidden.status_code == 403
    changed = await boss.put(f"/api/v1/prices/schedules/{first}", json={
        "prices": {"95": "8.20"}, "effective_local": (at + timedelta(hours=1)).strftime(
            "%Y-%m-%dT%H:%M")})
    assert changed.status_code == 200, changed.text
    second = changed.json()
    assert second["replaces"] == first and second["state"] == "pending"
    assert second["prices"] == {"95": "8.20"}
    listed = {s["price_set_id"]: s for s in (await boss.get("/api/v1/prices")).json()["schedules"]}
    assert listed[first]["state"] == "cancelled" and listed[first]["cancelled_by"] == "boss"
    again = await boss.put(f"/api/v1/prices/schedules/{first}", json={
        "prices": {"95": "8.30"}, "effective_at": at.isoformat()})
    assert again.status_code == 409 and code(again) == "schedule_applied"
    cancelled = await boss.delete(f"/api/v1/prices/schedules/{second['price_set_id']}")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    missing = await boss.delete("/api/v1/prices/schedules/NOPE")
    assert missing.status_code == 404 and code(missing) == "unknown_schedule"
    store = running.station.store
    assert store.next_price_schedule() is None
    actions = [(e.action, e.outcome) for e in store.audit_entries(0, 1000)
               if e.action.startswith("prices.")]
    assert ("prices.reschedule", "ok") in actions and ("prices.cancel", "ok") in actions
    assert ("prices.cancel", "forbidden") in actions
    await boss.aclose()
    await att.aclose()


async def test_a_shift_closes_after_its_check(sim: Simulator, running: RunningStation) -> None:
    cashier = await running.client("cash")
    boss = await running.client("boss")
    sale = await sell(sim, cashier, "30.00", 1)
    check = (await boss.get("/api/v1/shifts/current/check")).json()
    assert check["clear"] is False and [s["id"] for s in check["unpaid"]] == [sale["id"]]
    assert check["unpaid"][0]["number"] == sale["number"] and check["unpaid_due"] == "30.00"
    refused = await boss.post("/api/v1/shifts/current/close", json={"counted_cash": "0.00"})
    assert refused.status_code == 409 and code(refused) == "shift_not_clear"
    paid = await cashier.post(f"/api/v1/sales/{sale['id']}/payments",
                              json={"method": "cash", "amount": "30.00"})
    assert paid.status_code == 201
    check = (await boss.get("/api/v1/shifts/current/check")).json()
    assert check["clear"] is True and check["cash_expected"] == "30.00"
    closed = await boss.post("/api/v1/shifts/current/close", json={"counted_cash": "29.50"})
    assert closed.status_code == 200, closed.text
    report = closed.json()
    assert report["cash"] == {"counted": "29.50", "expected": "30.00", "over_short": "-0.50"}
    assert report["close_reason"] is None
    assert running.station.store.get_shift(report["shift_id"]).report == report  # type: ignore[union-attr]
    soon = await boss.post("/api/v1/shifts/current/close")
    assert soon.status_code == 409 and code(soon) == "shift_closed_recently"
    assert (await boss.get("/api/v1/shifts/current/check")).json()["closed_recently"] is True
    repeat = await boss.post("/api/v1/shifts/current/close", json={"repeat": True})
    assert repeat.status_code == 200 and repeat.json()["shift_id"] == report["shift_id"] + 1
    await cashier.aclose()
    await boss.aclose()


async def test_alarms_are_listed_acknowledged_and_cleared(
        sim: Simulator, running: RunningStation) -> None:
    att = await running.client("att")
    fin = await running.client("fin")
    stopped = await att.post("/api/v1/pumps/1/stop")
    assert stopped.status_code == 202
    found = await wait_until(lambda: _active(running), timeout=10, what="the stop's alarm")
    listed = (await fin.get("/api/v1/alarms")).json()
    alarm = next(a for a in listed["alarms"] if a["kind"] == "station_stop")
    assert alarm["status"] == "active" and alarm["pump"] == 1 and alarm["acknowledged"] is None
    assert found
    refused = await fin.post(f"/api/v1/alarms/{alarm['seq']}/ack")
    assert refused.status_code == 403  # finance reads, it does not act
    async with websockets.connect(f"ws://127.0.0.1:{running.station.port}/api/v1/events"
                                  f"?token={att.headers['Authorization'][7:]}") as ws:
        await ws.recv()  # the snapshot
        acked = await att.post(f"/api/v1/alarms/{alarm['seq']}/ack")
        assert acked.status_code == 200 and acked.json()["new"] is True
        while (message := json.loads(await ws.recv()))["type"] != "alarm.acknowledged":
            pass
        assert message["data"]["seq"] == alarm["seq"]
    again = await att.post(f"/api/v1/alarms/{alarm['seq']}/ack")
    assert again.json()["new"] is False and again.json()["acknowledged"]["by"] == "att"
    missing = await att.post("/api/v1/alarms/999999/ack")
    assert missing.status_code == 404 and code(missing) == "unknown_alarm"
    reset = await att.post("/api/v1/pumps/1/reset")
    assert reset.status_code == 200
    listed = (await att.get("/api/v1/alarms")).json()
    alarm = next(a for a in listed["alarms"] if a["seq"] == alarm["seq"])
    assert alarm["status"] == "cleared" and alarm["acknowledged"]["by"] == "att"
    assert any(e.action == "alarm.ack" and e.target == str(alarm["seq"])
               for e in running.station.store.audit_entries(0, 1000))
    await att.aclose()
    await fin.aclose()


def _active(running: RunningStation) -> bool:
    return "station_stop" in running.station.forecourt.pumps[1].alarms


async def test_the_console_views(sim: Simulator, running: RunningStation) -> None:
    cashier = await running.client("cash")
    fin = await running.client("fin")
    info = (await cashier.get("/api/v1/console")).json()
    assert info["station"] == {"name": "测试加油站", "timezone": "Asia/Shanghai",
                               "zone_label": "北京时间", "utc_offset_minutes": 480}
    assert info["grades"][0] == {"grade": "92", "name": "92号汽油", "band_percent": "15"}
    assert info["receipts"] is None and info["printer"] is None  # no [printer] here
    sale = await sell(sim, cashier, "20.00", 1)
    views = (await cashier.get("/api/v1/console/sales")).json()
    assert [s["id"] for s in views["unpaid"]] == [sale["id"]]
    assert views["unpaid"][0]["receipt_prints"] == 0 and views["unpaid"][0]["order"] is None
    assert [s["id"] for s in views["recent"]] == [sale["id"]]
    await cashier.post(f"/api/v1/sales/{sale['id']}/payments",
                       json={"method": "wechat", "amount": "20.00"})
    entries = (await fin.get("/api/v1/console/audit?limit=5")).json()["entries"]
    assert entries[0]["action"] == "sale.payment" and entries[0]["sale_number"] == sale["number"]
    assert entries == sorted(entries, key=lambda e: -e["seq"])
    assert (await cashier.get("/api/v1/console/audit")).status_code == 403
    await cashier.aclose()
    await fin.aclose()
