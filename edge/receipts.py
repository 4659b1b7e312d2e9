"""Receipts: a Chinese receipt after every sale, on request, and as a picture.

`ReceiptService` is the daemon's receipt printer. It follows the hub: with `printer.auto_print`
on, a sale's receipt is queued as its fill ends (`sale.completed`), once it is paid in full (the
API's live `payment.recorded`), or both, as `printer.print_at` says. `print_sale` (the API's
POST /api/v1/sales/{id}/receipt) prints or reprints one, `preview` draws one as a PNG, and
`print_document` prints anything else laid out as a `Document` (shift reports). How often each
sale's receipt printed is counted in the store (`prints`), so a copy is marked 补打 also after a
restart.

The printer never holds anything up: jobs are spooled to disk and printed by the queue's own
thread. A printer that is off, out of paper or unreachable becomes a `printer.alarm` event
(and one log line per change), and its jobs wait in the spool, across restarts, until it
prints again or they expire. The service's loops (alarms, following sales) are a peripheral
service of the daemon (edge/services.py): should they die they are restarted, and health says
degraded meanwhile.

Wiring, in the daemon (`printer` is the parsed [printer] section):

    receipts = await stack.enter_async_context(
        ReceiptService.for_station(config, printer, ledger, services=services))
    ...
    outcome = await receipts.print_sale(station.sale_view(sale))   # the API
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import TracebackType
from typing import Any
from zoneinfo import ZoneInfo

from domain.model import APP_PAYMENT, Order
from drivers.printer import (
    Backoff,
    Document,
    EscposPrinter,
    PaymentLine,
    PrinterAlarm,
    PrinterCondition,
    PrintQueue,
    QueueStatus,
    ReceiptData,
    SpoolError,
    connector,
    receipt_document,
    render,
    render_receipt,
)
from edge.config import StationConfig
from edge.config.printer import Printer
from edge.hub import EventHub, Message, Subscription
from edge.ledger import Ledger
from edge.services import Service, Services
from edge.store.console import receipt_printed

__all__ = [
    "PrintOutcome",
    "ReceiptError",
    "ReceiptService",
    "ReceiptStation",
    "receipt_from_sale",
]

log = logging.getLogger(__name__)

ALARM_EVENT = "printer.alarm"
#: The API's live message after a payment (edge/api/app.py): data is the sale as it now is.
PAYMENT_MESSAGE = "payment.recorded"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ReceiptError(ValueError):
    """A sale that cannot be printed as given (a field missing or malformed)."""


@dataclass(frozen=True)
class ReceiptStation:
    """What receipts need to know about the station."""

    id: str
    name: str
    zone: tzinfo
    grade_names: Mapping[str, str]  # grade code -> "92号汽油"

    @classmethod
    def from_config(cls, config: StationConfig) -> ReceiptStation:
        return cls(config.station.id, config.station.name, ZoneInfo(config.station.timezone),
                   {g.code: g.name for g in config.grades})


@dataclass(frozen=True)
class PrintOutcome:
    """What became of a print request: queued (with its receipt number) or refused."""

    queued: bool
    receipt_no: int | None
    pending_jobs: int
    condition: PrinterCondition
    message: str
    prints: int = 0  # the sale's receipts printed so far, this one included

    def to_api(self) -> dict[str, Any]:
        return {"queued": self.queued, "receipt_no": self.receipt_no,
                "pending_jobs": self.pending_jobs, "printer": self.condition.value,
                "message": self.message, "prints": self.prints}


def _decimal(sale: Mapping[str, Any], key: str) -> Decimal:
    value = sale.get(key)
    with contextlib.suppress(InvalidOperation):
        if isinstance(value, str | int | Decimal) and not isinstance(value, bool):
            number = Decimal(value)
            if number.is_finite():
                return number
    raise ReceiptError(f"sale field {key!r} is {value!r}, not a decimal")


def _shift(value: object) -> str | None:
    """The sale's shift, once shifts exist: a name or number, or a table with one."""
    if isinstance(value, Mapping):
        value = value.get("name") or value.get("id")
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def receipt_from_sale(sale: Mapping[str, Any], station: ReceiptStation, printer: Printer, *,
                      order: Order | None = None, reprint: bool = False,
                      printed_at: datetime | None = None) -> ReceiptData:
    """The receipt of a sale as `GET /api/v1/sales` shows it (`sale.completed`'s data).

    `order` is the app order the sale fuelled, if any: its prepayment and refund are printed.
    The receipt number is left for the print queue to fill in."""
    try:
        sale_id, seq = str(sale["id"]), int(sale["seq"])
        nozzle, grade = int(sale["nozzle"]), str(sale["grade"])
        ended = datetime.fromisoformat(str(sale["ended_at"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ReceiptError(f"sale cannot be printed: {exc!r}") from None
    if ended.tzinfo is None:
        raise ReceiptError(f"sale {sale_id}: ended_at has no offset")
    amount = _decimal(sale, "amount")
    payments = []
    for item in sale.get("payments") or ():
        if not isinstance(item, Mapping):
            continue
        if order is not None and item.get("method") == APP_PAYMENT:
            continue  # the order's lines below show what was paid in the app, and the refund
        payments.append(PaymentLine(str(item.get("method")), _decimal(item, "amount")))
    order_id = sale.get("order_id")
    prepaid = refund = None
    if order is not None:
        prepaid = order.paid
        refund = order.refund if order.refund is not None else max(order.paid - amount,
                                                                    Decimal(0))
    return ReceiptData(
        station_name=station.name,
        sale_id=sale_id,
        sale_seq=seq,
        time=ended.astimezone(station.zone),
        nozzle=nozzle,
        grade_name=station.grade_names.get(grade, grade),
        price=_decimal(sale, "price"),
        volume=_decimal(sale, "volume"),
        amount=amount,
        payments=tuple(payments),
        order_id=str(order_id) if order_id else None,
        prepaid=prepaid,
        refund=refund,
        shift=_shift(sale.get("shift")),
        invoice_url=printer.invoice_link(sale_id=sale_id, seq=seq, station_id=station.id),
        reprint=reprint,
        printed_at=printed_at.astimezone(station.zone) if printed_at is not None else None,
        footer=printer.footer,
        sale_number=str(sale["number"]) if sale.get("number") else None,
    )


class ReceiptService:
    """The receipt printer of a running station; an async context manager.

    Inside `async with`, the print queue's thread runs and, with a `hub` and `auto_print`,
    every sale is printed when `printer.print_at` says. `append_event` records `printer.alarm`
    events (the ledger's); `find_order` looks up an app order for its prepayment and refund;
    `prints` counts a print of a sale and says how many were before it (the store's count;
    without it, counted in memory). `connect` replaces the configured transport (tests).
    Nothing here raises because of the printer.
    """

    def __init__(
        self,
        printer: Printer,
        station: ReceiptStation,
        *,
        spool: Path,
        hub: EventHub | None = None,
        append_event: Callable[[str, dict[str, Any]], Awaitable[object]] | None = None,
        find_order: Callable[[str], Awaitable[Order | None]] | None = None,
        prints: Callable[[str], Awaitable[int]] | None = None,
        connect: Callable[[], EscposPrinter] | None = None,
        clock: Callable[[], datetime] = _utc_now,
        backoff: Backoff | None = None,
        services: Services | None = None,
    ) -> None:
        self.printer = printer
        self.station = station
        self.spool = spool
        self._hub = hub
        self._append_event = append_event
        self._find_order = find_order
        self._prints = prints or self._count_in_memory
        self._counted: dict[str, int] = {}
        self._connect = connect or connector(printer.target)
        self._clock = clock
        self._backoff = backoff or Backoff(cap=printer.retry_max.total_seconds())
        self._queue: PrintQueue | None = None
        self._broken: str | None = None  # why there is no queue (the spool is unusable)
        self._alarms: asyncio.Queue[PrinterAlarm] = asyncio.Queue()
        self._services = services
        self._service: Service | None = None
        self._subscription: Subscription | None = None
        self._stack = contextlib.AsyncExitStack()
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def for_station(cls, config: StationConfig, printer: Printer, ledger: Ledger, *,
                    clock: Callable[[], datetime] = _utc_now,
                    connect: Callable[[], EscposPrinter] | None = None,
                    services: Services | None = None) -> ReceiptService:
        """The service as the daemon runs it: alarms into the ledger, sales from its hub, its
        loops under the daemon's `services` (a peripheral: restarted if they die)."""

        async def find_order(order_id: str) -> Order | None:
            return await ledger.read(ledger.store.get_order, order_id)

        async def prints(sale_id: str) -> int:
            return await ledger.write(ledger.store.write_with, receipt_printed, sale_id)

        return cls(printer, ReceiptStation.from_config(config),
                   spool=printer.spool_dir(config.storage.path), hub=ledger.hub,
                   append_event=ledger.append_event, find_order=find_order, prints=prints,
                   clock=clock, connect=connect, services=services)

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> ReceiptService:
        self._loop = asyncio.get_running_loop()
        p = self.printer
        try:
            self._queue = await asyncio.to_thread(
                PrintQueue, self.spool, self._connect, printer=str(p.target),
                on_alarm=self._alarm_from_thread, query_status=p.query_status,
                timeout=p.timeout.total_seconds(), backoff=self._backoff,
                expiry=p.job_expiry, clock=self._clock)
        except SpoolError as exc:
            # Receipts are lost, sales are not: the station runs on and says why.
            self._broken = str(exc)
            log.error("printer %s: %s; receipts will not print", p.target, exc)
            self._alarms.put_nowait(PrinterAlarm(str(p.target), PrinterCondition.FAILED,
                                                 PrinterCondition.READY, str(exc), 0))
        else:
            self._queue.start()
            if self._queue.pending():
                log.info("printer %s: %d job(s) left in the spool from before",
                         p.target, len(self._queue.pending()))
        try:
            if self._hub is not None and p.auto_print:
                # Entered once: sales that complete while the loops restart wait in it.
                self._subscription = await self._stack.enter_async_context(
                    self._hub.subscribe())
            services = self._services
            if services is None:  # used on its own: a supervisor of its own
                services = await self._stack.enter_async_context(Services())
            self._service = services.peripheral("printer", self.run)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._service is not None:
            await self._service.stop()
        if self._queue is not None:
            await asyncio.to_thread(self._queue.close)
        await asyncio.sleep(0)  # alarms the worker handed over before stopping
        while not self._alarms.empty():
            await self._record(self._alarms.get_nowait())
        await self._stack.aclose()

    async def run(self) -> None:
        """The service's loops, until cancelled: alarms into events, sales into receipts."""
        async with asyncio.TaskGroup() as loops:
            loops.create_task(self._record_alarms(), name="printer-alarms")
            if self._subscription is not None:
                loops.create_task(self._follow_sales(self._subscription),
                                  name="receipts-follow-sales")

    # -- alarms ------------------------------------------------------------------------------

    def _alarm_from_thread(self, alarm: PrinterAlarm) -> None:
        """The queue's worker thread reports here; the event is written on the loop."""
        if self._loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is gone: the daemon is stopping
            self._loop.call_soon_threadsafe(self._alarms.put_nowait, alarm)

    async def _record_alarms(self) -> None:
        while True:
            await self._record(await self._alarms.get())

    async def _record(self, alarm: PrinterAlarm) -> None:
        if self._append_event is None:
            return
        try:
            await self._append_event(ALARM_EVENT, alarm.event_data())
        except Exception as exc:  # the store has its own alarm; the log keeps this one
            log.error("printer %s: cannot record %s alarm: %s", alarm.printer,
                      alarm.condition.value, exc)

    # -- printing ----------------------------------------------------------------------------

    async def _follow_sales(self, subscription: Subscription) -> None:
        dropped = 0
        while True:
            message: Message = await subscription.get()
            if subscription.dropped > dropped:
                log.warning("receipts fell behind the station's events; %d message(s) "
                            "skipped, their receipts can be reprinted",
                            subscription.dropped - dropped)
                dropped = subscription.dropped
            data = message.get("data")
            if not isinstance(data, dict) or not self._prints_now(message.get("type"), data):
                continue
            try:
                await self._print_sale(data, requested=False)
            except Exception:  # one bad sale must not end receipts for the rest of the day
                log.exception("receipt for sale %s failed", data.get("id"))

    def _prints_now(self, kind: object, sale: Mapping[str, Any]) -> bool:
        """Whether this message is the moment `printer.print_at` prints the sale's receipt."""
        when = self.printer.print_at
        paid = sale.get("paid") is True
        if kind == "sale.completed":
            # A sale paid as it is recorded (an app order) is at its payment already.
            return when.at_fill_end or (when.at_payment and paid)
        return kind == PAYMENT_MESSAGE and when.at_payment and paid

    async def _count_in_memory(self, sale_id: str) -> int:
        before = self._counted.get(sale_id, 0)
        self._counted[sale_id] = before + 1
        return before

    async def _order(self, sale: Mapping[str, Any]) -> Order | None:
        order_id = sale.get("order_id")
        if not order_id or self._find_order is None:
            return None
        try:
            return await self._find_order(str(order_id))
        except Exception as exc:
            # The receipt still prints, without the prepayment lines.
            log.error("receipt for sale %s: cannot read app order %s: %s", sale.get("id"),
                      order_id, exc)
            return None

    def _refused(self, message: str) -> PrintOutcome:
        status = self.status()
        return PrintOutcome(False, None, status["pending_jobs"],
                            PrinterCondition(status["condition"]), message)

    async def _submit(self, content: bytes | Callable[[int], bytes], *, kind: str,
                      ref: str, copies: int) -> PrintOutcome:
        if self._queue is None:
            return self._refused(self._broken or "the printer is not running")
        try:
            job = await asyncio.to_thread(self._queue.submit, content, kind=kind, ref=ref,
                                          copies=copies)
        except SpoolError as exc:
            log.error("printer %s: %s", self.printer.target, exc)
            return self._refused(str(exc))
        status = self._queue.status()
        return PrintOutcome(True, job.number, status.pending_jobs, status.condition,
                            status.message)

    async def _print_sale(self, sale: Mapping[str, Any], *, requested: bool) -> PrintOutcome:
        sale_id = str(sale.get("id"))
        try:
            # Counted before it is queued: a print that then fails leaves a later one marked as
            # a copy, never a copy that looks original.
            before = await self._prints(sale_id)
        except Exception as exc:  # the store has its own alarm; print it as a copy, to be safe
            log.error("receipt for sale %s: cannot count its prints: %s", sale_id, exc)
            before = 1
        try:
            reprint = requested and before > 0
            receipt = receipt_from_sale(
                sale, self.station, self.printer, order=await self._order(sale),
                reprint=reprint, printed_at=self._clock() if reprint else None)
        except ReceiptError as exc:
            log.error("receipt for sale %s not printed: %s", sale_id, exc)
            return self._refused(str(exc))
        width = self.printer.width

        def content(number: int) -> bytes:
            return render_receipt(replace(receipt, receipt_no=number), width)

        outcome = replace(await self._submit(content, kind="receipt", ref=sale_id,
                                             copies=self.printer.copies), prints=before + 1)
        if (outcome.queued and self.printer.preview_dir is not None
                and outcome.receipt_no is not None):
            await self._keep_preview(replace(receipt, receipt_no=outcome.receipt_no))
        return outcome

    async def _keep_preview(self, receipt: ReceiptData) -> None:
        directory = self.printer.preview_dir
        assert directory is not None
        path = directory / f"{receipt.receipt_no:06d}-sale-{receipt.sale_seq}.png"
        try:
            from drivers.printer.preview import render_png  # Pillow, loaded when asked

            png = await asyncio.to_thread(render_png, receipt_document(receipt),
                                          self.printer.width)
            await asyncio.to_thread(_write, path, png)
        except OSError as exc:
            log.error("cannot keep the receipt preview %s: %s", path, exc.strerror or exc)

    async def print_sale(self, sale: Mapping[str, Any]) -> PrintOutcome:
        """Print a sale's receipt now (a second time: marked 补打 with the time of printing).
        `sale` as the API shows it. Returns once the job is spooled, not printed."""
        return await self._print_sale(sale, requested=True)

    async def print_document(self, document: Document, *, kind: str = "document",
                             ref: str = "", copies: int = 1) -> PrintOutcome:
        """Print any document (a shift report) through the same queue."""
        data = await asyncio.to_thread(render, document, self.printer.width)
        return await self._submit(data, kind=kind, ref=ref, copies=copies)

    async def preview(self, sale: Mapping[str, Any]) -> bytes:
        """The sale's receipt as a PNG, as it would print (without a receipt number).
        Raises ReceiptError for a sale that cannot be printed."""
        receipt = receipt_from_sale(sale, self.station, self.printer,
                                    order=await self._order(sale))
        from drivers.printer.preview import render_png

        return await asyncio.to_thread(render_png, receipt_document(receipt),
                                       self.printer.width)

    def retry_now(self) -> None:
        """The attendant fixed the printer (paper, cover, power): try at once."""
        if self._queue is not None:
            self._queue.wake()

    def status(self) -> dict[str, Any]:
        """For the health endpoint and the console."""
        s = self._queue.status() if self._queue is not None else QueueStatus(
            str(self.printer.target), PrinterCondition.FAILED,
            self._broken or "not running", 0, 0, 0)
        return {"printer": s.printer, "condition": s.condition.value, "message": s.message,
                "pending_jobs": s.pending_jobs, "printed_jobs": s.printed_jobs}


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
