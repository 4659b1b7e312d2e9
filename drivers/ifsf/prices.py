"""Prices on a dispenser node (PROTOCOLS.md, IFSF "Price change").

A price belongs to a product on a node, at the product's fuelling-mode address. The write is
acknowledged at once; the node takes the price only when every fuelling point is Idle or
below, and then reports the result as an error message per fuelling point: 0x99 done, 0x35
unknown product, 0x36 no answer from the pump's board, 0x37 refused (that point goes
Inoperative). The messages do not name the product, so one price change at a time goes to a
node (``NodePrices`` holds a lock per node); a write is skipped when the node already shows
the price.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from .address import Lna, ProductModeAddress
from .codec import Answer, DataItem
from .ids import ProductModeId
from .network import IfsfNetwork
from .numbers import PRICE_SIZE, decode_number, encode_number

__all__ = ["FUELLING_MODE", "NodePrices", "PriceWriteRefused"]

FUELLING_MODE = 1
"""The fuelling mode whose price the station sets (one mode per product at these sites)."""


class PriceWriteRefused(Exception):
    """The node refused the price write itself (its acknowledge), before any result."""

    def __init__(self, status: int, codes: dict[int, int]) -> None:
        super().__init__(f"message status {status}, codes {codes}")
        self.status = status
        self.codes = codes


class NodePrices:
    """The price changes of one node, one at a time; results fed by the line's dispatch."""

    def __init__(self, network: IfsfNetwork, node: Lna) -> None:
        self._network = network
        self.node = node
        self._lock = asyncio.Lock()
        self._waiting: dict[int, asyncio.Future[int]] = {}  # by fuelling point
        self.last: dict[int, int] = {}  # the last result per fuelling point

    def result(self, fp: int, code: int) -> None:
        """A price change result for fuelling point ``fp`` (an error message)."""
        self.last[fp] = code
        future = self._waiting.pop(fp, None)
        if future is not None and not future.done():
            future.set_result(code)

    async def read(self, product: int) -> Decimal | None:
        """The price the node shows for ``product``; None when it has no such product."""
        answers = await self._network.read(self.node, ProductModeAddress(product, FUELLING_MODE),
                                           (ProductModeId.PRICE,))
        for answer in answers:
            if isinstance(answer, Answer):
                value = answer.value(ProductModeId.PRICE)
                return decode_number(value) if value else None
        return None

    async def change(self, product: int, price: Decimal, places: int, fp: int,
                     within: float) -> int | None:
        """Set ``product``'s price; the result code for ``fp``, or None when the node already
        showed the price (nothing written). TimeoutError when no result comes ``within``
        seconds (the node waits until all its fuelling points are idle);
        ``IfsfCommandError`` when the node is not reached."""
        async with self._lock:
            if await self.read(product) == price:
                return None
            loop = asyncio.get_running_loop()
            future: asyncio.Future[int] = loop.create_future()
            self._waiting[fp] = future
            try:
                item = DataItem(ProductModeId.PRICE, encode_number(price, PRICE_SIZE, places))
                ack = await self._network.write(self.node, ProductModeAddress(
                    product, FUELLING_MODE), (item,))
                if not ack.accepted:
                    raise PriceWriteRefused(ack.status, ack.refused())
                async with asyncio.timeout(within):
                    return await future
            finally:
                if self._waiting.get(fp) is future:
                    del self._waiting[fp]
