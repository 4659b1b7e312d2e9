"""Cloud commands reach the audit log through the inbox's `audit` callback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from edge.audit import command_auditor, redact
from edge.hub import EventHub
from edge.ledger import Ledger
from edge.store import Store


@pytest_asyncio.fixture
async def ledger(store: Store) -> AsyncIterator[Ledger]:
    opened = Ledger(store, EventHub())
    yield opened
    opened.close()


async def test_commands_are_recorded_as_the_cloud(ledger: Ledger, store: Store) -> None:
    audit = command_auditor(ledger)
    await audit({"id": "c-1", "type": "order.create", "ok": True, "code": None})
    await audit({"id": "c-2", "type": "price.set", "ok": False, "code": "expired"})
    await audit({"id": None, "type": None, "ok": False, "code": "bad_signature"})
    got = [(e.actor, e.action, e.target, e.outcome) for e in store.audit_entries()]
    assert got == [
        ("cloud", "command.order.create", "c-1", "ok"),
        ("cloud", "command.price.set", "c-2", "expired"),
        ("cloud", "command.unreadable", None, "bad_signature"),
    ]
    assert store.audit_verify().ok


def test_secrets_are_redacted() -> None:
    body = {"user": "ann", "pin": "1234", "nested": [{"new_pin": "9"}], "amount": "5.00"}
    assert redact(body) == {"user": "ann", "pin": "***", "nested": [{"new_pin": "***"}],
                            "amount": "5.00"}
