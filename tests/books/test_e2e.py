"""The station's books end to end: the daemon (in process) against the pump simulator over a
real socket, a real SQLite file, a file printer whose ESC/POS bytes are decoded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from domain.model import NewSale, TotalsReading
from edge.store import Store
from edge.store.books import BooksStore, NonSaleFill, NonSaleRequest
from edge.store.deliveries import Deliveries
from edge.store.tanks import TankReading
from simulator.control import Simulator
from simulator.totalizer import Totalizer
from tests.e2e.conftest import (
    USERS,
    RunningStation,
    dispensed,
    start_station,
    wait_pump_state,
    wait_sales,
)
from tests.helpers import StationSpec, free_port, wait_until
from tests.printer.decoder import decode

PUMP1 = 0x50

# Tank 1 holds 92 (nozzles 1 and 3), tank 2 holds 95 (nozzle 2), tank 3 diesel (nozzle 4).
# Their gauge does not answer: readings are entered by hand, with the reason.
BOOKS = """
[[gauges]]
id = "console"
url = "modbus-tcp://127.0.0.1:{gauge_port}"
timeout_ms = 100
poll_interval_seconds = 60

[[tanks]]
number = 1
grade = "92"
gauge = "console"
capacity = 30000
registers = {{ level = 0, volume = 2 }}

[[tanks]]
number = 2
grade = "95"
gauge = "console"
capacity = 20000
registers = {{ level = 10, volume = 12 }}

[[tanks]]
number = 3
grade = "0"
gauge = "console"
capacity = 30000
registers = {{ level = 20, volume = 22 }}

[printer]
kind = "file"
address = "{printer}"
auto_print = false

[books]
delivery_loss_threshold_percent = "0.2"
loss_allowance_percent = "0.3"
"""


@pytest.fixture
async def station(sim: Simulator, tmp_path: Path) -> AsyncIterator[RunningStation]:
    assert sim.url is not None
    spec = StationSpec(port_url=sim.url, db=tmp_path / "station.db", api_port=free_port())
    path = tmp_path / "station.toml"
    path.write_text(spec.toml() + BOOKS.format(gauge_port=free_port(),
                                               printer=tmp_path / "printer.bin"), "utf-8")
    with Store.open(spec.db) as store:
        for name, (role, pin) in USERS.items():
            store.upsert_user(name, role=role, pin=pin)
    running, task = await start_station(path)
    try:
        yield RunningStation(running, path, f"http://127.0.0.1:{running.port}")
    finally:
        running.request_stop()
        await asyncio.wait_for(task, 20)


def printed_texts(tmp_path: Path) -> list[str]:
    data = (tmp_path / "printer.bin").read_bytes() if (tmp_path / "printer.bin").exists() else b""
    return decode(data).texts if data else []


async def test_delivery_beyond_the_threshold_ends_in_the_outcome_and_a_slip(
        station: RunningStation, tmp_path: Path) -> None:
    boss = await station.client("boss")
    bill = {"number": "TD-20261204-001", "volume_l": "10000", "density20": "737.5",
            "temperature_c": "20", "truck": "新A12345", "seals": ["F001", "F002"]}
    opened = await boss.post("/api/v1/deliveries/receipts", json={
        "tank": 1, "bill": bill,
        "before": {"volume_l": "5000.00", "temperature_c": "20", "reason": "液位仪离线"}})
    assert opened.status_code == 201, opened.text
    receipt = opened.json()
    assert receipt["status"] == "open" and sorted(receipt["paused_nozzles"]) == [1, 3]

    # The tank's nozzles sell nothing while the delivery is received.
    att = await station.client("att")
    await wait_pump_state(att, 1, "idle")
    paused = await att.post("/api/v1/nozzles/1/authorize", json={})
    assert paused.status_code == 409, paused.text
    assert paused.json()["error"]["code"] == "nozzle_paused"
    assert "卸油" in paused.json()["error"]["message"]

    # 10000 L shipped at 20 °C, 9950 L arrived: 0.5 % lost, beyond the 0.2 % threshold.
    after = {"volume_l": "14950.00", "temperature_c": "20", "reason": "液位仪离线"}
    names = {"driver": "张师傅", "receiver": "李站长"}
    refused = await boss.post(f"/api/v1/deliveries/receipts/{receipt['id']}/receive",
                              json={"after": after, **names})
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "outcome_required"

    done = await boss.post(f"/api/v1/deliveries/receipts/{receipt['id']}/receive",
                           json={"after": after, "outcome": "driver_pays",
                                 "supervisor": "王主管", **names})
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "received" and body["outcome"] == "driver_pays"
    assert body["figures"]["loss_l"] == "50.00"
    assert body["figures"]["loss_rate_percent"] == "0.500"
    assert body["figures"]["beyond_threshold"] is True
    assert body["received_l"] == "9950.00"
    assert body["printed"]["queued"] is True

    def slip() -> list[str] | None:
        found = printed_texts(tmp_path)
        return found if any("驾驶员签字" in line for line in found) else None
    texts: list[str] = await wait_until(slip, timeout=15, what="the delivery slip")
    joined = "\n".join(texts)
    assert "卸油验收单" in joined and "超耗由司机赔付" in joined
    assert "TD-20261204-001" in joined and "张师傅" in joined and "50.00" in joined

    detected = await boss.get("/api/v1/deliveries/detected")
    assert detected.status_code == 200 and detected.json()["deliveries"] == []

    # Received: the nozzles sell again, and the cloud's event is in the ledger.
    again = await att.post("/api/v1/nozzles/1/authorize", json={})
    assert again.status_code == 202, again.text
    events = station.station.store.events_since(0, 1000)
    assert [e.data["outcome"] for e in events if e.type == "delivery.received"] == [
        "driver_pays"]


async def fill(sim: Simulator, count: int, nozzle: int = 1) -> None:
    sim.lift(PUMP1, nozzle)
    await wait_until(lambda: len(sim.fills()) >= count, timeout=20, what=f"fill {count}")
    sim.hang(PUMP1, nozzle)


async def test_a_20_litre_self_check_returned_leaves_no_shortage(
        sim: Simulator, station: RunningStation) -> None:
    att = await station.client("att")
    await wait_pump_state(att, 1, "idle")
    sold = await att.post("/api/v1/nozzles/1/authorize", json={"preset": {"volume": "5.00"}})
    assert sold.status_code == 202, sold.text
    await fill(sim, 1)
    await wait_sales(att, 1)
    await wait_pump_state(att, 1, "idle")

    check = await att.post("/api/v1/nozzles/1/nonsale", json={
        "kind": "self_check", "reason": "计量自检（20升标准罐）", "witnesses": ["李站长"],
        "preset": {"volume": "20.00"}})
    assert check.status_code == 202, check.text
    await fill(sim, 2)

    async def recorded() -> list[dict[str, Any]] | None:
        found = (await att.get("/api/v1/nonsale")).json()["fills"]
        return found or None
    fills: list[dict[str, Any]] = await wait_until(recorded, timeout=20,
                                                   what="the non-sale fill")
    assert fills[0]["kind"] == "self_check" and fills[0]["volume"] == "20.00"
    assert fills[0]["witnesses"] == ["李站长"]

    # The day's report shows it apart from the sales.
    daily = (await att.get("/api/v1/reports/daily")).json()
    assert daily["books"]["nonsale_by_kind"] == {"self_check": "20.00"}

    # No sale, no payment: the only sale is the 5 L one.
    all_sales = (await att.get("/api/v1/sales")).json()["sales"]
    assert [s["volume"] for s in all_sales] == ["5.00"]

    cashier = await station.client("cash")
    paid = await cashier.post(f"/api/v1/sales/{all_sales[0]['id']}/payments",
                              json={"method": "cash", "amount": all_sales[0]["amount"]})
    assert paid.status_code == 201, paid.text
    boss = await station.client("boss")
    closing = await boss.post("/api/v1/shifts/current/close")
    assert closing.status_code == 200, closing.text
    report = closing.json()
    line = next(n for n in report["nozzles"] if n["nozzle"] == 1)
    assert line["delta"]["volume"] == "25.00"
    assert line["sales"]["volume"] == "5.00" and line["nonsale"]["volume"] == "20.00"
    assert line["difference"]["volume"] == "0.00" and line["mismatch"] is False
    assert report["counts"]["mismatches"] == 0
    assert [f["kind"] for f in report["nonsale"]] == ["self_check"]


async def test_a_board_swap_corrected_by_the_manager_leaves_the_shift_clean(
        sim: Simulator, station: RunningStation) -> None:
    att = await station.client("att")
    await wait_pump_state(att, 1, "idle")
    sold = await att.post("/api/v1/nozzles/1/authorize", json={"preset": {"volume": "3.00"}})
    assert sold.status_code == 202, sold.text
    await fill(sim, 1)
    (sale,) = await wait_sales(att, 1)
    await wait_pump_state(att, 1, "idle")

    # The board is swapped: the new one counts from zero, and the pump starts again.
    before = station.station.store.last_totals(1, 1)
    assert before is not None and before.volume_total > 0
    pump = sim.pump(PUMP1)
    pump.totalizer = Totalizer(pump.nozzles)
    sim.power_cycle(PUMP1)
    boss = await station.client("boss")

    async def went_back() -> bool:
        report = (await boss.get("/api/v1/shifts/current")).json()
        return any(n["nozzle"] == 1 and n["mismatch"] for n in report["nozzles"])
    shown: bool = await wait_until(went_back, timeout=20, what="the shift to show the jump")
    assert shown

    corrected = await boss.post("/api/v1/totals/corrections", json={
        "nozzle": 1, "cause": "board_swap", "note": "更换主板",
        "before": {"volume_total": format(before.volume_total, "f"),
                   "amount_total": format(before.amount_total, "f")},
        "after": {"volume_total": "0.00", "amount_total": "0.00"}})
    assert corrected.status_code == 201, corrected.text
    report = (await boss.get("/api/v1/shifts/current")).json()
    line = next(n for n in report["nozzles"] if n["nozzle"] == 1)
    assert line["mismatch"] is False, line
    assert line["correction"]["volume"] == format(-before.volume_total, "f")
    assert sale["volume"] == "3.00"
    audit = (await boss.get("/api/v1/audit", params={"limit": 1000})).json()["entries"]
    assert any("/totals/corrections" in str(e) for e in audit)


async def test_over_the_daily_limit_a_credit_account_is_refused_in_chinese(
        sim: Simulator, station: RunningStation, tmp_path: Path) -> None:
    boss = await station.client("boss")
    made = await boss.post("/api/v1/accounts", json={
        "id": "FLEET-1", "name": "乌鲁木齐公交公司", "plates": ["新A 12345"],
        "limits": {"fills": 1, "amount": "500.00", "grades": ["92", "0"]}})
    assert made.status_code == 200, made.text
    att = await station.client("att")
    await wait_pump_state(att, 1, "idle")
    account = {"kind": "plate", "value": "新A12345", "signer": "司机王五"}
    first = await att.post("/api/v1/nozzles/1/authorize",
                           json={"preset": {"volume": "4.00"}, "account": account})
    assert first.status_code == 202, first.text
    await fill(sim, 1)
    (sale,) = await wait_sales(att, 1)

    async def on_account() -> dict[str, Any] | None:
        found = (await att.get(f"/api/v1/sales/{sale['id']}")).json()
        return found if found["paid"] else None
    paid: dict[str, Any] = await wait_until(on_account, timeout=10,
                                            what="the sale paid on account")
    assert [(p["method"], p["user"]) for p in paid["payments"]] == [("account", "司机王五")]
    await wait_pump_state(att, 1, "idle")

    refused = await att.post("/api/v1/nozzles/1/authorize", json={"account": account})
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "account_daily_fills"
    assert "今日加油次数已达上限" in error["message"] and "乌鲁木齐公交公司" in error["message"]

    grade = await att.post("/api/v1/nozzles/2/authorize", json={"account": account})
    assert grade.status_code == 409 and grade.json()["error"]["code"] in (
        "account_grade", "account_daily_fills")
    month = datetime.now(UTC).astimezone(station.station.zone).strftime("%Y-%m")
    statement = (await boss.get("/api/v1/accounts/FLEET-1/statement",
                                params={"month": month})).json()
    assert statement["count"] == 1 and statement["sales"][0]["signer"] == "司机王五"
    csv = await boss.get("/api/v1/accounts/FLEET-1/statement.csv", params={"month": month})
    assert csv.status_code == 200 and "司机王五" in csv.text
    printed = await boss.post("/api/v1/accounts/FLEET-1/statement/print",
                              params={"month": month})
    assert printed.status_code == 202, printed.text

    def statement_printed() -> list[str] | None:
        found = printed_texts(tmp_path)
        return found if any("挂账对账单" in line for line in found) else None
    paper: list[str] = await wait_until(statement_printed, timeout=15, what="the statement")
    assert any("乌鲁木齐公交公司" in line for line in paper)


def _script_month(path: Path) -> None:
    """October 2026 at the station, written as the daemon would have: tank readings, sales,
    a delivery received, a self-check returned and a generator's own use."""
    zone = UTC
    start = datetime(2026, 9, 30, 16, 0, tzinfo=zone)  # 1 October 00:00 in Shanghai
    # The ledger's own clock says mid-October too: the delivery is received then.
    with Store.open(path, clock=lambda: start + timedelta(days=15)) as store:
        books = BooksStore(store)
        level = Decimal("10000")
        store.record_tank_readings([TankReading(1, "92", start - timedelta(minutes=5),
                                                Decimal(1500), level, Decimal(20000))])
        totals = Decimal("1000")
        for day in range(30):
            at = start + timedelta(days=day, hours=3)
            volume = Decimal("300.00")
            sale = NewSale(pump=1, nozzle=1, logical=1, grade="92", price=Decimal("7.50"),
                           volume=volume, amount=volume * Decimal("7.50"), price_set_id=None,
                           started_at=at, ended_at=at + timedelta(minutes=2),
                           authorization_id=None, order_id=None, recovered=False,
                           totals_before=TotalsReading(1, 1, totals, Decimal(0), at, "sale"),
                           totals_after=TotalsReading(1, 1, totals + volume, Decimal(0),
                                                      at + timedelta(minutes=2), "sale"))
            store.record_sale(sale)
            totals += volume
            level -= volume
        at = start + timedelta(days=10, hours=5)
        books.save_nonsale_request(NonSaleRequest("auth-own", 1, "own_use", "发电机用油",
                                                  ("李站长",), None, "att", at))
        for kind, auth, litres in (("self_check", "auth-check", "20.00"),
                                   ("own_use", "auth-own", "40.00")):
            if kind == "self_check":
                books.save_nonsale_request(NonSaleRequest(auth, 1, kind, "计量自检", ("李站长",),
                                                          None, "att", at))
            books.record_nonsale(NonSaleFill(
                pump=1, nozzle=1, logical=1, grade="92", price=Decimal("7.50"),
                volume=Decimal(litres), amount=Decimal(litres) * Decimal("7.50"),
                started_at=at, ended_at=at + timedelta(minutes=1), authorization_id=auth,
                before=TotalsReading(1, 1, totals, Decimal(0), at, "sale"),
                after=TotalsReading(1, 1, totals + Decimal(litres), Decimal(0), at, "nonsale")))
            totals += Decimal(litres)
            level -= Decimal(litres) if kind == "own_use" else 0
            at += timedelta(hours=1)
        deliveries = Deliveries(books)
        receipt = deliveries.open_receipt(
            tank=1, grade="92", delivery_id=None, user="boss", paused=[1, 3], nozzle_totals=[],
            bill={"number": "TD-1"}, before={"volume_l": "1000"})
        deliveries.receive(receipt["id"], after={}, figures={}, received_l=Decimal("9980.00"),
                           received_std_l=Decimal("9975.00"), outcome="accepted",
                           driver="张师傅", receiver="李站长", supervisor=None, note=None)
        level += Decimal("9980.00")
        # The gauge at the month's end: 12 L less than the book (a 0.13 % loss of 9040 L).
        store.record_tank_readings([TankReading(1, "92", start + timedelta(days=31) -
                                                timedelta(minutes=10), Decimal(1400),
                                                level - 12, Decimal(30000) - level)])


async def test_a_month_closed_gives_a_stock_book_within_the_allowance(
        sim: Simulator, tmp_path: Path) -> None:
    assert sim.url is not None
    spec = StationSpec(port_url=sim.url, db=tmp_path / "station.db", api_port=free_port())
    path = tmp_path / "station.toml"
    path.write_text(spec.toml() + BOOKS.format(gauge_port=free_port(),
                                               printer=tmp_path / "printer.bin"), "utf-8")
    with Store.open(spec.db) as store:
        for name, (role, pin) in USERS.items():
            store.upsert_user(name, role=role, pin=pin)
    _script_month(spec.db)
    running, task = await start_station(path)
    try:
        client = await RunningStation(running, path,
                                      f"http://127.0.0.1:{running.port}").client("boss")
        unknown = await client.post("/api/v1/books/months/2026-10/close", json={
            "closing": {"9": {"volume_l": "100", "reason": "量油尺"}}})
        assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_tank"
        closed = await client.post("/api/v1/books/months/2026-10/close", json={
            "closing": {"2": {"volume_l": "0.00", "reason": "液位仪离线，量油尺实测"}}})
        assert closed.status_code == 200, closed.text
        dipped = next(line for line in closed.json()["tanks"] if line["tank"] == 2)
        assert (dipped["closing_source"], dipped["closing_reason"]) == (
            "entered", "液位仪离线，量油尺实测")
        body = closed.json()
        tank = next(line for line in body["tanks"] if line["tank"] == 1)
        assert tank["opening_l"] == "10000.00" and tank["received_l"] == "9980.00"
        assert tank["sold_l"] == "9000.00" and tank["own_use_l"] == "40.00"
        assert tank["returned_l"] == "20.00"
        assert tank["book_closing_l"] == "10940.00" and tank["closing_l"] == "10928.00"
        assert tank["loss_l"] == "12.00" and tank["within_allowance"] is True
        grade = next(line for line in body["grades"] if line["grade"] == "92")
        assert grade["closing_l"] == "10928.00" and grade["within_allowance"] is True

        again = await client.post("/api/v1/books/months/2026-10/close", json={})
        assert again.status_code == 409 and again.json()["error"]["code"] == "month_closed"
        csv = await client.get("/api/v1/books/months/2026-10/csv")
        assert csv.status_code == 200 and "进销存" in csv.text and "10928.00" in csv.text
        events = running.store.events_since(0, 2000)
        assert [e.data["month"] for e in events if e.type == "month.closed"] == ["2026-10"]
        texts: list[str] = await wait_until(lambda: printed_texts(tmp_path), timeout=15,
                                            what="the month's print")
        assert any("进销存" in line for line in texts)
        adjusted = await client.post("/api/v1/books/adjustments", json={
            "tank": 1, "volume_l": "-5.00", "reason": "十月盘点更正", "corrects_month": "2026-10"})
        assert adjusted.status_code == 201, adjusted.text
        assert adjusted.json()["month"] != "2026-10"
    finally:
        running.request_stop()
        await asyncio.wait_for(task, 20)



async def test_a_price_change_splits_the_shift_into_price_periods(
        sim: Simulator, station: RunningStation) -> None:
    att = await station.client("att")
    boss = await station.client("boss")
    await wait_pump_state(att, 1, "idle")
    first = await att.post("/api/v1/nozzles/1/authorize", json={"preset": {"volume": "4.00"}})
    assert first.status_code == 202, first.text
    await fill(sim, 1)
    await wait_sales(att, 1)
    await wait_pump_state(att, 1, "idle")

    changed = await boss.post("/api/v1/prices", json={"prices": {"92": "7.80"}})
    assert changed.status_code == 201, changed.text

    async def periods() -> list[dict[str, Any]] | None:
        report = (await boss.get("/api/v1/shifts/current")).json()
        found = [p for p in report["price_periods"] if p["nozzle"] == 1]
        return found if len(found) == 2 else None
    two: list[dict[str, Any]] = await wait_until(periods, timeout=20,
                                                 what="the price change's totals")
    assert two[0]["price"] == "7.50"
    await wait_pump_state(att, 1, "idle")
    second = await att.post("/api/v1/nozzles/1/authorize", json={"preset": {"volume": "2.00"}})
    assert second.status_code == 202, second.text
    await fill(sim, 2)
    await wait_sales(att, 2)

    async def valued() -> list[dict[str, Any]] | None:
        found = await periods()
        return found if found and found[-1]["volume"] == "2.00" else None
    split: list[dict[str, Any]] = await wait_until(valued, timeout=20, what="the second period")
    assert [(p["price"], p["volume"], p["amount"]) for p in split] == [
        ("7.50", "4.00", "30.00"), ("7.80", "2.00", "15.60")]


async def test_a_self_check_that_ends_while_the_daemon_is_down_stays_no_sale(
        sim: Simulator, tmp_path: Path) -> None:
    assert sim.url is not None
    spec = StationSpec(port_url=sim.url, db=tmp_path / "station.db", api_port=free_port())
    path = tmp_path / "station.toml"
    path.write_text(spec.toml() + BOOKS.format(gauge_port=free_port(),
                                               printer=tmp_path / "printer.bin"), "utf-8")
    with Store.open(spec.db) as store:
        for name, (role, pin) in USERS.items():
            store.upsert_user(name, role=role, pin=pin)
    sim.set_flow(PUMP1, Decimal("60"))  # a litre a second: the daemon stops mid-fill
    running, task = await start_station(path)
    try:
        att = await RunningStation(running, path,
                                   f"http://127.0.0.1:{running.port}").client("att")
        await wait_pump_state(att, 1, "idle")
        check = await att.post("/api/v1/nozzles/1/nonsale", json={
            "kind": "self_check", "reason": "计量自检", "witnesses": ["李站长"],
            "preset": {"volume": "5.00"}})
        assert check.status_code == 202, check.text
        sim.lift(PUMP1, 1)
        await wait_until(lambda: dispensed(sim, PUMP1) > 50, timeout=20, what="fuel flowing")
    finally:
        running.request_stop()
        await asyncio.wait_for(task, 20)
    # The can fills while nothing follows the pump; the nozzle goes back.
    await wait_until(lambda: len(sim.fills()) >= 1, timeout=30, what="the fill's end")
    sim.hang(PUMP1, 1)
    running, task = await start_station(path)
    try:
        att = await RunningStation(running, path,
                                   f"http://127.0.0.1:{running.port}").client("att")

        async def recorded() -> list[dict[str, Any]] | None:
            found = (await att.get("/api/v1/nonsale")).json()["fills"]
            return found or None
        fills: list[dict[str, Any]] = await wait_until(recorded, timeout=30,
                                                       what="the fill recovered as non-sale")
        assert (fills[0]["kind"], fills[0]["volume"]) == ("self_check", "5.00")
        assert (await att.get("/api/v1/sales")).json()["sales"] == []
    finally:
        running.request_stop()
        await asyncio.wait_for(task, 20)
