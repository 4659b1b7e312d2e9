"""The store's outbox as the cloud link reads it (``sync.outbox.Outbox``)."""

from __future__ import annotations

from domain.model import Event
from edge.ledger import Ledger


class LedgerOutbox:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def pending(self, after_seq: int, limit: int) -> list[Event]:
        events: list[Event] = await self.ledger.read(self.ledger.store.outbox_pending,
                                                     after_seq=after_seq, limit=limit)
        return events

    async def ack(self, upto_seq: int) -> int:
        removed: int = await self.ledger.write(self.ledger.store.outbox_ack, upto_seq)
        return removed

    async def backlog(self) -> int:
        count: int = await self.ledger.read(self.ledger.store.outbox_backlog)
        return count
