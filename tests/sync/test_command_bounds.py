"""Cloud command inputs are bounded before they reach SQLite or the price book (issue cases 11
and 14, the cloud's side): an integer beyond SQLite's INTEGER in a `data.request` is an
`invalid_data` refusal, not an OverflowError turned `internal_error`, and a `price.schedule`
for the year 9999 is refused like the console's API refuses it (edge/pricing.py holds the one
definition of those bounds).

The requests go through the real inbox (signature, schema) to the real `data.request`
handlers over a real SQLite ledger.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.commands import CommandHandlers
from edge.hub import EventHub
from edge.ledger import Ledger
from edge.pricing import (
    CLOUD_PAST_TOLERANCE,
    FURTHEST_AHEAD,
    PAST_TOLERANCE,
    PriceRefused,
    check_effective_at,
)
from edge.shifts import ShiftService
from edge.store import Store
from sync.inbox import Inbox
from sync.keys import sign_command

pytestmark = pytest.mark.usefixtures("no_leaks")

SID = "XJ-URC-0001"
CLOUD = Ed25519PrivateKey.generate()
TOO_BIG = 2**63


@dataclass
class Station:
    inbox: Inbox
    store: Store
    n: int = 0

    async def send(self, type_: str, data: dict[str, Any]) -> dict[str, Any]:
        self.n += 1
        now = datetime.now(UTC)
        body = {"v": 1, "id": f"cmd-{self.n}", "type": type_, "station": SID,
                "ts": now.isoformat(),
                "data": {**data, "expires_at": (now + timedelta(minutes=5)).isoformat()}}
        reply = await self.inbox.handle(sign_command(CLOUD, body))
        assert reply["data"]["re"] == body["id"]
        result: dict[str, Any] = reply["data"]
        return result


@pytest.fixture
async def station(tmp_path: Path) -> AsyncIterator[Station]:
    store = Store.open(tmp_path / "station.db")
    ledger = Ledger(store, EventHub())
    try:
        shifts = ShiftService(ledger=ledger, grades={1: "92"}, station_name="测试")
        await shifts.open_first()
        # Orders and prices are not asked here: data.request only reads the ledger.
        handlers = CommandHandlers(orders=None, prices=None, ledger=ledger,  # type: ignore[arg-type]
                                   zone=UTC)
        handlers.data_sources["shift"] = shifts.data_source
        seen: set[str] = set()

        async def remember(command_id: str, keep_until: datetime) -> bool:
            new = command_id not in seen
            seen.add(command_id)
            return new

        inbox = Inbox(station_id=SID, public_key=CLOUD.public_key(), remember=remember,
                      handlers={"data.request": handlers.data_request},
                      clock=lambda: datetime.now(UTC))
        yield Station(inbox, store)
    finally:
        ledger.close()
        store.close()


@pytest.mark.parametrize("data", [
    {"what": "sales", "since_seq": TOO_BIG},
    {"what": "shift", "args": {"shift_id": TOO_BIG}},
    {"what": "shift", "args": {"shift_id": -TOO_BIG - 1}},
    {"what": "sales", "args": {"deep": [1, {"deeper": TOO_BIG}]}},
])
async def test_integers_beyond_sqlite_are_invalid_data_not_internal_errors(
        station: Station, data: dict[str, Any]) -> None:
    reply = await station.send("data.request", data)
    assert reply["ok"] is False
    assert reply["error"]["code"] == "invalid_data", reply
    assert "9223372036854775807" in reply["error"]["message"]


async def test_the_largest_integers_sqlite_takes_get_an_answer(station: Station) -> None:
    sales = await station.send("data.request", {"what": "sales", "since_seq": TOO_BIG - 1})
    assert sales["ok"] is True and sales["result"]["sales"] == []
    shift = await station.send("data.request", {"what": "shift",
                                                "args": {"shift_id": TOO_BIG - 1}})
    assert (shift["ok"], shift["error"]["code"]) == (False, "unknown_shift")
    current = await station.send("data.request", {"what": "shift", "args": {"shift_id": 1}})
    assert current["ok"] is True, current
    assert json.dumps(current["result"])  # a plain JSON answer


def test_effective_at_is_bounded_once_for_the_console_and_the_cloud() -> None:
    now = datetime(2026, 11, 22, 1, 15, tzinfo=UTC)
    check_effective_at(now, now)
    check_effective_at(now + FURTHEST_AHEAD, now)
    check_effective_at(now - PAST_TOLERANCE, now)
    check_effective_at(now - CLOUD_PAST_TOLERANCE, now, past_tolerance=CLOUD_PAST_TOLERANCE)
    cases = [
        (datetime(9999, 12, 31, 23, 59, tzinfo=UTC), PAST_TOLERANCE, "effective_at_too_far"),
        (now + FURTHEST_AHEAD + timedelta(seconds=1), CLOUD_PAST_TOLERANCE,
         "effective_at_too_far"),
        (now - PAST_TOLERANCE - timedelta(seconds=1), PAST_TOLERANCE, "effective_at_in_past"),
        (datetime(1970, 1, 1, tzinfo=UTC), CLOUD_PAST_TOLERANCE, "effective_at_in_past"),
    ]
    for effective_at, tolerance, code in cases:
        with pytest.raises(PriceRefused) as refused:
            check_effective_at(effective_at, now, past_tolerance=tolerance)
        assert refused.value.code == code
