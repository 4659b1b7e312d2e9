"""A dispenser power-cycled: prices programmed again, and a filling cut by the power failure
is still recorded from the pump's totals and last filling."""

from __future__ import annotations

from decimal import Decimal

from simulator.control import Simulator
from tests.e2e.conftest import RunningStation, wait_pump_state, wait_sales
from tests.helpers import wait_until

PUMP1 = 0x50


async def test_a_power_cycled_pump_is_programmed_again_and_sells(
        sim: Simulator, running: RunningStation) -> None:
    client = await running.client()
    await wait_pump_state(client, 1, "idle")
    sim.power_cycle(PUMP1)
    await wait_until(lambda: sim.pump(PUMP1).prices != {}, timeout=10,
                     what="prices programmed again")
    await wait_pump_state(client, 1, "idle")
    r = await client.post("/api/v1/nozzles/1/authorize", json={"preset": {"volume": "2.00"}})
    assert r.status_code == 202, r.text
    sim.lift(PUMP1, 1)
    await wait_until(lambda: len(sim.fills()) == 1, timeout=15, what="the fill")
    sim.hang(PUMP1, 1)
    (sale,) = await wait_sales(client, 1)
    assert sale["volume"] == "2.00" and sale["price"] == "7.50"
    await client.aclose()


async def test_a_filling_cut_by_a_power_failure_is_recorded(
        sim: Simulator, running: RunningStation) -> None:
    client = await running.client()
    await wait_pump_state(client, 1, "idle")
    r = await client.post("/api/v1/nozzles/1/authorize", json={"preset": {"amount": "500.00"}})
    assert r.status_code == 202, r.text
    sim.lift(PUMP1, 1)
    await wait_pump_state(client, 1, "fuelling")
    await wait_until(lambda: (sim.tick(), sim.pump(PUMP1).filling_info[0])[1] > 300,
                     timeout=10, what="3 L dispensed")
    sim.power_cycle(PUMP1)
    sim.hang(PUMP1, 1)
    await wait_until(lambda: len(sim.fills()) == 1, timeout=10, what="the cut filling")
    fill = sim.fills()[0]
    assert fill.end.value == "power_failure"
    (sale,) = await wait_sales(client, 1)
    assert Decimal(sale["volume"]) == fill.volume_decimal
    assert Decimal(sale["amount"]) == fill.amount_decimal
    delta = Decimal(sale["totals"]["volume_after"]) - Decimal(sale["totals"]["volume_before"])
    assert delta == Decimal(sale["volume"])
    await wait_pump_state(client, 1, "idle")
    await client.aclose()
