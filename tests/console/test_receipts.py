"""When a receipt prints (`[printer] print_at`), what it says of the payment, and a print count
kept in the store, so that a copy after a restart is marked 补打 like any other."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from edge.config.printer import PrintAt
from edge.hub import EventHub
from edge.receipts import ReceiptService
from edge.store import Store
from edge.store.console import receipt_counts, receipt_printed
from tests.helpers import wait_until
from tests.printer.decoder import decode
from tests.printer.fakes import DummyPrinters
from tests.printer.test_receipt import pairs
from tests.printer.test_service import FAST, PRINTER, STATION, completed, sale


def paid_message(data: dict[str, Any]) -> dict[str, Any]:
    return {"type": "payment.recorded", "ts": data["ended_at"], "data": data}


def service(tmp_path: Path, printers: DummyPrinters, hub: EventHub, print_at: PrintAt,
            **kwargs: Any) -> ReceiptService:
    return ReceiptService(replace(PRINTER, print_at=print_at), STATION, hub=hub,
                          spool=tmp_path / "spool", connect=printers, backoff=FAST, **kwargs)


@pytest.mark.parametrize(("print_at", "printed"), [
    (PrintAt.FILL_END, ["未付", "已付清"]),  # the unpaid sale at its end; the app order paid
    (PrintAt.PAYMENT, ["已付清", "已付清"]),  # once paid: at payment, the app order at its end
    (PrintAt.BOTH, ["未付", "已付清", "已付清"]),
])
async def test_receipts_print_when_configured(tmp_path: Path, print_at: PrintAt,
                                              printed: list[str]) -> None:
    hub, printers = EventHub(), DummyPrinters()
    unpaid = sale(41, payments=())
    app_order = sale(42, payments=(("app", "300.00"),), order_id="APP-1")
    async with service(tmp_path, printers, hub, print_at):
        hub.publish(completed(unpaid))
        hub.publish(completed(app_order))
        hub.publish(paid_message(sale(43, payments=(("cash", "100.00"),))))  # still due
        hub.publish(paid_message(sale(41, payments=(("cash", "300.00"),))))
        await wait_until(lambda: len(printers.printed) == len(printed), what="the receipts")
    states = []
    for job in printers.printed:
        found = pairs(decode(job))
        states.append("未付" if "未付" in found else found.get("付款状态"))
    assert sorted(states) == sorted(printed)


async def test_a_copy_after_a_restart_is_marked_as_one(tmp_path: Path) -> None:
    printers = DummyPrinters()
    with Store.open(tmp_path / "station.db") as store:

        async def prints(sale_id: str) -> int:
            return store.write_with(receipt_printed, sale_id)

        for run in (1, 2):  # the daemon, then the daemon started again
            async with service(tmp_path, printers, EventHub(), PrintAt.FILL_END,
                               prints=prints) as receipts:
                outcome = await receipts.print_sale(sale(41))
                assert outcome.queued
                await wait_until(lambda run=run: len(printers.printed) == run,
                                 what=f"receipt {run} printed")
        first, second = (decode(job) for job in printers.printed)
        assert first.texts[1] == "加油小票" and second.texts[1] == "加油小票（补打）"
        assert outcome.to_api()["prints"] == 2
        assert store.read_with(receipt_counts, ["01JD4ZQ0SALE0000000041"]) == {
            "01JD4ZQ0SALE0000000041": 2}


async def test_the_receipt_shows_the_sale_number(tmp_path: Path) -> None:
    hub, printers = EventHub(), DummyPrinters()
    numbered = {**sale(41), "number": "1122-0007"}
    async with service(tmp_path, printers, hub, PrintAt.FILL_END):
        hub.publish(completed(numbered))
        await wait_until(lambda: printers.printed, what="the receipt")
    found = pairs(decode(printers.printed[0]))
    assert found["单号"] == "1122-0007" and "流水号" not in found
