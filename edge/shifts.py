"""Shifts (一键班结): one click closes the shift and opens the next.

The ledger does the close in one transaction (closing totals, report, next shift, the
`shift.closed` event: see edge/store/shifts.py); this service runs it off the event loop,
tells the hub, prints the report when the station has a printer, and answers the cloud's
`data.request` for "shift". A print that fails never undoes a close: the report stays in the
ledger and in the event, and can be read again with `GET /api/v1/shifts/{id}`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from drivers.printer.document import Align, Document, Line, Pair, Rule, Size, Text
from edge.config import StationConfig
from edge.ledger import Ledger
from edge.receipts import ReceiptService
from edge.shift_close import closing, precheck
from edge.store.shifts import Shift
from sync.inbox import CommandError
from sync.schemas import DataRequest

log = logging.getLogger(__name__)

_METHOD_NAMES = {"cash": "现金", "wechat": "微信", "alipay": "支付宝", "card": "银行卡",
                 "account": "记账", "app": "APP预付"}  # fmt: skip


def nozzle_grades(config: StationConfig) -> dict[int, str]:
    """Each configured nozzle's grade code, by station-wide nozzle number."""
    return {nozzle.number: nozzle.grade for pump in config.pumps for nozzle in pump.nozzles}


class ShiftService:
    def __init__(self, *, ledger: Ledger, grades: Mapping[int, str], station_name: str,
                 receipts: ReceiptService | None = None) -> None:  # fmt: skip
        self.ledger = ledger
        self.grades = dict(grades)
        self.station_name = station_name
        self.receipts = receipts
        self._opened = False

    async def open_first(self) -> Shift:
        """Opens shift 1 on the station's first start; later starts find their shift open.
        Raises StoreUnavailable when the ledger cannot be written (tried again on use)."""
        shift, created = await self.ledger.write(self.ledger.store.open_first_shift)
        self._opened = True
        if created:
            log.info("shift %d opened", shift.id)
        return shift

    async def _ensure_open(self) -> None:
        # A start with the disk refusing writes could not open shift 1: do it on first use.
        if not self._opened:
            await self.open_first()

    async def report(self, shift_id: int | None = None) -> dict[str, Any] | None:
        """A shift's report (None: the open shift's running figures); None if unknown."""
        if shift_id is None:
            await self._ensure_open()
        found: dict[str, Any] | None = await self.ledger.read(
            self.ledger.store.shift_report, shift_id, grades=self.grades
        )
        return found

    async def check(self) -> dict[str, Any]:
        """The pre-close check of the open shift (edge/shift_close.py)."""
        report = await self.report(None)
        assert report is not None
        store, zone = self.ledger.store, self.ledger.zone
        found: dict[str, Any] = await self.ledger.read(
            store.read_with, lambda conn: precheck(conn, datetime.now(UTC), report, zone))
        return found

    async def close(self, *, user: str, counted_cash: Decimal | None = None,
                    reason: str | None = None, repeat: bool = False,
                    checked: bool = False) -> dict[str, Any]:
        """Closes the open shift, opens the next, and returns the closed shift's report.

        With `checked`, the close is a person's (edge/shift_close.py): refused while sales are
        unpaid or authorizations open unless there is a `reason`, refused within a minute of
        the last close unless `repeat`; `counted_cash` gives the report its over/short."""
        await self._ensure_open()
        finish = closing(counted_cash=counted_cash, reason=reason, repeat=repeat,
                         zone=self.ledger.zone) if checked else None
        closed, following, _ = await self.ledger.write(
            self.ledger.store.close_shift, closed_by=user, grades=self.grades, finish=finish
        )
        await self.ledger.publish_new()
        assert closed.report is not None
        report = closed.report
        counts = report["counts"]
        log.info("shift %d closed by %s: %d sales, %d unpaid, %d nozzle mismatches; shift %d "
                 "open", closed.id, user, counts["sales"], counts["unpaid"],
                 counts["mismatches"], following.id)  # fmt: skip
        if counts["mismatches"]:
            log.warning("shift %d: totals and sales differ on nozzles %s", closed.id,
                        [line["nozzle"] for line in report["nozzles"] if line["mismatch"]])
        if self.receipts is not None:
            outcome = await self.receipts.print_document(
                report_document(report, station_name=self.station_name), kind="shift",
                ref=str(closed.id))  # fmt: skip
            if not outcome.queued:
                log.warning("shift %d report not printed: %s", closed.id, outcome.message)
        return report

    async def data_source(self, request: DataRequest) -> dict[str, Any]:
        """`data.request` "shift": the open shift's running report, or `args.shift_id`'s."""
        wanted = request.args.get("shift_id")
        if wanted is not None and (not isinstance(wanted, int) or isinstance(wanted, bool)):
            raise CommandError("invalid_args", "args.shift_id must be an integer")
        report = await self.report(wanted)
        if report is None:
            raise CommandError("unknown_shift", f"there is no shift {wanted}")
        return report


def _short_time(text: str | None) -> str:
    # "2026-11-22T09:15:00.123456+08:00" -> "2026-11-22 09:15:00": the paper shows station time.
    return "-" if text is None else text[:19].replace("T", " ")


def report_document(report: Mapping[str, Any], *, station_name: str) -> Document:
    """The shift report on paper (班结报表), in the order an attendant checks it."""
    lines: list[Line] = [
        Text(station_name, align=Align.CENTER, bold=True),
        Text("班结报表", align=Align.CENTER, bold=True, size=Size.TALL),
        Pair("班次", str(report["shift_id"])),
        Pair("开班", _short_time(report["opened_at"])),
        Pair("交班", _short_time(report["closed_at"] or report["as_of"])),
        Pair("交班人", report["closed_by"] or "-"),
        Rule(),
    ]
    for line in report["nozzles"]:
        lines.append(Text(f"{line['nozzle']}号枪  {line['grade'] or '-'}", bold=True))
        if line["open"] is not None and line["close"] is not None:
            lines.append(Pair("起码(升)", line["open"]["volume_total"]))
            lines.append(Pair("止码(升)", line["close"]["volume_total"]))
            lines.append(Pair("泵码升数", line["delta"]["volume"]))
        lines.append(Pair("销售升数", f"{line['sales']['volume']} ({line['sales']['count']}笔)"))
        lines.append(Pair("销售金额", line["sales"]["amount"]))
        if line["difference"] is not None:
            lines.append(Pair("差异(升)", line["difference"]["volume"], bold=line["mismatch"]))
            lines.append(Pair("差异(元)", line["difference"]["amount"], bold=line["mismatch"]))
        if line.get("nonsale", {}).get("volume", "0") not in ("0", "0.00"):
            lines.append(Pair("非销售升数", line["nonsale"]["volume"]))
        if line.get("correction", {}).get("volume", "0") not in ("0", "0.00"):
            lines.append(Pair("泵码校正(升)", line["correction"]["volume"]))
        if line["mismatch"]:
            lines.append(Text("** 泵码与销售不符 **", bold=True))
    lines.append(Rule())
    for grade in report["grades"]:
        lines.append(Pair(f"{grade['grade']} 升数", grade["volume"]))
        lines.append(Pair(f"{grade['grade']} 金额", grade["amount"]))
    lines.append(Rule())
    for payment in report["payments"]:
        name = _METHOD_NAMES.get(payment["method"], payment["method"])
        lines.append(Pair(f"{name} ({payment['count']}笔)", payment["amount"]))
    totals = report["totals"]
    lines += [Pair("合计金额", totals["amount"], bold=True), Pair("已收", totals["paid"]),
              Pair("未收", totals["due"], bold=True)]  # fmt: skip
    cash = report.get("cash")
    if cash:
        lines += [Rule(), Pair("应收现金", cash["expected"]), Pair("实点现金", cash["counted"]),
                  Pair("长短款", cash["over_short"], bold=True)]
    if report["unpaid"]:
        lines.append(Rule())
        lines.append(Text(f"未结销售 {len(report['unpaid'])} 笔", bold=True))
        for sale in report["unpaid"]:
            label = sale.get("number") or sale["id"][-8:]
            lines.append(Pair(f"{sale['nozzle']}号枪 {label}", sale["due"]))
    if report.get("close_reason"):
        lines += [Rule(), Text("未结清仍交班，原因：", bold=True), Text(report["close_reason"])]
    return Document(lines=tuple(lines))
