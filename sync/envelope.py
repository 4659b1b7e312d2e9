"""The JSON envelope of every MQTT message (CONTRACT section 4).

`{"v": 1, "id", "type", "station", "ts", "seq" and "epoch" (events only), "data"}`. An event's
envelope is built from the stored event alone, so a resend after a reconnect is byte-for-byte the
same message: same id, seq, epoch and ts (an event moves to a new epoch only when the cloud
reported its key taken, docs/cloud.md "Epochs"). Other messages (status, live, replies) get a
fresh id.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from domain.ids import IdMaker
from domain.model import Event, rfc3339

VERSION = 1
REPLY = "reply"

_ids = IdMaker()


def new_id(now: datetime) -> str:
    """A unique message id (UUIDv7 text: sortable by creation time)."""
    return _ids.new(now)


def _ts(value: datetime, zone: tzinfo | None) -> str:
    return rfc3339(value.astimezone(zone) if zone is not None else value)


def event_envelope(station_id: str, event: Event, zone: tzinfo | None = None) -> dict[str, Any]:
    """A stored event as it goes to `fcc/v1/{sid}/events`; `ts` in `zone` when given."""
    return {
        "v": VERSION,
        "id": event.id,
        "type": event.type,
        "station": station_id,
        "ts": _ts(event.ts, zone),
        "seq": event.seq,
        "epoch": event.epoch,
        "data": event.data,
    }


def message_envelope(
    station_id: str, type_: str, data: dict[str, Any], *, ts: datetime, id_: str | None = None
) -> dict[str, Any]:
    """Any other message (no seq): a new id unless `id_` is given."""
    if not type_:
        raise ValueError("a message needs a type")
    return {
        "v": VERSION,
        "id": new_id(ts) if id_ is None else id_,
        "type": type_,
        "station": station_id,
        "ts": rfc3339(ts),
        "data": data,
    }


def reply_envelope(
    station_id: str,
    *,
    re: str | None,
    ok: bool,
    ts: datetime,
    result: Any = None,
    error: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The answer to one command, for `fcc/v1/{sid}/replies`.

    `re` is the command's id (None when the command was too broken to have one); `error` is
    (code, message) and goes with ok=False only.
    """
    if ok and error is not None:
        raise ValueError("a successful reply carries no error")
    if not ok and error is None:
        raise ValueError("a refusal needs an error (code, message)")
    data = {
        "re": re,
        "ok": ok,
        "error": None if error is None else {"code": error[0], "message": error[1]},
        "result": result,
    }
    return message_envelope(station_id, REPLY, data, ts=ts)
