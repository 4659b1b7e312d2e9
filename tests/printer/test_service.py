"""The receipt service as the daemon runs it: sales from the hub, alarms into the ledger."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

from domain.model import NewSale, Payment, Preset, Sale, TotalsReading, sale_to_api
from drivers.printer import Backoff, Document, Pair, PrinterKind, Target, Text
from edge.config import parse_config
from edge.config.printer import Printer
from edge.hub import EventHub
from edge.ledger import Ledger
from edge.receipts import ReceiptError, ReceiptService, ReceiptStation, receipt_from_sale
from edge.store import Store
from tests.helpers import StationSpec, wait_until

from .decoder import decode
from .fakes import DummyPrinters
from .test_receipt import pairs

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 22, 1, 15, 7, tzinfo=UTC)  # 09:15:07 in the station
FAST = Backoff(first=0.01, cap=0.05, jitter=0.0)
SLOW = Backoff(first=60.0, cap=60.0, jitter=0.0)
STATION = ReceiptStation("XJ-TEST-0001", "测试加油站", SHANGHAI,
                         {"92": "92号汽油", "95": "95号汽油", "0": "0号柴油"})
PRINTER = Printer(target=Target(PrinterKind.NETWORK, "192.0.2.1:9100", host="192.0.2.1"),
                  invoice_url="https://fapiao.example.com/i/{sale_id}")


def sale(seq: int = 41, *, payments: tuple[tuple[str, str], ...] = (("wechat", "300.00"),),
         order_id: str | None = None) -> dict[str, Any]:
    """A sale as GET /api/v1/sales and sale.completed show it."""
    sale_id = f"01JD4ZQ0SALE{seq:010d}"
    record = Sale(
        id=sale_id, seq=seq, pump=2, nozzle=3, logical=1, grade="92", price=Decimal("7.50"),
        volume=Decimal("40.00"), amount=Decimal("300.00"), price_set_id=None,
        started_at=T0 - timedelta(minutes=2), ended_at=T0, authorization_id=None,
        order_id=order_id, recovered=False, totals_volume_before=None,
        totals_volume_after=Decimal("1040.00"), totals_amount_before=None,
        totals_amount_after=Decimal("7800.00"),
        payments=tuple(Payment(f"P{i}", sale_id, method, Decimal(amount), "cashier", T0)
                       for i, (method, amount) in enumerate(payments)))
    return sale_to_api(record, SHANGHAI)


def completed(data: dict[str, Any]) -> dict[str, Any]:
    return {"type": "sale.completed", "id": "E1", "seq": data["seq"],
            "ts": data["ended_at"], "data": data}


class Events:
    """Stands in for ledger.append_event."""

    def __init__(self) -> None:
        self.recorded: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, type_: str, data: dict[str, Any]) -> None:
        self.recorded.append((type_, data))

    def alarms(self) -> list[str]:
        return [data["alarm"] for type_, data in self.recorded if type_ == "printer.alarm"]


@pytest_asyncio.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    before = set(asyncio.all_tasks())
    yield
    await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() - before
              if t is not asyncio.current_task() and not t.done()]
    assert not leaked, f"tasks left running: {leaked}"
    await asyncio.get_running_loop().shutdown_default_executor()


def service(tmp_path: Path, printers: DummyPrinters, *, printer: Printer = PRINTER,
            **kwargs: Any) -> ReceiptService:
    kwargs.setdefault("backoff", FAST)
    kwargs.setdefault("clock", lambda: T0 + timedelta(hours=1))
    return ReceiptService(printer, STATION, spool=tmp_path / "spool", connect=printers,
                          **kwargs)


async def test_a_receipt_after_every_completed_sale(tmp_path: Path) -> None:
    hub, printers = EventHub(), DummyPrinters()
    async with service(tmp_path, printers, hub=hub):
        hub.publish({"type": "pump.state", "data": {"number": 2, "state": "fuelling"}})
        hub.publish(completed(sale(41)))
        hub.publish(completed(sale(42, payments=())))
        await wait_until(lambda: len(printers.printed) == 2, what="two receipts")
    first, second = (decode(job) for job in printers.printed)
    found = pairs(first)
    assert found["小票号"] == "000001" and found["流水号"] == "41"
    assert found["油枪"] == "3号枪" and found["油品"] == "92号汽油"
    assert found["单价"] == "7.50元/升" and found["数量"] == "40.00升"
    assert found["金额"] == "￥300.00" and found["微信"] == "￥300.00"
    assert any(t.endswith("2026-11-22 09:15:07") for t in first.texts)  # station time
    assert first.texts[0] == "测试加油站"
    assert first.qr_codes == ["https://fapiao.example.com/i/01JD4ZQ0SALE0000000041"]
    assert pairs(second)["小票号"] == "000002" and pairs(second)["未付"] == "￥300.00"


async def test_no_automatic_receipts_when_auto_print_is_off(tmp_path: Path) -> None:
    hub, printers = EventHub(), DummyPrinters()
    async with service(tmp_path, printers, hub=hub,
                       printer=replace(PRINTER, auto_print=False)) as receipts:
        assert hub.subscribers == 0
        outcome = await receipts.print_sale(sale(41))
        assert outcome.queued and outcome.receipt_no == 1
        await wait_until(lambda: printers.printed, what="the requested receipt")
    assert decode(printers.printed[0]).texts[1] == "加油小票"  # the first print is no reprint


async def test_printing_again_is_marked_as_a_reprint(tmp_path: Path) -> None:
    hub, printers = EventHub(), DummyPrinters()
    async with service(tmp_path, printers, hub=hub) as receipts:
        hub.publish(completed(sale(41)))
        await wait_until(lambda: printers.printed, what="the receipt")
        outcome = await receipts.print_sale(sale(41))
        shown = outcome.to_api()
        assert shown["queued"] is True and shown["receipt_no"] == 2
        assert shown["printer"] == "ready" and shown["pending_jobs"] in (0, 1)
        await wait_until(lambda: len(printers.printed) == 2, what="the reprint")
    again = decode(printers.printed[1])
    assert again.texts[1] == "加油小票（补打）"
    assert pairs(again)["小票号"] == "000002"
    assert any(t.startswith("补打时间") and t.endswith("2026-11-22 10:15:07")
               for t in again.texts)


async def test_app_order_shows_prepayment_and_refund(tmp_path: Path) -> None:
    printers = DummyPrinters()
    orders = {"APP-7": replace_order(paid="312.00")}

    async def find_order(order_id: str) -> Any:
        return orders.get(order_id)

    async with service(tmp_path, printers, find_order=find_order) as receipts:
        await receipts.print_sale(sale(41, payments=(), order_id="APP-7"))
        await wait_until(lambda: printers.printed, what="the receipt")
    found = pairs(decode(printers.printed[0]))
    assert found["APP订单"] == "APP-7" and found["APP预付"] == "￥312.00"
    assert found["退款"] == "￥12.00"
    assert "未付" not in found


def replace_order(paid: str) -> Any:
    from domain.model import Order

    return Order(order_id="APP-7", nozzle=3, grade="92", price=Decimal("7.50"),
                 preset=Preset("amount", Decimal(paid)), paid=Decimal(paid),
                 status="fuelling", reason=None, sale_id=None, refund=None,
                 authorization_id=None, expires_at=T0, created_at=T0, updated_at=T0)


async def test_paper_out_becomes_an_alarm_event_and_recovery_another(tmp_path: Path) -> None:
    printers, events = DummyPrinters(), Events()
    printers.state.paper = "out"
    async with service(tmp_path, printers, append_event=events, backoff=SLOW) as receipts:
        outcome = await receipts.print_sale(sale(41))
        assert outcome.queued  # accepted: the printer's trouble is not the caller's
        await wait_until(lambda: events.alarms() == ["paper_out"], what="a paper-out alarm")
        assert receipts.status()["condition"] == "paper_out"
        assert receipts.status()["pending_jobs"] == 1
        printers.state.paper = "ok"
        receipts.retry_now()
        await wait_until(lambda: events.alarms() == ["paper_out", "recovered"],
                         what="the recovery")
    assert len(printers.printed) == 1
    _, data = events.recorded[0]
    assert data == {"printer": "network 192.0.2.1:9100", "alarm": "paper_out",
                    "previous": "ready", "message": "out of paper", "pending_jobs": 1}


async def test_receipts_wait_in_the_spool_across_a_restart(tmp_path: Path) -> None:
    off = DummyPrinters()
    off.state.online = False
    events = Events()
    async with service(tmp_path, off, append_event=events, backoff=SLOW) as receipts:
        await receipts.print_sale(sale(41))
        await wait_until(lambda: events.alarms() == ["offline"], what="the offline alarm")
    assert off.printed == []
    on = DummyPrinters()
    async with service(tmp_path, on) as receipts:
        await wait_until(lambda: receipts.status()["printed_jobs"] == 1,
                         what="the spooled receipt")
    assert pairs(decode(on.printed[0]))["流水号"] == "41"


async def test_an_unusable_spool_is_an_alarm_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "spool").write_text("a file where the spool directory should be")
    events = Events()
    async with service(tmp_path, DummyPrinters(), append_event=events) as receipts:
        outcome = await receipts.print_sale(sale(41))
        await wait_until(lambda: events.alarms() == ["failed"], what="the alarm")
        assert receipts.status()["condition"] == "failed"
    assert not outcome.queued and "spool" in outcome.message


async def test_a_bad_sale_does_not_stop_the_receipts(tmp_path: Path) -> None:
    hub, printers = EventHub(), DummyPrinters()
    broken = {**sale(40), "amount": None}
    async with service(tmp_path, printers, hub=hub) as receipts:
        hub.publish(completed(broken))
        hub.publish(completed(sale(41)))
        await wait_until(lambda: printers.printed, what="the good receipt")
        outcome = await receipts.print_sale({"id": "x"})
    assert not outcome.queued and "cannot be printed" in outcome.message
    assert len(printers.printed) == 1 and pairs(decode(printers.printed[0]))["流水号"] == "41"


async def test_preview_is_a_png_and_previews_can_be_kept(tmp_path: Path) -> None:
    printers = DummyPrinters()
    keep = replace(PRINTER, preview_dir=tmp_path / "previews")
    async with service(tmp_path, printers, printer=keep) as receipts:
        png = await receipts.preview(sale(41))
        assert printers.attempts == 0  # a preview never prints
        await receipts.print_sale(sale(42))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert [p.name for p in (tmp_path / "previews").iterdir()] == ["000001-sale-42.png"]
    with pytest.raises(ReceiptError):
        receipt_from_sale({"id": "x", "seq": 1}, STATION, PRINTER)


async def test_other_documents_use_the_same_queue(tmp_path: Path) -> None:
    printers = DummyPrinters()
    report = Document((Text("班结报表"), Pair("92号汽油", "1200.00升")))
    async with service(tmp_path, printers) as receipts:
        outcome = await receipts.print_document(report, kind="report", ref="shift-3")
        await wait_until(lambda: printers.printed, what="the report")
    assert outcome.queued
    assert decode(printers.printed[0]).texts == ["班结报表", "92号汽油" + " " * 15 + "1200.00升"]


async def test_wired_to_a_real_ledger(tmp_path: Path) -> None:
    """for_station: sales recorded in SQLite print; alarms are events in the store."""
    spec = StationSpec(port_url="loop://", db=tmp_path / "station.db", api_port=8080)
    config = parse_config(spec.toml())
    printer = Printer(target=Target(PrinterKind.NETWORK, "192.0.2.1:9100", host="192.0.2.1"))
    store = await asyncio.to_thread(Store.open, spec.db, zone=SHANGHAI)
    ledger = Ledger(store, EventHub(), zone=SHANGHAI)
    printers = DummyPrinters()
    printers.state.paper = "low"
    before = set(threading.enumerate())  # an earlier test's queue may still be stopping
    try:
        # The library boundary: python-escpos's Dummy instead of a socket.
        receipts = ReceiptService.for_station(config, printer, ledger, connect=printers)
        assert receipts.spool == tmp_path / "printer-spool"
        async with receipts:
            await ledger.write(store.create_order, order_id="APP-9", nozzle=1, grade="92",
                               price=Decimal("7.50"), preset=Preset("amount", Decimal("320")),
                               paid=Decimal("320.00"), expires_at=T0 + timedelta(hours=1),
                               status="fuelling")
            await ledger.record_sale(new_sale(order_id="APP-9"))
            await wait_until(lambda: printers.printed, what="the receipt")
            events = await wait_until(lambda: _alarms(store), what="the alarm event")
    finally:
        await asyncio.to_thread(ledger.close)
        await asyncio.to_thread(store.close)
    found = pairs(decode(printers.printed[0]))
    assert found["油品"] == "92号汽油" and found["APP预付"] == "￥320.00"
    assert found["退款"] == "￥20.00"
    assert events[0]["alarm"] == "paper_low"
    # The queue's worker has ended with the service.
    assert not [t for t in set(threading.enumerate()) - before if t.name.startswith("printer")]


def _alarms(store: Store) -> list[dict[str, Any]]:
    return [e.data for e in store.events_since(0, 100) if e.type == "printer.alarm"]


def new_sale(order_id: str | None) -> NewSale:
    before = TotalsReading(1, 1, Decimal("1000.00"), Decimal("7500.00"), T0, "sale")
    after = TotalsReading(1, 1, Decimal("1040.00"), Decimal("7800.00"), T0, "sale")
    return NewSale(pump=1, nozzle=1, logical=1, grade="92", price=Decimal("7.50"),
                   volume=Decimal("40.00"), amount=Decimal("300.00"), price_set_id=None,
                   started_at=T0 - timedelta(minutes=2), ended_at=T0, authorization_id=None,
                   order_id=order_id, recovered=False, totals_before=before,
                   totals_after=after)
