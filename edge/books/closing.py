"""Month close (月结) and monthly account statements: gathering, closing, printing, CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from domain.model import rfc3339
from edge.books.documents import month_document, statement_document
from edge.books.month import TankMonth, month_csv, month_span, parse_month, report
from edge.books.service import BooksService
from edge.config.tanks import tank_nozzles
from edge.receipts import ReceiptService
from edge.store.books import BooksError
from edge.store.months import TankBook


class Closing:
    def __init__(self, books: BooksService, *, receipts: Callable[[], ReceiptService | None],
                 station_name: str) -> None:
        self.books = books
        self.receipts = receipts
        self.station_name = station_name
        config = books.config
        by_nozzle = tank_nozzles(config.tanks, config.pumps) if config.tanks else {}
        self.tanks = [TankBook(t.number, t.grade,
                               tuple(sorted(n for n, k in by_nozzle.items() if k == t.number)))
                      for t in (config.tanks.tanks if config.tanks else ())]

    def _span(self, month: str) -> tuple[Any, Any]:
        try:
            first = parse_month(month)
        except ValueError as exc:
            raise BooksError("invalid_month", str(exc), 422) from None
        return month_span(first, self.books.zone)

    def _make(self, month: str, start: Any, end: Any, reasons: Mapping[int, str] | None = None
              ) -> Callable[[list[TankMonth]], dict[str, Any]]:
        settings = self.books.settings

        def make(tanks: list[TankMonth]) -> dict[str, Any]:
            body = report(month, tanks, allowances=settings.allowances,
                          default_allowance=settings.loss_allowance_percent,
                          grade_names=self.books.grade_names, start=rfc3339(start),
                          end=rfc3339(end))
            for line in body["tanks"]:
                # A closing stock entered by hand says why (the gauge was off, a dipstick).
                line["closing_reason"] = (reasons or {}).get(line["tank"])
            return body
        return make

    async def month(self, month: str, entered: Mapping[int, Decimal] | None = None
                    ) -> dict[str, Any]:
        """A closed month as it was closed; an open one's figures as of now."""
        found = await self.books.ledger.read(self.books.months.closed, month)
        if found is not None:
            return {**found["report"], "status": "closed"}
        start, end = self._span(month)
        tanks = await self.books.ledger.read(self.books.months.gather, month, start, end,
                                             self.tanks, dict(entered or {}))
        return {**self._make(month, start, end)(tanks), "status": "open"}

    async def close(self, month: str, *, user: str,
                    entered: Mapping[int, tuple[Decimal, str]]) -> dict[str, Any]:
        """`entered`: by tank, a measured closing stock and why it was entered by hand."""
        if not self.tanks:
            raise BooksError("no_tanks", "the station has no [[tanks]]: there is no stock to "
                             "close", 409)
        unknown = sorted(set(entered) - {t.tank for t in self.tanks})
        if unknown:
            raise BooksError("unknown_tank", f"there is no tank {unknown[0]}", 422)
        start, end = self._span(month)
        body = await self.books.ledger.write(
            self.books.months.close, month, start=start, end=end, tanks=self.tanks,
            entered={tank: volume for tank, (volume, _) in entered.items()},
            make_report=self._make(month, start, end,
                                   {tank: why for tank, (_, why) in entered.items()}),
            user=user)
        await self.books.ledger.publish_new()
        body = {**body, "status": "closed"}
        service = self.receipts()
        if service is not None:
            outcome = await service.print_document(
                month_document(body, station_name=self.station_name), kind="month", ref=month)
            body["printed"] = outcome.to_api()
        return body

    async def adjust(self, *, tank: int, volume: Decimal, reason: str, corrects: str | None,
                     user: str) -> dict[str, Any]:
        book = next((t for t in self.tanks if t.tank == tank), None)
        if book is None:
            raise BooksError("unknown_tank", f"there is no tank {tank}", 404)
        now = self.books.now()
        month = f"{now.year:04d}-{now.month:02d}"
        if corrects is not None:
            self._span(corrects)
        done = await self.books.ledger.write(self.books.months.adjust, month=month, tank=tank,
                                             grade=book.grade, volume=volume, reason=reason,
                                             corrects=corrects, user=user)
        await self.books.ledger.publish_new()
        return done

    def csv(self, body: Mapping[str, Any]) -> str:
        return month_csv(body)

    async def statement(self, account_id: str, month: str) -> tuple[dict[str, Any],
                                                                    list[dict[str, Any]]]:
        account = await self.books.ledger.read(self.books.accounts.get, account_id)
        if account is None:
            raise BooksError("unknown_account", f"there is no credit account {account_id}", 404)
        start, end = self._span(month)
        rows = await self.books.ledger.read(self.books.accounts.statement, account_id, start,
                                            end)
        zone = self.books.zone
        for row in rows:
            row["ended_at"] = rfc3339(row["ended_at"].astimezone(zone))
        body = {"account": _account_view(account, zone), "month": month,
                "count": len(rows),
                "volume": format(sum((Decimal(r["volume"]) for r in rows), Decimal(0)), "f"),
                "amount": format(sum((Decimal(r["amount"]) for r in rows), Decimal(0)), "f"),
                "sales": rows}
        return body, rows

    async def print_statement(self, body: dict[str, Any]) -> dict[str, Any] | None:
        service = self.receipts()
        if service is None:
            return None
        outcome = await service.print_document(
            statement_document(body, body["sales"], station_name=self.station_name),
            kind="statement", ref=f"{body['account']['id']}-{body['month']}")
        return outcome.to_api()


def statement_csv(body: Mapping[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([f"{body['account']['name']} {body['month']} 挂账对账单"])
    writer.writerow(["时间", "销售单号", "枪号", "油品", "单价", "升数", "金额", "卡/车牌",
                     "签字人"])
    for row in body["sales"]:
        writer.writerow([row["ended_at"], row["sale_id"], row["nozzle"], row["grade"],
                         row["price"], row["volume"], row["amount"], row["identifier"],
                         row["signer"]])
    writer.writerow(["合计", body["count"], "", "", "", body["volume"], body["amount"], "", ""])
    return out.getvalue()


def _account_view(account: Mapping[str, Any], zone: Any) -> dict[str, Any]:
    return {**account, "created_at": rfc3339(account["created_at"].astimezone(zone)),
            "updated_at": rfc3339(account["updated_at"].astimezone(zone))}


account_view = _account_view
