from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.model import Event
from sync.envelope import event_envelope, message_envelope, reply_envelope

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 22, 1, 15, tzinfo=UTC)

EVENT = Event(
    seq=42,
    id="0193a1b2-0000-7000-8000-000000000001",
    type="order.updated",
    ts=T0,
    data={"order_id": "A-1", "status": "accepted", "reason": None, "sale_id": None, "refund": None},
)


def test_event_envelope_is_the_contract_shape() -> None:
    # CONTRACT section 4, written out by hand rather than built by our own code.
    assert event_envelope("XJ-URC-0001", EVENT) == {
        "v": 1,
        "id": "0193a1b2-0000-7000-8000-000000000001",
        "type": "order.updated",
        "station": "XJ-URC-0001",
        "ts": "2026-11-22T01:15:00+00:00",
        "seq": 42,
        "epoch": 1,
        "data": {
            "order_id": "A-1",
            "status": "accepted",
            "reason": None,
            "sale_id": None,
            "refund": None,
        },
    }


def test_an_event_of_a_later_epoch_says_so() -> None:
    later = Event(seq=9, id="0193a1b2-0000-7000-8000-000000000009", type="sale.completed",
                  ts=T0, data={}, epoch=3)
    envelope = event_envelope("XJ-URC-0001", later)
    assert (envelope["seq"], envelope["epoch"]) == (9, 3)


def test_event_envelope_speaks_the_station_time_zone() -> None:
    envelope = event_envelope("XJ-URC-0001", EVENT, CST)
    assert envelope["ts"] == "2026-11-22T09:15:00+08:00"
    assert datetime.fromisoformat(envelope["ts"]) == T0


def test_a_resent_event_is_the_same_message() -> None:
    first = json.dumps(event_envelope("S1", EVENT, CST))
    again = json.dumps(event_envelope("S1", EVENT, CST))
    assert first == again


def test_message_envelope_has_no_seq_and_a_fresh_id() -> None:
    a = message_envelope("S1", "status", {"online": True}, ts=T0)
    b = message_envelope("S1", "status", {"online": True}, ts=T0)
    assert set(a) == {"v", "id", "type", "station", "ts", "data"}
    assert (a["v"], a["type"], a["station"], a["ts"], a["data"]) == (
        1,
        "status",
        "S1",
        "2026-11-22T01:15:00+00:00",
        {"online": True},
    )
    assert a["id"] != b["id"]
    assert len({message_envelope("S1", "x", {}, ts=T0)["id"] for _ in range(1000)}) == 1000


def test_message_envelope_keeps_a_given_id_and_the_offset_of_ts() -> None:
    envelope = message_envelope("S1", "live", {}, ts=T0.astimezone(CST), id_="m-1")
    assert envelope["id"] == "m-1"
    assert envelope["ts"] == "2026-11-22T09:15:00+08:00"


def test_message_envelope_refuses_naive_time_and_empty_type() -> None:
    with pytest.raises(ValueError, match="naive"):
        message_envelope("S1", "live", {}, ts=datetime(2026, 11, 22))
    with pytest.raises(ValueError, match="type"):
        message_envelope("S1", "", {}, ts=T0)


def test_reply_envelopes() -> None:
    ok = reply_envelope("S1", re="c-1", ok=True, ts=T0, result={"order_id": "A-1"})
    assert ok["type"] == "reply"
    assert "seq" not in ok
    assert ok["data"] == {"re": "c-1", "ok": True, "error": None, "result": {"order_id": "A-1"}}
    refused = reply_envelope("S1", re=None, ok=False, ts=T0, error=("malformed", "not JSON"))
    assert refused["data"] == {
        "re": None,
        "ok": False,
        "error": {"code": "malformed", "message": "not JSON"},
        "result": None,
    }
    json.dumps(refused)  # sendable as it is


def test_reply_envelope_refuses_inconsistent_replies() -> None:
    with pytest.raises(ValueError):
        reply_envelope("S1", re="c-1", ok=True, ts=T0, error=("x", "y"))
    with pytest.raises(ValueError):
        reply_envelope("S1", re="c-1", ok=False, ts=T0)
