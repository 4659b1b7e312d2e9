"""What each signed cloud command does at the station (the inbox checked it already).

The handlers translate the station's own refusals (``OrderRefused``, ``PriceRefused``,
``StationError``) into ``CommandError`` codes the cloud sees in the reply.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import tzinfo
from typing import Any

from domain.errors import StationError
from domain.model import decimal_str, rfc3339, sale_to_api
from edge.ledger import Ledger
from edge.orders import OrderRefused, Orders
from edge.pricing import CLOUD_PAST_TOLERANCE, PriceRefused, PriceScheduler
from sync.inbox import CommandError, Handler
from sync.schemas import DataRequest, OrderCancel, OrderCreate, PriceScheduleData

#: ``data.request`` answers by ``what``; shifts and tanks register theirs here when present.
DataSource = Callable[[DataRequest], Awaitable[Any]]


class CommandHandlers:
    def __init__(self, *, orders: Orders, prices: PriceScheduler, ledger: Ledger,
                 zone: tzinfo) -> None:
        self.orders = orders
        self.prices = prices
        self.ledger = ledger
        self.zone = zone
        self.data_sources: dict[str, DataSource] = {
            "sales": self._sales,
            "totals": self._totals,
        }

    def mapping(self) -> dict[str, Handler]:
        return {"order.create": self.order_create, "order.cancel": self.order_cancel,
                "price.schedule": self.price_schedule, "data.request": self.data_request}

    async def order_create(self, data: OrderCreate) -> dict[str, Any]:
        try:
            return await self.orders.create(
                order_id=data.order_id, nozzle=data.nozzle, grade=data.grade, price=data.price,
                preset=data.preset.to_preset(), paid=data.paid, expires_at=data.expires_at,
                account=data.account.to_use() if data.account is not None else None)
        except OrderRefused as exc:
            raise CommandError(exc.code, exc.message) from None
        except StationError as exc:
            raise CommandError(exc.code, exc.message) from None

    async def order_cancel(self, data: OrderCancel) -> dict[str, Any]:
        try:
            return await self.orders.cancel(data.order_id)
        except OrderRefused as exc:
            raise CommandError(exc.code, exc.message) from None

    async def price_schedule(self, data: PriceScheduleData) -> dict[str, Any]:
        try:
            schedule = await self.prices.schedule(
                data.price_set_id, effective_at=data.effective_at, prices=data.prices,
                source="cloud", past_tolerance=CLOUD_PAST_TOLERANCE)
        except PriceRefused as exc:
            raise CommandError(exc.code, exc.message) from None
        return {"price_set_id": schedule.price_set_id,
                "effective_at": rfc3339(schedule.effective_at.astimezone(self.zone)),
                "applied": schedule.applied_at is not None}

    async def data_request(self, data: DataRequest) -> Any:
        source = self.data_sources.get(data.what)
        if source is None:
            raise CommandError("not_available",
                               f"{data.what} data is not kept by this station version")
        return await source(data)

    async def _sales(self, data: DataRequest) -> dict[str, Any]:
        since = data.since_seq or 0
        rows = await self.ledger.read(self.ledger.store.sales, since_seq=since, limit=data.limit)
        return {"sales": [sale_to_api(s, self.zone) for s in rows],
                "next_since_seq": rows[-1].seq if len(rows) == data.limit else None}

    async def _totals(self, data: DataRequest) -> dict[str, Any]:
        readings = await self.ledger.read(self.ledger.store.latest_totals)
        return {"totals": [{"pump": r.pump, "nozzle": r.nozzle,
                            "volume_total": format(r.volume_total, "f"),
                            "amount_total": format(r.amount_total, "f"),
                            "read_at": rfc3339(r.read_at.astimezone(self.zone))}
                           for r in readings]}


__all__ = ["CommandHandlers", "DataSource", "decimal_str"]
