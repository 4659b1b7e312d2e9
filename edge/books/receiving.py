"""Receiving a delivery (卸油验收) at the station: the steps a manager goes through.

1. Open: once the truck has settled, the tank's before reading (from the gauge, or entered
   with the reason), its nozzles paused when `[books] pause_nozzles_for_delivery` (their
   totals noted), the bill of lading.
2. Receive: after the delivery has settled in the tank, the after reading, the figures
   (edge/books/delivery.py), the outcome and the names of the driver, the receiver and the
   supervisor; the nozzles sell again, `delivery.received` goes to the cloud and the slip is
   printed (驾驶员 and 验收人 sign it).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.model import rfc3339
from edge.books.delivery import Bill, Reading, ReceiptRefused, decide, figures
from edge.books.documents import delivery_slip
from edge.books.service import BooksService
from edge.config.tanks import tank_nozzles
from edge.receipts import ReceiptService
from edge.store.books import BooksError

log = logging.getLogger(__name__)

TankView = Callable[[], Awaitable[dict[str, Any]]]


class Receiving:
    def __init__(self, books: BooksService, *, tanks: TankView | None,
                 receipts: Callable[[], ReceiptService | None], station_name: str) -> None:
        self.books = books
        self.tanks = tanks
        self.receipts = receipts
        self.station_name = station_name
        config = books.config
        self.by_nozzle = tank_nozzles(config.tanks, config.pumps) if config.tanks else {}

    def tank(self, number: int) -> Any:
        settings = self.books.config.tanks
        try:
            if settings is None:
                raise KeyError(number)
            return settings.tank(number)
        except KeyError:
            raise BooksError("unknown_tank", f"there is no tank {number}", 404) from None

    async def gauge_reading(self, tank: int) -> Reading | None:
        if self.tanks is None:
            return None
        for found in (await self.tanks())["tanks"]:
            if found["number"] == tank and found["volume_l"] is not None and \
                    found["read_at"] is not None:
                temperature = found.get("temperature_c")
                return Reading(volume_l=Decimal(found["volume_l"]),
                               temperature_c=None if temperature is None else Decimal(temperature),
                               level_mm=(None if found.get("level_mm") is None
                                         else Decimal(found["level_mm"])),
                               source="gauge", reason=None, read_at=found["read_at"])
        return None

    async def reading(self, tank: int, entered: Reading | None) -> Reading:
        if entered is not None:
            return entered
        found = await self.gauge_reading(tank)
        if found is None:
            raise BooksError("reading_required", f"tank {tank} has no gauge reading now: enter "
                             "the reading and the reason", 422)
        return found

    async def open(self, *, tank: int, bill: Bill, before: Reading | None,
                   delivery_id: str | None, user: str) -> dict[str, Any]:
        settings = self.tank(tank)
        reading = await self.reading(tank, before)
        nozzles = sorted(n for n, t in self.by_nozzle.items() if t == tank)
        paused = nozzles if self.books.settings.pause_nozzles_for_delivery else []
        latest = {r.nozzle: r for r in await self.books.ledger.read(
            self.books.ledger.store.latest_totals)}
        totals = [{"nozzle": n, "volume_total": format(latest[n].volume_total, "f"),
                   "amount_total": format(latest[n].amount_total, "f")}
                  for n in nozzles if n in latest]
        opened = await self.books.ledger.write(
            self.books.deliveries.open_receipt, tank=tank, grade=settings.grade,
            delivery_id=delivery_id, user=user, paused=paused, nozzle_totals=totals,
            bill=bill.to_api(), before=reading.to_api())
        for nozzle in paused:
            self.books.paused[nozzle] = opened["id"]
        log.info("delivery receipt %s opened on tank %d by %s (nozzles %s paused)", opened["id"],
                 tank, user, paused)
        return opened

    async def receive(self, receipt_id: str, *, after: Reading | None, outcome: str | None,
                      driver: str, receiver: str, supervisor: str | None,
                      note: str | None) -> dict[str, Any]:
        receipt = await self.books.ledger.read(self.books.deliveries.get, receipt_id)
        if receipt is None:
            raise BooksError("unknown_receipt", f"there is no delivery receipt {receipt_id}", 404)
        if receipt["status"] != "open":
            raise BooksError("receipt_closed", f"receipt {receipt_id} is {receipt['status']}")
        reading = await self.reading(receipt["tank"], after)
        bill = _bill(receipt["bill"])
        before = _reading(receipt["before"])
        sold = await self._sold_during(receipt, before.read_at, reading.read_at)
        try:
            found = figures(bill, before, reading, sold_during_l=sold,
                            threshold=self.books.settings.delivery_loss_threshold_percent / 100)
            decided = decide(found, outcome)
        except ReceiptRefused as exc:
            raise BooksError(exc.code, exc.message, 409 if exc.code == "outcome_required"
                             else 422) from None
        done = await self.books.ledger.write(
            self.books.deliveries.receive, receipt_id, after=reading.to_api(),
            figures=found.to_api(), received_l=found.received_l,
            received_std_l=found.received_std_l, outcome=decided, driver=driver,
            receiver=receiver, supervisor=supervisor, note=note)
        await self.books.ledger.publish_new()
        self._unpause(receipt_id)
        level = logging.WARNING if found.beyond else logging.INFO
        log.log(level, "delivery receipt %s on tank %d: %s L received, loss %s L (%s %%): %s",
                receipt_id, done["tank"], found.received_l, found.loss_l,
                found.to_api()["loss_rate_percent"], decided)
        done["printed"] = await self.print(done)
        return done

    async def cancel(self, receipt_id: str, note: str) -> dict[str, Any]:
        done = await self.books.ledger.write(self.books.deliveries.cancel, receipt_id, note=note)
        self._unpause(receipt_id)
        return done

    def _unpause(self, receipt_id: str) -> None:
        for nozzle in [n for n, r in self.books.paused.items() if r == receipt_id]:
            del self.books.paused[nozzle]

    async def _sold_during(self, receipt: dict[str, Any], start: str, end: str) -> Decimal:
        """Litres sold from the tank's nozzles between the two readings (nothing when they
        were paused)."""
        nozzles = {n for n, t in self.by_nozzle.items() if t == receipt["tank"]}
        first, last = datetime.fromisoformat(start), datetime.fromisoformat(end)
        if not nozzles or last <= first:
            return Decimal(0)
        sales = await self.books.ledger.read(self.books.ledger.store.sales_ended_between,
                                             first, last)
        return sum((s.volume for s in sales if s.nozzle in nozzles), Decimal(0))

    async def print(self, receipt: dict[str, Any]) -> dict[str, Any] | None:
        service = self.receipts()
        if service is None:
            return None
        outcome = await service.print_document(
            delivery_slip(receipt, station_name=self.station_name,
                          grade_names=self.books.grade_names), kind="delivery",
            ref=receipt["id"])
        if not outcome.queued:
            log.warning("delivery slip %s not printed: %s", receipt["id"], outcome.message)
        return outcome.to_api()


def _bill(data: dict[str, Any]) -> Bill:
    return Bill(number=data["number"], volume_l=Decimal(data["volume_l"]),
                density20=Decimal(data["density20"]),
                temperature_c=(None if data["temperature_c"] is None
                               else Decimal(data["temperature_c"])),
                truck=data["truck"], seals=tuple(data["seals"]), depot=data.get("depot"))


def _reading(data: dict[str, Any]) -> Reading:
    def dec(key: str) -> Decimal | None:
        return None if data.get(key) is None else Decimal(data[key])
    volume = dec("volume_l")
    assert volume is not None
    return Reading(volume_l=volume, temperature_c=dec("temperature_c"),
                   level_mm=dec("level_mm"), source=data["source"], reason=data.get("reason"),
                   read_at=data["read_at"])


def entered_reading(volume_l: Decimal, temperature_c: Decimal | None, level_mm: Decimal | None,
                    reason: str, now: datetime) -> Reading:
    return Reading(volume_l=volume_l, temperature_c=temperature_c, level_mm=level_mm,
                   source="entered", reason=reason, read_at=rfc3339(now))
