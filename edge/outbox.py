"""The store's outbox as the cloud link reads it (``sync.outbox.Outbox``)."""

from __future__ import annotations

from typing import Any

from domain.model import Event
from edge.ledger import Ledger
from sync.outbox import ALARM_EVENT


class LedgerOutbox:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def pending(self, after_seq: int, limit: int) -> list[Event]:
        events: list[Event] = await self.ledger.read(self.ledger.store.outbox_pending,
                                                     after_seq=after_seq, limit=limit)
        return events

    async def ack(self, upto_seq: int, epoch: int) -> int:
        removed: int = await self.ledger.write(self.ledger.store.outbox_ack, upto_seq, epoch)
        return removed

    async def backlog(self) -> int:
        count: int = await self.ledger.read(self.ledger.store.outbox_backlog)
        return count

    async def position(self) -> tuple[int, int]:
        found: tuple[int, int] = await self.ledger.read(self.ledger.store.ledger_position)
        return found

    async def alarm(self, data: dict[str, Any]) -> None:
        # Through the ledger: the event goes to the WebSocket (the manager's console) and, like
        # every event, to the cloud.
        await self.ledger.append_event(ALARM_EVENT, data)

    async def conflict(self, epoch: int, seq: int, cloud_epoch: int) -> int | None:
        started: Event | None = await self.ledger.write(
            self.ledger.store.resolve_epoch_conflict, epoch, seq, cloud_epoch)
        if started is None:
            return None
        await self.ledger.publish_new()
        return started.epoch
