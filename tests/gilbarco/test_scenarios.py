"""The sale scenarios against a real station on a Gilbarco line served by the simulator.

Each scenario drives the station through its API and the customer through the simulator, and
checks the recorded sale against what the simulated pump really dispensed.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from simulator.gilbarco import EndProfile
from simulator.metering import Decimals
from simulator.records import FillEnd
from tests.helpers import wait_until

from .station import GilbarcoStation, gilbarco_station, pump_view, wait_sales, wait_state

MODES = [pytest.param(False, False, id="standard"),
         pytest.param(True, True, id="8-digit-echo")]


async def fills(run: GilbarcoStation, count: int) -> None:
    await wait_until(lambda: len(run.sim.fills()) >= count, what=f"{count} fill(s)")


@pytest.mark.parametrize(("echo", "eight"), MODES)
async def test_preset_amount(tmp_path: Path, echo: bool, eight: bool) -> None:
    async with gilbarco_station(tmp_path, echo=echo, eight_digits=eight) as run:
        client = await run.client()
        await wait_state(client, 1, "idle")
        response = await client.post("/api/v1/nozzles/1/authorize",
                                     json={"preset": {"amount": "20.00"}})
        assert response.status_code == 202, response.text
        await wait_state(client, 1, "authorized")
        run.sim.lift(1, 1)
        await fills(run, 1)
        run.sim.hang(1, 1)
        (sale,) = await wait_sales(client, 1)
        fill = run.sim.fills()[0]
        assert fill.end is FillEnd.PRESET
        assert sale["amount"] == "20.00" == str(fill.amount_decimal)
        assert Decimal(sale["volume"]) == fill.volume_decimal
        assert sale["price"] == "7.50" and sale["nozzle"] == 1 and sale["grade"] == "92"
        totals = sale["totals"]
        assert Decimal(totals["volume_after"]) - Decimal(totals["volume_before"]) == Decimal(
            sale["volume"])
        await wait_state(client, 1, "idle")
        await client.aclose()


@pytest.mark.parametrize(("echo", "eight"), MODES)
async def test_preset_volume_on_the_second_hose_with_the_nozzle_up_first(
        tmp_path: Path, echo: bool, eight: bool) -> None:
    async with gilbarco_station(tmp_path, echo=echo, eight_digits=eight) as run:
        client = await run.client()
        await wait_state(client, 1, "idle")
        run.sim.lift(1, 2)
        view = await wait_state(client, 1, "calling")
        assert view["protocol"]["status"] == "calling"
        response = await client.post("/api/v1/nozzles/2/authorize",
                                     json={"preset": {"volume": "3.00"}})
        assert response.status_code == 202, response.text
        await fills(run, 1)
        run.sim.hang(1, 2)
        (sale,) = await wait_sales(client, 1)
        fill = run.sim.fills()[0]
        assert (sale["volume"], sale["grade"], sale["price"]) == ("3.00", "95", "8.02")
        assert Decimal(sale["amount"]) == fill.amount_decimal == Decimal("24.06")
        await client.aclose()


async def test_full_fill_early_hang_up_and_running_figures(tmp_path: Path) -> None:
    async with gilbarco_station(tmp_path, flow_lpm=Decimal(60)) as run:
        client = await run.client()
        await wait_state(client, 1, "idle")
        response = await client.post("/api/v1/nozzles/1/authorize", json={})
        assert response.status_code == 202, response.text
        run.sim.lift(1, 1)
        await wait_state(client, 1, "fuelling")

        async def running() -> bool:
            nozzle = (await pump_view(client, 1))["nozzles"][0]
            return Decimal(nozzle["amount"]) > 0 and Decimal(nozzle["volume"]) > 0
        await wait_until(running, what="running figures in the forecourt view")
        run.sim.hang(1, 1)
        (sale,) = await wait_sales(client, 1)
        fill = run.sim.fills()[0]
        assert fill.end is FillEnd.NOZZLE_IN
        assert Decimal(sale["volume"]) == fill.volume_decimal > 0
        assert Decimal(sale["amount"]) == fill.amount_decimal
        await client.aclose()


async def test_two_identical_sales_are_two_sales(tmp_path: Path) -> None:
    async with gilbarco_station(tmp_path) as run:
        client = await run.client()
        for count in (1, 2):
            await wait_state(client, 1, "idle")
            response = await client.post("/api/v1/nozzles/1/authorize",
                                         json={"preset": {"volume": "2.00"}})
            assert response.status_code == 202, response.text
            run.sim.lift(1, 1)
            await fills(run, count)
            run.sim.hang(1, 1)
            await wait_sales(client, count)
        first, second = await wait_sales(client, 2)
        assert (first["volume"], first["amount"]) == (second["volume"], second["amount"])
        assert first["id"] != second["id"]
        await client.aclose()


async def test_stop_mid_fill_records_what_flowed(tmp_path: Path) -> None:
    async with gilbarco_station(tmp_path, flow_lpm=Decimal(60)) as run:
        client = await run.client()
        await wait_state(client, 1, "idle")
        await client.post("/api/v1/nozzles/1/authorize", json={"preset": {"amount": "100.00"}})
        run.sim.lift(1, 1)
        await wait_state(client, 1, "fuelling")
        await wait_until(lambda: run.sim.pump(1).sale.volume > 0, what="some fuel")
        response = await client.post("/api/v1/pumps/1/stop")
        assert response.status_code in (200, 202), response.text
        await wait_until(lambda: (run.sim.tick(), run.sim.pump(1).status.name)[1] == "STOPPED",
                         what="stopped")
        run.sim.hang(1, 1)
        (sale,) = await wait_sales(client, 1)
        fill = run.sim.fills()[0]
        assert fill.end is FillEnd.STOP
        assert Decimal(sale["amount"]) == fill.amount_decimal < Decimal("100.00")
        await client.aclose()


async def test_auto_authorize_on_the_pump_at_address_sixteen(tmp_path: Path) -> None:
    async with gilbarco_station(tmp_path) as run:
        client = await run.client()
        await wait_state(client, 2, "idle")
        run.sim.lift(16, 1)
        await wait_until(lambda: run.sim.pump(16).sale.volume > 100, what="auto fill")
        run.sim.hang(16, 1)
        (sale,) = await wait_sales(client, 1)
        assert sale["nozzle"] == 3
        assert Decimal(sale["volume"]) == run.sim.fills()[0].volume_decimal
        await client.aclose()


async def test_price_change_when_idle_is_read_back_from_the_totals(tmp_path: Path) -> None:
    async with gilbarco_station(tmp_path) as run:
        client = await run.client("boss")
        await wait_state(client, 1, "idle")
        run.sim.lift(1, 2)  # a customer waits at pump 1: its prices wait until it is idle
        await wait_state(client, 1, "calling")
        response = await client.post("/api/v1/prices", json={"prices": {"92": "7.62"}})
        assert response.status_code in (200, 201, 202), response.text
        await wait_until(lambda: run.sim.pump(16).prices[1] == 762, what="pump 16 priced")
        assert run.sim.pump(1).prices[1] == 750
        run.sim.hang(1, 2)
        await wait_until(lambda: run.sim.pump(1).prices[1] == 762, what="pump 1 priced")
        await wait_state(client, 1, "idle")
        response = await client.post("/api/v1/nozzles/1/authorize",
                                     json={"preset": {"amount": "7.62"}})
        assert response.status_code == 202, response.text
        run.sim.lift(1, 1)
        await fills(run, 1)
        run.sim.hang(1, 1)
        (sale,) = await wait_sales(client, 1)
        assert (sale["price"], sale["volume"], sale["amount"]) == ("7.62", "1.00", "7.62")
        await client.aclose()


async def test_offline_and_back(tmp_path: Path) -> None:
    async with gilbarco_station(tmp_path) as run:
        client = await run.client()
        await wait_state(client, 1, "idle")
        run.sim.set_fault(1, silent=True)
        await wait_until(lambda: _offline(client), what="pump 1 offline")
        response = await client.post("/api/v1/nozzles/1/authorize", json={})
        assert response.status_code >= 400
        run.sim.clear_faults(1)
        await wait_state(client, 1, "idle")
        response = await client.post("/api/v1/nozzles/1/authorize",
                                     json={"preset": {"amount": "10.00"}})
        assert response.status_code == 202, response.text
        run.sim.lift(1, 1)
        await fills(run, 1)
        run.sim.hang(1, 1)
        await wait_sales(client, 1)
        await client.aclose()


async def _offline(client: httpx.AsyncClient) -> bool:
    view = await pump_view(client, 1)
    return not view["online"]


async def test_a_data_error_is_cleared_and_the_pump_sells_on(tmp_path: Path) -> None:
    async with gilbarco_station(tmp_path) as run:
        client = await run.client()
        await wait_state(client, 1, "idle")
        run.sim.data_error(1)
        await wait_until(lambda: not run.sim.pump(1).data_error, what="the totals read")
        response = await client.post("/api/v1/nozzles/1/authorize",
                                     json={"preset": {"amount": "5.00"}})
        assert response.status_code == 202, response.text
        run.sim.lift(1, 1)
        await fills(run, 1)
        run.sim.hang(1, 1)
        await wait_sales(client, 1)
        await client.aclose()


@pytest.mark.parametrize("end", [EndProfile(needs_read=False, hold=0.5),
                                 EndProfile(needs_hangup=False)],
                         ids=["idle-without-read", "idle-without-hang-up"])
async def test_end_of_sale_profiles(tmp_path: Path, end: EndProfile) -> None:
    async with gilbarco_station(tmp_path, end=end) as run:
        client = await run.client()
        for count in (1, 2):
            await wait_state(client, 1, "idle")
            response = await client.post("/api/v1/nozzles/1/authorize",
                                         json={"preset": {"amount": "5.00"}})
            assert response.status_code == 202, response.text
            run.sim.lift(1, 1)
            await fills(run, count)
            await wait_sales(client, count)
            run.sim.hang(1, 1)
        assert [s["amount"] for s in await wait_sales(client, 2)] == ["5.00", "5.00"]
        await client.aclose()


async def test_pump_decimals_that_disagree_block_sales(tmp_path: Path) -> None:
    wrong = Decimals(volume=3, amount=2, price=2)
    async with gilbarco_station(tmp_path, decimals=wrong) as run:
        client = await run.client()

        async def blocked() -> bool:
            view = await pump_view(client, 1)
            return any(a["kind"] == "decimals_mismatch" for a in view["alarms"])
        await wait_until(blocked, what="the decimals alarm")
        response = await client.post("/api/v1/nozzles/1/authorize", json={})
        assert response.status_code == 409, response.text
        await client.aclose()


async def test_a_pump_that_keeps_its_configuration_to_itself_sells_on_config_decimals(
        tmp_path: Path) -> None:
    async with gilbarco_station(tmp_path, answers_config=False) as run:
        client = await run.client()
        view = await wait_state(client, 1, "idle")
        assert view["protocol"]["configuration"] == "not answered"
        response = await client.post("/api/v1/nozzles/1/authorize",
                                     json={"preset": {"amount": "5.00"}})
        assert response.status_code == 202, response.text
        run.sim.lift(1, 1)
        await fills(run, 1)
        run.sim.hang(1, 1)
        (sale,) = await wait_sales(client, 1)
        assert sale["amount"] == "5.00"
        await client.aclose()
