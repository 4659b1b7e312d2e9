"""Pumps that must never be left unsellable, and figures that must never be sold quietly.

Each test reproduces a field case against the real daemon and the DART simulator over a real
socket: an emergency stop before the lift, an authorization nobody uses, a final filling the
pump cannot give for a while, impossible figures, a pump that does not take its prices.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge.store import Store
from simulator.control import Simulator
from simulator.pump import MeterFault
from tests.e2e.conftest import (
    USERS,
    RunningStation,
    dispensed,
    pump_view,
    sales,
    start_station,
    wait_pump_state,
    wait_sales,
)
from tests.helpers import StationSpec, free_port, wait_until

PUMP1 = 0x50


def _config(tmp_path: Path, url: str, **controller: int) -> Path:
    spec = StationSpec(port_url=url, db=tmp_path / "station.db", api_port=free_port(),
                       lift_timeout_seconds=controller.pop("lift_timeout_seconds", None))
    text = spec.toml()
    extra = "".join(f"{key} = {value}\n" for key, value in controller.items())
    path = tmp_path / "station.toml"
    path.write_text(text.replace("[controller]\n", "[controller]\n" + extra), "utf-8")
    with Store.open(spec.db) as store:
        for name, (role, pin) in USERS.items():
            store.upsert_user(name, role=role, pin=pin)
    return path


@pytest.fixture
async def tuned(sim: Simulator, tmp_path: Path) -> AsyncIterator[RunningStation]:
    """The station with short lift and unreadable-fill timeouts, so the tests wait seconds."""
    assert sim.url is not None
    path = _config(tmp_path, sim.url, lift_timeout_seconds=10, unreadable_fill_seconds=5)
    station, task = await start_station(path)
    try:
        yield RunningStation(station, path, f"http://127.0.0.1:{station.port}")
    finally:
        station.request_stop()
        await asyncio.wait_for(task, 20)


def _authorization(running: RunningStation, auth_id: str) -> str:
    auth = running.station.store.get_authorization(auth_id)
    assert auth is not None
    return auth.state


async def _health(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/api/v1/health")
    body: dict[str, Any] = response.json()
    return body


async def test_a_stop_before_the_lift_releases_the_authorization(
        sim: Simulator, running: RunningStation) -> None:
    client = await running.client()
    await wait_pump_state(client, 1, "idle")
    r = await client.post("/api/v1/nozzles/1/authorize", json={"preset": {"volume": "5.00"}})
    assert r.status_code == 202, r.text
    first = r.json()["authorization_id"]
    await wait_pump_state(client, 1, "authorized")
    stop = await client.post("/api/v1/pumps/1/stop")
    assert stop.status_code in (200, 202), stop.text
    await wait_until(lambda: _authorization(running, first) == "cancelled", timeout=10,
                     what="the stopped authorization cancelled")
    # Latched as stopped by the station until an attendant resets it (a repeat is harmless).
    view = await wait_pump_state(client, 1, "stopped")
    assert view["authorization_id"] is None
    assert (await client.post("/api/v1/pumps/1/stop")).status_code == 202
    held = await client.post("/api/v1/nozzles/1/authorize", json={})
    assert held.status_code == 409 and held.json()["error"]["code"] == "pump_stopped"
    reset = await client.post("/api/v1/pumps/1/reset")
    assert reset.status_code == 200 and reset.json()["reset"] is True
    await wait_pump_state(client, 1, "idle")
    # The pump is sellable again: no restart needed.
    again = await client.post("/api/v1/nozzles/1/authorize", json={"preset": {"volume": "2.00"}})
    assert again.status_code == 202, again.text
    await client.aclose()


async def test_an_attendant_authorization_nobody_uses_expires(
        sim: Simulator, tuned: RunningStation) -> None:
    client = await tuned.client()
    await wait_pump_state(client, 1, "idle")
    r = await client.post("/api/v1/nozzles/1/authorize", json={})
    assert r.status_code == 202, r.text
    auth_id = r.json()["authorization_id"]
    await wait_pump_state(client, 1, "authorized")
    # lift_timeout_seconds = 10: taken back at the pump, recorded as expired.
    await wait_pump_state(client, 1, "idle", timeout=25)
    auth = tuned.station.store.get_authorization(auth_id)
    assert auth is not None and auth.state == "expired"
    assert sim.pump(PUMP1).status.name == "RESET"
    await client.aclose()


async def test_a_final_filling_that_cannot_be_read_is_recorded_once_it_can(
        sim: Simulator, tuned: RunningStation) -> None:
    client = await tuned.client()
    await wait_pump_state(client, 1, "idle")
    r = await client.post("/api/v1/nozzles/1/authorize", json={"preset": {"volume": "2.00"}})
    assert r.status_code == 202, r.text
    await wait_pump_state(client, 1, "authorized")
    # From now on the pump's DC2 carries bytes that are not BCD (well framed, good CRC): the
    # running figures and the final ones.
    sim.set_meter_fault(PUMP1, MeterFault(garbled=True))
    sim.lift(PUMP1, 1)
    await wait_until(lambda: dispensed(sim, PUMP1) == 200, timeout=15, what="the preset filled")
    sim.hang(PUMP1, 1)
    await wait_pump_state(client, 1, "completing")
    # After unreadable_fill_seconds the pump is shown out of service, health degraded.
    view = await wait_until(
        lambda: _with_alarm(client, 1, "unreadable_fill"), timeout=20,
        what="the unreadable-fill alarm")
    assert view["state"] == "completing"
    assert (await _health(client))["status"] == "degraded"
    assert await sales(client) == []
    refused = await client.post("/api/v1/nozzles/2/authorize", json={})
    assert refused.status_code == 409
    # The line heals: the sale is recorded exactly, the pump sells again, nothing restarted.
    sim.set_meter_fault(PUMP1, None)
    (sale,) = await wait_sales(client, 1, timeout=40)
    assert Decimal(sale["volume"]) == Decimal("2.00") == sim.fills()[0].volume_decimal
    view = await wait_pump_state(client, 1, "idle", "calling")
    assert "unreadable_fill" not in {a["kind"] for a in view["alarms"]}
    assert (await _health(client))["status"] == "ok"
    again = await client.post("/api/v1/nozzles/1/authorize", json={"preset": {"volume": "1.00"}})
    assert again.status_code == 202, again.text
    await client.aclose()


async def _with_alarm(client: httpx.AsyncClient, pump: int, kind: str) -> dict[str, Any] | None:
    view = await pump_view(client, pump)
    return view if kind in {a["kind"] for a in view["alarms"]} else None


async def test_impossible_figures_are_recorded_flagged_and_take_the_pump_out_of_service(
        sim: Simulator, running: RunningStation) -> None:
    client = await running.client()
    boss = await running.client("boss")
    await wait_pump_state(client, 1, "idle")
    r = await client.post("/api/v1/nozzles/1/authorize", json={"preset": {"volume": "1.00"}})
    assert r.status_code == 202, r.text
    await wait_pump_state(client, 1, "authorized")
    # A broken counter: the pump says 999,999.99 L while its totals move 1.00 L.
    sim.set_meter_fault(PUMP1, MeterFault(volume=99_999_999, amount=99_999_999))
    sim.lift(PUMP1, 1)
    await wait_until(lambda: dispensed(sim, PUMP1) == 100, timeout=15, what="the preset filled")
    sim.hang(PUMP1, 1)
    (sale,) = await wait_sales(client, 1)
    assert sale["volume"] == "999999.99"  # the pump's figures, as it gave them
    assert "impossible_figures" in sale["flags"]
    view = await wait_pump_state(client, 1, "idle", "calling")
    assert view["out_of_service"] is not None
    assert view["out_of_service"]["reason"] == "impossible_figures"
    assert (await _health(client))["status"] == "degraded"
    sim.set_meter_fault(PUMP1, None)
    refused = await client.post("/api/v1/nozzles/1/authorize", json={})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "pump_out_of_service"
    # Only a manager releases it.
    denied = await client.post("/api/v1/pumps/1/release", json={"reason": "checked"})
    assert denied.status_code == 403
    released = await boss.post("/api/v1/pumps/1/release",
                               json={"reason": "meter checked by the technician"})
    assert released.status_code == 200, released.text
    view = await pump_view(client, 1)
    assert view["out_of_service"] is None
    assert (await _health(client))["status"] == "ok"
    again = await client.post("/api/v1/nozzles/1/authorize", json={"preset": {"volume": "1.00"}})
    assert again.status_code == 202, again.text
    audit = await boss.get("/api/v1/audit", params={"limit": 100})
    assert any(e["action"] == "pump.release" for e in audit.json()["entries"])
    await client.aclose()
    await boss.aclose()


async def test_a_pump_released_from_the_command_line_sells_again(
        sim: Simulator, running: RunningStation) -> None:
    client = await running.client()
    await wait_pump_state(client, 1, "idle")
    pump = running.station.forecourt.pumps[1]
    await pump.take_out_of_service("impossible_figures", sale_id="test")
    refused = await client.post("/api/v1/nozzles/1/authorize", json={})
    assert refused.json()["error"]["code"] == "pump_out_of_service"
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "edge.cli", "pump", "release", "1", "--reason",
                         "technician checked the meter", "--user", "li",
                         "--config", str(running.config_path)],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    # The daemon sees the release in the ledger.
    await wait_until(lambda: pump.out_of_service is None, timeout=15,
                     what="the daemon to see the release")
    again = await client.post("/api/v1/nozzles/1/authorize", json={})
    assert again.status_code == 202, again.text
    await client.aclose()


async def test_a_pump_that_does_not_take_its_prices_raises_an_alarm_and_recovers(
        sim: Simulator, tmp_path: Path) -> None:
    sim.set_meter_fault(PUMP1, MeterFault(price_offset=10))  # shows 7.60 for 7.50
    assert sim.url is not None
    path = _config(tmp_path, sim.url)
    station, task = await start_station(path)
    running = RunningStation(station, path, f"http://127.0.0.1:{station.port}")
    try:
        client = await running.client()
        view = await wait_until(lambda: _with_alarm(client, 1, "price_readback_mismatch"),
                                timeout=20, what="the read-back alarm")
        assert view["state"] == "not_programmed"
        assert (await _health(client))["status"] == "degraded"
        refused = await client.post("/api/v1/nozzles/1/authorize", json={})
        assert refused.status_code == 409
        # The pump takes its prices again: start-up retries, the alarm clears, it sells.
        sim.set_meter_fault(PUMP1, None)
        view = await wait_pump_state(client, 1, "idle", timeout=45)
        assert "price_readback_mismatch" not in {a["kind"] for a in view["alarms"]}
        assert (await _health(client))["status"] == "ok"
        ok = await client.post("/api/v1/nozzles/1/authorize", json={})
        assert ok.status_code == 202, ok.text
        await client.aclose()
    finally:
        station.request_stop()
        await asyncio.wait_for(task, 20)
