"""The sale scenarios against a real station on a Gilbarco line served by the simulator."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.helpers import wait_until

from .station import gilbarco_station, wait_sales, wait_state

MODES = [pytest.param(False, False, id="standard"),
         pytest.param(True, True, id="8-digit-echo")]


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
        await wait_until(lambda: run.sim.fills(), what="the fill")
        run.sim.hang(1, 1)
        (sale,) = await wait_sales(client, 1)
        fill = run.sim.fills()[0]
        assert sale["amount"] == "20.00" == str(fill.amount_decimal)
        assert Decimal(sale["volume"]) == fill.volume_decimal
        assert sale["price"] == "7.50" and sale["nozzle"] == 1
        await wait_state(client, 1, "idle")
        await client.aclose()
