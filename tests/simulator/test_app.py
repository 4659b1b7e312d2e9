"""The HTTP control API, in process through httpx, and once served for real."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal

import httpx
import pytest

from drivers.dart.transactions import CD1, CD4, CD5, PumpCommand, PumpStatus
from simulator.app import create_app
from simulator.control import Simulator, make_pumps, run_simulator

from .conftest import FakeClock

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")


@pytest.fixture
def sim(clock: FakeClock) -> Simulator:
    return Simulator(make_pumps(2), clock=clock, seed=5)


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(sim))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        yield client


def authorize(sim: Simulator, amount: int) -> None:
    pump = sim.pumps[0x50]
    now = sim.clock()
    pump.apply([CD5((750, 800)), CD1(PumpCommand.RESET), CD4(amount)], now)
    pump.apply([CD1(PumpCommand.AUTHORIZE)], now)


async def test_state_shows_pumps_with_decimal_strings(
    client: httpx.AsyncClient, sim: Simulator
) -> None:
    authorize(sim, 10000)
    response = await client.get("/state")
    assert response.status_code == 200
    pumps = response.json()["pumps"]
    assert [p["address"] for p in pumps] == [0x50, 0x51]
    first = pumps[0]
    assert first["status"] == "authorized" and first["status_code"] == 2
    assert first["preset"] == {"amount": "100.00"}
    assert first["nozzles"][0] == {
        "logical": 1,
        "grade": 92,
        "price": "7.50",
        "out": False,
        "totals": {"volume": "0.00", "amount": "0.00"},
    }
    assert pumps[1]["status"] == "not_programmed"


async def test_lift_fuel_hang_and_read_the_fill(
    client: httpx.AsyncClient, sim: Simulator, clock: FakeClock
) -> None:
    authorize(sim, 10000)
    response = await client.post("/pumps/0x50/nozzles/1/lift")
    assert response.status_code == 200
    assert response.json()["status"] == "filling"
    clock.advance(4.5)  # 0.5 L ramp + 3 s x 2/3 L/s = 2.50 L
    response = await client.post("/pumps/80/nozzles/1/hang")
    assert response.json()["volume"] == "2.50" and response.json()["amount"] == "18.75"
    fills = (await client.get("/fills")).json()["fills"]
    assert len(fills) == 1
    fill = fills[0]
    assert (fill["pump"], fill["nozzle"], fill["volume"], fill["amount"], fill["price"]) == (
        0x50,
        1,
        "2.50",
        "18.75",
        "7.50",
    )
    assert (fill["volume_total_before"], fill["volume_total_after"]) == ("0.00", "2.50")
    assert fill["end"] == "nozzle_in"
    started = datetime.fromisoformat(fill["started_at"])
    ended = datetime.fromisoformat(fill["ended_at"])
    assert started.tzinfo is not None  # RFC 3339 with an offset
    assert (ended - started).total_seconds() == pytest.approx(4.5, abs=1e-3)
    assert (await client.get("/fills", params={"pump": "0x51"})).json() == {"fills": []}


async def test_flow_power_cycle_and_alarm(client: httpx.AsyncClient, sim: Simulator) -> None:
    response = await client.post("/pumps/0x50/flow", json={"lpm": "25.5"})
    assert response.json()["flow_lpm"] == "25.5"
    assert sim.pumps[0x50].flow_lpm == Decimal("25.5")
    authorize(sim, 10000)
    response = await client.post("/pumps/0x50/power-cycle")
    assert response.json()["status"] == "not_programmed"
    response = await client.post("/pumps/0x50/alarms", json={"code": 9})
    assert response.json()["alarms"] == [9]


async def test_faults_per_pump_and_line(client: httpx.AsyncClient, sim: Simulator) -> None:
    response = await client.post("/pumps/0x51/faults", json={"silent": True, "delay_ms": 150})
    assert response.json() == {"silent": True, "corrupt": 0.0, "drop": 0.0,
                               "delay_ms": 150.0}
    assert sim.faults.for_pump(0x51).delay == pytest.approx(0.15)
    await client.post("/faults", json={"corrupt": 0.25})
    assert sim.faults.for_pump(0x50).corrupt == 0.25
    state = (await client.get("/state")).json()
    assert state["line"]["faults"]["corrupt"] == 0.25
    assert state["pumps"][1]["faults"]["silent"] is True
    await client.delete("/pumps/0x51/faults")
    assert not sim.faults.for_pump(0x51).silent
    await client.delete("/faults")
    assert sim.faults.for_pump(0x50).corrupt == 0.0


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("post", "/pumps/0x60/nozzles/1/lift", None, 404, "unknown_pump"),
        ("post", "/pumps/pump1/nozzles/1/lift", None, 404, "unknown_pump"),
        ("post", "/pumps/0x50/nozzles/9/lift", None, 409, "refused"),
        ("post", "/pumps/0x50/nozzles/1/hang", None, 409, "refused"),
        ("post", "/pumps/0x50/faults", {"corrupt": 1.5}, 400, "invalid_request"),
        ("post", "/pumps/0x50/faults", {"bogus": True}, 400, "invalid_request"),
        ("post", "/pumps/0x50/flow", {"lpm": "fast"}, 400, "invalid_request"),
        ("post", "/pumps/0x50/alarms", {"code": 300}, 400, "invalid_request"),
    ],
)
async def test_errors_are_4xx_with_a_code(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: object,
    status: int,
    code: str,
) -> None:
    response = await client.request(method, path, json=body)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]


async def test_lift_twice_is_refused(client: httpx.AsyncClient) -> None:
    assert (await client.post("/pumps/0x50/nozzles/1/lift")).status_code == 200
    response = await client.post("/pumps/0x50/nozzles/2/lift")
    assert response.status_code == 409
    assert "already out" in response.json()["error"]["message"]


async def test_control_api_served_for_real() -> None:
    async with run_simulator(1, control_port=0) as sim:
        assert sim.control_url is not None
        async with httpx.AsyncClient(base_url=sim.control_url) as client:
            response = await client.post("/pumps/0x50/nozzles/2/lift")
            assert response.status_code == 200
            assert sim.pumps[0x50].nozzle_out == 2
            state = (await client.get("/state")).json()
            assert state["line"]["url"] == sim.url
            assert state["pumps"][0]["status"] == PumpStatus.NOT_PROGRAMMED.name.lower()
