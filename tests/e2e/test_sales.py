"""A sale from authorization to the durable record, against the simulator over a real socket."""

from __future__ import annotations

from decimal import Decimal

from simulator.control import Simulator
from simulator.metering import raw_to_decimal
from tests.e2e.conftest import RunningStation, dispensed, sales, wait_pump_state, wait_sales
from tests.helpers import wait_until

PUMP1 = 0x50
PUMP2 = 0x51


async def fill_done(sim: Simulator, count: int) -> None:
    await wait_until(lambda: len(sim.fills()) >= count, timeout=20, what=f"{count} fill(s)")


async def test_preset_amount_stops_at_the_preset_and_matches_the_pump(
        sim: Simulator, running: RunningStation) -> None:
    client = await running.client("att")
    await wait_pump_state(client, 1, "idle")
    response = await client.post("/api/v1/nozzles/1/authorize",
                                 json={"preset": {"amount": "100.00"}})
    assert response.status_code == 202, response.text
    assert response.json()["authorization_id"]
    await wait_pump_state(client, 1, "authorized")

    sim.lift(PUMP1, 1)
    await fill_done(sim, 1)
    sim.hang(PUMP1, 1)
    fill = sim.fills()[0]
    assert fill.end.value == "preset"
    (sale,) = await wait_sales(client, 1)

    assert sale["amount"] == "100.00"
    assert Decimal(sale["volume"]) == fill.volume_decimal == Decimal("13.33")
    assert Decimal(sale["amount"]) == fill.amount_decimal
    assert sale["price"] == "7.50"
    assert sale["nozzle"] == 1 and sale["grade"] == "92"
    assert sale["recovered"] is False
    assert sale["authorization_id"] == response.json()["authorization_id"]
    totals = sale["totals"]
    delta = Decimal(totals["volume_after"]) - Decimal(totals["volume_before"])
    assert delta == Decimal(sale["volume"])
    assert Decimal(totals["volume_after"]) == raw_to_decimal(fill.volume_total_after, 2)
    await wait_pump_state(client, 1, "idle")
    await client.aclose()


async def test_hanging_up_early_records_the_partial_sale(
        sim: Simulator, running: RunningStation) -> None:
    client = await running.client("att")
    await wait_pump_state(client, 1, "idle")
    response = await client.post("/api/v1/nozzles/2/authorize",
                                 json={"preset": {"amount": "500.00"}})
    assert response.status_code == 202, response.text
    sim.lift(PUMP1, 2)
    await wait_pump_state(client, 1, "fuelling")
    await wait_until(lambda: dispensed(sim, PUMP1) > 300, timeout=10, what="3 L dispensed")
    sim.hang(PUMP1, 2)
    await fill_done(sim, 1)
    fill = sim.fills()[0]
    assert fill.end.value == "nozzle_in"
    (sale,) = await wait_sales(client, 1)
    assert Decimal(sale["volume"]) == fill.volume_decimal
    assert Decimal(sale["amount"]) == fill.amount_decimal
    assert Decimal(sale["amount"]) < Decimal("500.00")
    assert sale["grade"] == "95" and sale["price"] == "8.02"
    await client.aclose()


async def test_two_identical_sales_in_a_row_are_two_sales(
        sim: Simulator, running: RunningStation) -> None:
    client = await running.client("att")
    for round_ in (1, 2):
        await wait_pump_state(client, 1, "idle")
        response = await client.post("/api/v1/nozzles/1/authorize",
                                     json={"preset": {"volume": "5.00"}})
        assert response.status_code == 202, response.text
        sim.lift(PUMP1, 1)
        await fill_done(sim, round_)
        sim.hang(PUMP1, 1)
        await wait_sales(client, round_)
    first, second = await sales(client)
    assert first["id"] != second["id"]
    assert first["seq"] < second["seq"]
    for key in ("volume", "amount", "price", "nozzle"):
        assert first[key] == second[key]
    assert first["volume"] == "5.00"
    assert first["totals"]["volume_after"] == second["totals"]["volume_before"]
    await client.aclose()


async def test_attendant_mode_gives_no_fuel_without_an_authorization(
        sim: Simulator, running: RunningStation) -> None:
    client = await running.client("att")
    await wait_pump_state(client, 1, "idle")
    sim.lift(PUMP1, 1)
    view = await wait_pump_state(client, 1, "calling")
    assert view["nozzles"][0]["state"] == "calling"
    sim.hang(PUMP1, 1)
    await wait_pump_state(client, 1, "idle")
    assert sim.fills() == []
    assert await sales(client) == []
    await client.aclose()


async def test_auto_mode_authorizes_on_lift_and_records_the_sale(
        sim: Simulator, running: RunningStation) -> None:
    client = await running.client("att")
    await wait_pump_state(client, 2, "idle")
    sim.lift(PUMP2, 1)
    await wait_pump_state(client, 2, "fuelling")
    await wait_until(lambda: dispensed(sim, PUMP2) > 100, timeout=10, what="fuel flowing")
    sim.hang(PUMP2, 1)
    await fill_done(sim, 1)
    (sale,) = await wait_sales(client, 1)
    assert sale["nozzle"] == 3
    assert Decimal(sale["volume"]) == sim.fills()[0].volume_decimal
    await client.aclose()


async def test_a_busy_nozzle_is_refused_with_409(
        sim: Simulator, running: RunningStation) -> None:
    client = await running.client("att")
    await wait_pump_state(client, 1, "idle")
    ok = await client.post("/api/v1/nozzles/1/authorize", json={})
    assert ok.status_code == 202, ok.text
    again = await client.post("/api/v1/nozzles/2/authorize", json={})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "nozzle_busy"
    await client.aclose()


async def test_the_next_customer_lifting_another_nozzle_does_not_move_the_sale(
        sim: Simulator, running: RunningStation) -> None:
    client = await running.client()
    await wait_pump_state(client, 1, "idle")
    r = await client.post("/api/v1/nozzles/2/authorize", json={})
    assert r.status_code == 202, r.text
    sim.lift(PUMP1, 2)
    await wait_until(lambda: dispensed(sim, PUMP1) > 100, timeout=15, what="a litre")
    # Hung up and, at once, the next customer lifts nozzle 1: before the sale is even read.
    sim.hang(PUMP1, 2)
    sim.lift(PUMP1, 1)
    (sale,) = await wait_sales(client, 1)
    (fill,) = sim.fills()
    assert (sale["nozzle"], sale["grade"]) == (2, "95")
    assert Decimal(sale["volume"]) == fill.volume_decimal > 1
    assert Decimal(sale["totals"]["volume_after"]) == Decimal(fill.volume_total_after) / 100
    sim.hang(PUMP1, 1)
    await client.aclose()
