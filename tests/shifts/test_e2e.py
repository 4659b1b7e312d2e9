"""Shift close end to end: the daemon against the pump simulator over a real socket."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

from domain.model import TotalsReading, rfc3339
from drivers.printer.document import Document, Text
from simulator.control import Simulator
from simulator.metering import raw_to_decimal
from simulator.records import FillRecord
from sync.schemas import DataRequest
from tests.e2e.conftest import (
    RunningStation,
    start_station,
    wait_pump_state,
    wait_sales,
    write_config,
)
from tests.helpers import wait_until

PUMP1 = 0x50


class Receipts:
    """Stands for the receipt queue: records what it was asked to print."""

    def __init__(self) -> None:
        self.printed: list[tuple[Document, str, str]] = []

    async def print_document(self, document: Document, *, kind: str = "document",
                             ref: str = "", copies: int = 1) -> SimpleNamespace:
        self.printed.append((document, kind, ref))
        return SimpleNamespace(queued=True, message="queued")


async def sell(sim: Simulator, client: httpx.AsyncClient, nozzle: int, volume: str,
               count: int) -> FillRecord:
    """A preset-volume sale on pump 1's `nozzle`; `count` fills in all once it is done."""
    await wait_pump_state(client, 1, "idle")
    response = await client.post(f"/api/v1/nozzles/{nozzle}/authorize",
                                 json={"preset": {"volume": volume}})
    assert response.status_code == 202, response.text
    sim.lift(PUMP1, nozzle)
    await wait_until(lambda: len(sim.fills()) >= count, timeout=20, what=f"fill {count}")
    sim.hang(PUMP1, nozzle)
    await wait_sales(client, count)
    return sim.fills()[-1]


def litres(raw: int) -> str:
    return format(raw_to_decimal(raw, 2), "f")


async def test_close_reports_each_nozzle_against_the_pump(
        sim: Simulator, running: RunningStation) -> None:
    att = await running.client("att")
    first = await sell(sim, att, 1, "5.00", 1)
    second = await sell(sim, att, 2, "2.00", 2)
    sales = await wait_sales(att, 2)
    cashier = await running.client("cash")
    paid = await cashier.post(f"/api/v1/sales/{sales[0]['id']}/payments",
                              json={"method": "cash", "amount": sales[0]["amount"]})
    assert paid.status_code == 201, paid.text

    current = await att.get("/api/v1/shifts/current")
    assert current.status_code == 200, current.text
    assert current.json()["shift_id"] == 1 and current.json()["status"] == "open"
    assert current.json()["counts"]["sales"] == 2
    refused = await cashier.post("/api/v1/shifts/current/close")
    assert refused.status_code == 403

    boss = await running.client("boss")
    # One sale is unpaid: the close is refused until a reason is given (edge/shift_close.py).
    refused = await boss.post("/api/v1/shifts/current/close")
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "shift_not_clear"
    response = await boss.post("/api/v1/shifts/current/close",
                               json={"reason": "the driver pays tomorrow"})
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["shift_id"], report["status"], report["closed_by"]) == (1, "closed", "boss")
    assert report["closed_at"].endswith("+08:00")
    nozzles = {line["nozzle"]: line for line in report["nozzles"]}
    assert set(nozzles) == {1, 2, 3, 4}
    for nozzle, fill, grade in ((1, first, "92"), (2, second, "95")):
        line = nozzles[nozzle]
        assert line["grade"] == grade
        assert line["open"]["volume_total"] == litres(fill.volume_total_before)
        assert line["close"]["volume_total"] == litres(fill.volume_total_after)
        assert line["close"]["amount_total"] == litres(fill.amount_total_after)
        assert Decimal(line["delta"]["volume"]) == fill.volume_decimal
        assert Decimal(line["sales"]["volume"]) == fill.volume_decimal
        assert Decimal(line["sales"]["amount"]) == fill.amount_decimal
        assert line["difference"] == {"volume": "0.00", "amount": "0.00"}
        assert line["mismatch"] is False
    for idle in (3, 4):
        assert nozzles[idle]["sales"]["count"] == 0 and nozzles[idle]["mismatch"] is False
    assert report["grades"] == [
        {"grade": "92", "count": 1, "volume": "5.00", "amount": "37.50"},
        {"grade": "95", "count": 1, "volume": "2.00", "amount": "16.04"}]
    assert report["payments"] == [{"method": "cash", "count": 1, "amount": "37.50"}]
    assert report["unpaid"] == [{"id": sales[1]["id"], "number": sales[1]["number"],
                                 "nozzle": 2, "amount": "16.04", "due": "16.04"}]
    assert report["close_reason"] == "the driver pays tomorrow"
    assert report["counts"] == {"sales": 2, "paid": 1, "unpaid": 1, "mismatches": 0}

    store = running.station.store
    events = [e for e in store.events_since(0, 500) if e.type == "shift.closed"]
    assert len(events) == 1 and events[0].data == report
    assert events[0].seq == report["seq"]["upto"]
    assert (await boss.get("/api/v1/shifts/1")).json() == report
    nxt = (await att.get("/api/v1/shifts/current")).json()
    assert nxt["shift_id"] == 2 and nxt["counts"]["sales"] == 0
    assert {n["nozzle"]: n["open"] for n in nxt["nozzles"]} == {
        n: line["close"] for n, line in nozzles.items()}
    missing = await att.get("/api/v1/shifts/99")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_shift"

    # The cloud's data.request "shift": the running shift, or the one it names.
    commands = running.station.commands
    request: dict[str, Any] = {"what": "shift",
                               "expires_at": rfc3339(datetime.now(running.station.zone))}
    assert (await commands.data_request(DataRequest(**request)))["shift_id"] == 2
    named = await commands.data_request(DataRequest(**request, args={"shift_id": 1}))
    assert named == report
    for client in (att, cashier, boss):
        await client.aclose()


async def test_a_centilitre_more_on_the_totalizer_shows(
        sim: Simulator, running: RunningStation) -> None:
    att = await running.client("att")
    fill = await sell(sim, att, 1, "3.00", 1)
    station = running.station
    after = raw_to_decimal(fill.volume_total_after, 2)
    amount = raw_to_decimal(fill.amount_total_after, 2)
    await station.ledger.write(station.store.record_totals, TotalsReading(
        1, 1, after + Decimal("0.01"), amount, station.clock(), "pump"))
    receipts = Receipts()
    station.shifts.receipts = receipts  # type: ignore[assignment]
    boss = await running.client("boss")
    response = await boss.post("/api/v1/shifts/current/close", json={"reason": "unpaid: test"})
    assert response.status_code == 200, response.text
    ((document, kind, ref),) = receipts.printed
    assert (kind, ref) == ("shift", "1")
    assert any(isinstance(item, Text) and item.text == "班结报表" for item in document.lines)
    line = response.json()["nozzles"][0]
    assert line["nozzle"] == 1
    assert line["difference"] == {"volume": "0.01", "amount": "0.00"}
    assert line["mismatch"] is True
    assert response.json()["counts"]["mismatches"] == 1
    await att.aclose()
    await boss.aclose()


async def test_shift_numbering_continues_after_a_restart(
        sim: Simulator, tmp_path: Path) -> None:
    assert sim.url is not None
    path = write_config(tmp_path, sim.url)
    for expected in (1, 2):
        station, task = await start_station(path)
        try:
            base = f"http://127.0.0.1:{station.port}"
            async with httpx.AsyncClient(base_url=base, timeout=15) as client:
                token = (await client.post("/api/v1/session",
                                           json={"user": "boss", "pin": "3333"})).json()["token"]
                client.headers["Authorization"] = f"Bearer {token}"
                # The second close comes within a minute of the first: asked again.
                response = await client.post("/api/v1/shifts/current/close",
                                             json={"repeat": True})
                assert response.status_code == 200, response.text
                assert response.json()["shift_id"] == expected
                current = (await client.get("/api/v1/shifts/current")).json()
                assert current["shift_id"] == expected + 1
                if expected == 2:
                    assert (await client.get("/api/v1/shifts/1")).status_code == 200
        finally:
            station.request_stop()
            await asyncio.wait_for(task, 20)
