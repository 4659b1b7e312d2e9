"""The books' parts, put together for the daemon (edge/station.py) and the API."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, tzinfo
from typing import Any

from edge.books.closing import Closing
from edge.books.receiving import Receiving
from edge.books.service import BooksService
from edge.config import StationConfig
from edge.ledger import Ledger
from edge.receipts import ReceiptService

__all__ = ["Books"]


class Books:
    """The books' parts, put together for the daemon and the API."""

    def __init__(self, config: StationConfig, ledger: Ledger, *, zone: tzinfo,
                 clock: Callable[[], datetime],
                 tanks: Callable[[], Callable[[], Awaitable[dict[str, Any]]] | None],
                 receipts: Callable[[], ReceiptService | None]) -> None:
        self.service = BooksService(config, ledger, zone=zone, clock=clock)

        async def tank_view() -> dict[str, Any]:
            view = tanks()
            return {"tanks": []} if view is None else await view()

        self.receiving = Receiving(self.service, tanks=tank_view, receipts=receipts,
                                   station_name=config.station.name)
        self.closing = Closing(self.service, receipts=receipts,
                               station_name=config.station.name)
