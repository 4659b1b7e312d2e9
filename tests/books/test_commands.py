"""The cloud's `account.upsert` and `account.block` through the real inbox (signature, schema)
to the books over a real SQLite ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.books.commands import ACCOUNT_SCHEMAS, account_handlers
from edge.books.service import BooksService
from edge.config.loader import load_config
from edge.hub import EventHub
from edge.ledger import Ledger
from edge.store import Store
from sync.inbox import Inbox
from sync.keys import sign_command
from sync.schemas import SCHEMAS

SID = "XJ-URC-0001"
CLOUD = Ed25519PrivateKey.generate()
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Station:
    inbox: Inbox
    books: BooksService
    n: int = 0

    async def send(self, type_: str, data: dict[str, Any]) -> dict[str, Any]:
        self.n += 1
        now = datetime.now(UTC)
        body = {"v": 1, "id": f"cmd-{self.n}", "type": type_, "station": SID,
                "ts": now.isoformat(),
                "data": {**data, "expires_at": (now + timedelta(minutes=5)).isoformat()}}
        reply = await self.inbox.handle(sign_command(CLOUD, body))
        result: dict[str, Any] = reply["data"]
        return result


@pytest.fixture
async def station(tmp_path: Path) -> AsyncIterator[Station]:
    config = load_config(ROOT / "config" / "minimal.toml", check_files=False)
    store = Store.open(tmp_path / "station.db")
    ledger = Ledger(store, EventHub())
    try:
        books = BooksService(config, ledger, zone=ZoneInfo("Asia/Shanghai"),
                             clock=lambda: datetime.now(UTC))
        seen: set[str] = set()

        async def remember(command_id: str, keep_until: datetime) -> bool:
            new = command_id not in seen
            seen.add(command_id)
            return new

        inbox = Inbox(station_id=SID, public_key=CLOUD.public_key(), remember=remember,
                      handlers=account_handlers(books), schemas={**SCHEMAS, **ACCOUNT_SCHEMAS},
                      clock=lambda: datetime.now(UTC))
        yield Station(inbox, books)
    finally:
        ledger.close()
        store.close()


async def test_the_cloud_creates_and_blocks_an_account(station: Station) -> None:
    made = await station.send("account.upsert", {
        "account_id": "FLEET-7", "name": "喀什物流", "plates": ["新Q 88888"],
        "limits": {"fills": 2, "amount": "800.00"}})
    assert made["ok"] is True and made["result"] == {"account_id": "FLEET-7",
                                                     "status": "active"}
    account = await station.books.ledger.read(station.books.accounts.get, "FLEET-7")
    assert account is not None and account["plates"] == ["新Q88888"]
    assert account["source"] == "cloud" and account["limits"]["fills"] == 2

    no_reason = await station.send("account.block", {"account_id": "FLEET-7"})
    assert no_reason["ok"] is False and no_reason["error"]["code"] == "invalid_data"
    blocked = await station.send("account.block", {"account_id": "FLEET-7", "reason": "欠款"})
    assert blocked["ok"] is True and blocked["result"]["status"] == "blocked"
    unknown = await station.send("account.block", {"account_id": "NOPE", "reason": "x"})
    assert unknown["ok"] is False and unknown["error"]["code"] == "unknown_account"
    events = [e.type for e in station.books.ledger.store.events_since(0)]
    assert events == ["account.changed", "account.changed"]


async def test_a_malformed_account_command_is_refused_and_changes_nothing(
        station: Station) -> None:
    bad = await station.send("account.upsert", {"account_id": "F 1", "name": "x"})
    assert bad["ok"] is False and bad["error"]["code"] == "invalid_data"
    wrong = await station.send("account.upsert", {"account_id": "F1", "name": "x",
                                                  "limits": {"amount": 5}})
    assert wrong["ok"] is False and wrong["error"]["code"] == "invalid_data"
    assert await station.books.ledger.read(station.books.accounts.all) == []
