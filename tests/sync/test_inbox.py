from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel

from domain.model import Preset
from edge.store import Store
from sync.inbox import CommandError, Inbox
from sync.keys import sign_command
from sync.schemas import DataRequest, OrderCreate, PriceScheduleData

# Fixtures from conftest.py: no test may leave a thread or a task behind.
pytestmark = pytest.mark.usefixtures("no_leaks")

STATION = "XJ-URC-0001"
T0 = datetime(2026, 11, 22, 1, 15, tzinfo=UTC)
CLOUD = Ed25519PrivateKey.generate()
STRANGER = Ed25519PrivateKey.generate()

ORDER = {
    "order_id": "APP-20261122-0001",
    "nozzle": 1,
    "grade": "92",
    "price": "7.50",
    "preset": {"amount": "100.00"},
    "paid": "100.00",
    "expires_at": "2026-11-22T09:20:00+08:00",  # T0 + 5 minutes
}


def envelope(type_: str = "order.create", data: Any = None, **fields: Any) -> dict[str, Any]:
    body = {
        "v": 1,
        "id": "cmd-1",
        "type": type_,
        "station": STATION,
        "ts": "2026-11-22T09:15:00+08:00",
        "data": ORDER if data is None else data,
    }
    body.update(fields)
    return body


def signed(body: dict[str, Any], key: Ed25519PrivateKey = CLOUD) -> bytes:
    return sign_command(key, body)


def signed_text(text: str, key: Ed25519PrivateKey = CLOUD) -> bytes:
    """A payload whose body is any text, signed: tests what happens after the signature."""
    sig = base64.b64encode(key.sign(text.encode("utf-8"))).decode()
    return json.dumps({"body": text, "sig": sig}).encode()


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Handlers:
    calls: list[tuple[str, BaseModel]] = field(default_factory=list)
    result: Any = None
    error: Exception | None = None

    def for_types(self, *types: str) -> dict[str, Any]:
        def make(type_: str) -> Any:
            async def handler(data: BaseModel) -> Any:
                self.calls.append((type_, data))
                if self.error is not None:
                    raise self.error
                return self.result

            return handler

        return {t: make(t) for t in types}


TYPES = ("order.create", "order.cancel", "price.schedule", "data.request")


@dataclass
class Station:
    """An inbox over a real SQLite replay cache, as the daemon wires it."""

    path: Path
    clock: Clock = field(default_factory=Clock)
    handlers: Handlers = field(default_factory=Handlers)
    audit: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.store = Store.open(self.path, clock=self.clock)
        self.inbox = self.new_inbox()

    def new_inbox(self) -> Inbox:
        async def remember(command_id: str, keep_until: datetime) -> bool:
            return self.store.remember_command(command_id, keep_until)

        async def audit(entry: dict[str, Any]) -> None:
            self.audit.append(entry)

        return Inbox(
            station_id=STATION,
            public_key=CLOUD.public_key(),
            remember=remember,
            handlers=self.handlers.for_types(*TYPES),
            clock=self.clock,
            audit=audit,
        )

    def restart(self) -> None:
        self.store.close()
        self.store = Store.open(self.path, clock=self.clock)
        self.inbox = self.new_inbox()

    def remembered(self) -> list[str]:
        with self.store._db.read() as conn:
            return [r[0] for r in conn.execute("SELECT id FROM commands_seen ORDER BY id")]

    async def send(self, payload: bytes) -> dict[str, Any]:
        reply = await self.inbox.handle(payload)
        json.dumps(reply)  # every reply is sendable as it is
        assert (reply["v"], reply["type"], reply["station"]) == (1, "reply", STATION)
        assert "seq" not in reply
        return reply


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Station]:
    opened = Station(tmp_path / "station.db")
    yield opened
    opened.store.close()


def refused(reply: dict[str, Any]) -> str:
    data = reply["data"]
    assert data["ok"] is False, data
    assert data["result"] is None
    assert set(data["error"]) == {"code", "message"}
    assert data["error"]["message"]
    code: str = data["error"]["code"]
    return code


def assert_nothing_happened(station: Station) -> None:
    assert station.handlers.calls == []
    assert station.remembered() == []
    assert station.store.last_seq() == 0


# --- the one good path


async def test_a_valid_command_runs_its_handler_once(station: Station) -> None:
    station.handlers.result = {"order_id": "APP-20261122-0001", "status": "authorized"}
    reply = await station.send(signed(envelope()))
    assert reply["data"] == {
        "re": "cmd-1",
        "ok": True,
        "error": None,
        "result": {"order_id": "APP-20261122-0001", "status": "authorized"},
    }
    [(type_, data)] = station.handlers.calls
    assert type_ == "order.create"
    assert isinstance(data, OrderCreate)
    assert (data.order_id, data.nozzle, data.grade) == ("APP-20261122-0001", 1, "92")
    assert (data.price, data.paid) == (Decimal("7.50"), Decimal("100.00"))
    assert data.preset.to_preset() == Preset("amount", Decimal("100.00"))
    assert data.expires_at == T0 + timedelta(minutes=5)
    assert station.remembered() == ["cmd-1"]
    assert station.audit == [{"id": "cmd-1", "type": "order.create", "ok": True, "code": None}]


async def test_each_command_type_gets_its_checked_data(station: Station) -> None:
    exp = "2026-11-22T09:30:00+08:00"
    await station.send(
        signed(
            envelope(
                "price.schedule",
                {
                    "price_set_id": "PS-2026-11-23",
                    "effective_at": "2026-11-23T00:00:00+08:00",
                    "prices": {"92": "7.62", "95": "8.125"},
                    "expires_at": exp,
                },
                id="c-p",
            )
        )
    )
    await station.send(
        signed(
            envelope(
                "data.request",
                {"what": "sales", "since_seq": 10, "expires_at": exp, "args": {"page": 2}},
                id="c-d",
            )
        )
    )
    await station.send(
        signed(envelope("order.cancel", {"order_id": "A-1", "expires_at": exp}, id="c-c"))
    )
    [(_, prices), (_, request), (type_, _)] = station.handlers.calls
    assert isinstance(prices, PriceScheduleData)
    assert prices.prices == {"92": Decimal("7.62"), "95": Decimal("8.125")}
    assert isinstance(request, DataRequest)
    assert (request.what, request.since_seq, request.limit, request.args) == (
        "sales",
        10,
        100,
        {"page": 2},
    )
    assert type_ == "order.cancel"


async def test_a_result_with_decimals_and_times_is_sent_as_text(station: Station) -> None:
    station.handlers.result = {"refund": Decimal("12.30"), "at": T0}
    reply = await station.send(signed(envelope()))
    assert reply["data"]["result"] == {"refund": "12.30", "at": "2026-11-22T01:15:00+00:00"}


# --- refusals before the signature: nothing of the body is read


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"\xff\xfe garbage",
        b"[1, 2]",
        b'"body"',
        b'{"sig": "AAAA"}',
        b'{"body": 5, "sig": "AAAA"}',
        b'{"body": "{}", "sig": "AAAA", "kid": "k1"}',
        b'{"body": "{}", "body": "{}", "sig": "AAAA"}',
        b'{"body": NaN, "sig": "AAAA"}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
    ids=[
        "empty",
        "text",
        "binary",
        "array",
        "string",
        "no-body",
        "body-not-string",
        "extra-key",
        "duplicate-key",
        "nan",
        "deep",
    ],
)
async def test_a_payload_that_is_not_a_command_is_malformed(
    station: Station, payload: bytes
) -> None:
    reply = await station.send(payload)
    assert refused(reply) == "malformed"
    assert reply["data"]["re"] is None
    assert_nothing_happened(station)
    assert station.audit == [{"id": None, "type": None, "ok": False, "code": "malformed"}]


async def test_an_oversized_payload_is_not_even_parsed(station: Station) -> None:
    body = envelope(data={**ORDER, "pad": "x" * 300_000})
    assert refused(await station.send(signed(body))) == "malformed"
    assert_nothing_happened(station)


async def test_a_command_signed_by_another_key_is_refused(station: Station) -> None:
    reply = await station.send(signed(envelope(), STRANGER))
    assert refused(reply) == "bad_signature"
    assert reply["data"]["re"] is None  # nothing unverified is echoed back
    assert_nothing_happened(station)


async def test_a_tampered_body_is_refused(station: Station) -> None:
    payload = json.loads(signed(envelope()))
    payload["body"] = payload["body"].replace('"paid":"100.00"', '"paid":"1000.00"')
    assert '"1000.00"' in payload["body"]
    reply = await station.send(json.dumps(payload).encode())
    assert refused(reply) == "bad_signature"
    assert_nothing_happened(station)


async def test_a_signature_of_other_bytes_of_the_same_json_is_refused(station: Station) -> None:
    # The body is signed as text: re-serialising it (spaces, key order) breaks the signature.
    payload = json.loads(signed(envelope()))
    payload["body"] = json.dumps(json.loads(payload["body"]), indent=1)
    assert refused(await station.send(json.dumps(payload).encode())) == "bad_signature"


@pytest.mark.parametrize(
    "sig",
    [
        None,
        "",
        12,
        "not base64!",
        base64.b64encode(b"\0" * 63).decode(),
        base64.b64encode(b"\0" * 64).decode(),
    ],
    ids=["null", "empty", "number", "not-base64", "short", "zeros"],
)
async def test_a_missing_or_broken_signature_is_refused(station: Station, sig: object) -> None:
    body = json.loads(signed(envelope()))["body"]
    reply = await station.send(json.dumps({"body": body, "sig": sig}).encode())
    assert refused(reply) == "bad_signature"
    assert_nothing_happened(station)


async def test_an_unsigned_command_is_refused(station: Station) -> None:
    body = json.loads(signed(envelope()))["body"]
    assert refused(await station.send(json.dumps({"body": body}).encode())) == "bad_signature"
    assert_nothing_happened(station)


async def test_a_flood_of_junk_is_logged_once(
    station: Station, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sync.inbox")
    for _ in range(20):
        await station.send(b"junk")
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1


# --- refusals after the signature


@pytest.mark.parametrize(
    ("text", "re"),
    [
        ("not json", None),
        ("[]", None),
        (json.dumps(envelope(v=2)), "cmd-1"),
        (json.dumps(envelope(v=True)), "cmd-1"),
        (json.dumps(envelope(id=7)), None),
        (json.dumps(envelope(id="")), None),
        (json.dumps(envelope(type=None)), "cmd-1"),
        (json.dumps(envelope(station=["x"])), "cmd-1"),
        (json.dumps(envelope(ts="yesterday")), "cmd-1"),
        (json.dumps(envelope(ts="2026-11-22T09:15:00")), "cmd-1"),
        (json.dumps(envelope(data=[])), "cmd-1"),
        (json.dumps(envelope(seq=5)), "cmd-1"),
        (json.dumps({k: v for k, v in envelope().items() if k != "data"}), "cmd-1"),
    ],
    ids=[
        "text",
        "array",
        "v2",
        "v-bool",
        "id-number",
        "id-empty",
        "type-null",
        "station-list",
        "ts-words",
        "ts-naive",
        "data-list",
        "seq",
        "no-data",
    ],
)
async def test_a_signed_body_that_is_not_an_envelope_is_malformed(
    station: Station, text: str, re: str | None
) -> None:
    reply = await station.send(signed_text(text))
    assert refused(reply) == "malformed"
    assert reply["data"]["re"] == re
    assert_nothing_happened(station)


async def test_a_command_for_another_station_is_refused(station: Station) -> None:
    reply = await station.send(signed(envelope(station="XJ-URC-0002")))
    assert refused(reply) == "wrong_station"
    assert reply["data"]["re"] == "cmd-1"
    assert_nothing_happened(station)


async def test_an_unknown_command_type_is_refused(station: Station) -> None:
    reply = await station.send(
        signed(envelope("pump.explode", {"expires_at": ORDER["expires_at"]}))
    )
    assert refused(reply) == "unknown_type"
    assert "pump.explode" in reply["data"]["error"]["message"]
    assert_nothing_happened(station)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({**ORDER, "price": 7.5}, "price"),
        ({**ORDER, "paid": 100}, "paid"),
        ({**ORDER, "preset": {"amount": 100.0}}, "preset.amount"),
        ({k: v for k, v in ORDER.items() if k != "preset"}, "preset"),
        ({**ORDER, "preset": {}}, "preset"),
        ({**ORDER, "preset": {"amount": "100.00", "volume": "10.00"}}, "preset"),
        ({**ORDER, "preset": {"litres": "10.00"}}, "preset.litres"),
        ({**ORDER, "price": "7.5"}, "price"),
        ({**ORDER, "paid": "-100.00"}, "paid"),
        ({**ORDER, "paid": "0.00"}, "paid"),
        ({**ORDER, "paid": "1e3"}, "paid"),
        ({**ORDER, "nozzle": 0}, "nozzle"),
        ({**ORDER, "nozzle": "1"}, "nozzle"),
        ({**ORDER, "nozzle": True}, "nozzle"),
        ({**ORDER, "order_id": "../../etc"}, "order_id"),
        ({**ORDER, "order_id": "x" * 65}, "order_id"),
        ({**ORDER, "tip": "5.00"}, "tip"),
        ({**ORDER, "expires_at": "2026-11-22T09:20:00"}, "expires_at"),
        ({**ORDER, "expires_at": 1795000000}, "expires_at"),
        ({k: v for k, v in ORDER.items() if k != "expires_at"}, "expires_at"),
    ],
    ids=[
        "price-float",
        "paid-int",
        "preset-float",
        "no-preset",
        "preset-empty",
        "both-presets",
        "preset-unknown",
        "price-1-place",
        "paid-negative",
        "paid-zero",
        "paid-exponent",
        "nozzle-0",
        "nozzle-text",
        "nozzle-bool",
        "order-id-path",
        "order-id-long",
        "extra",
        "expires-naive",
        "expires-number",
        "no-expiry",
    ],
)
async def test_invalid_order_data_is_refused_naming_the_field(
    station: Station, data: dict[str, Any], field: str
) -> None:
    reply = await station.send(signed(envelope(data=data)))
    assert refused(reply) == "invalid_data"
    assert reply["data"]["error"]["message"].startswith(f"{field}:")
    assert reply["data"]["re"] == "cmd-1"
    assert_nothing_happened(station)


async def test_invalid_data_of_other_commands(station: Station) -> None:
    exp = ORDER["expires_at"]
    cases = [
        (
            "price.schedule",
            {"price_set_id": "p", "effective_at": exp, "prices": {}, "expires_at": exp},
        ),
        (
            "price.schedule",
            {"price_set_id": "p", "effective_at": exp, "prices": {"92": 7.62}, "expires_at": exp},
        ),
        ("data.request", {"what": "everything", "expires_at": exp}),
        ("data.request", {"what": "sales", "limit": 501, "expires_at": exp}),
        ("data.request", {"what": "sales", "page": 2, "expires_at": exp}),
        ("order.cancel", {"order_id": "A-1", "expires_at": exp, "reason": "x"}),
    ]
    for n, (type_, data) in enumerate(cases):
        reply = await station.send(signed(envelope(type_, data, id=f"c-{n}")))
        assert refused(reply) == "invalid_data", (type_, data)
    assert_nothing_happened(station)


async def test_a_refused_command_can_be_sent_again_corrected(station: Station) -> None:
    # Refusals change nothing, not even the replay cache: the same id may come back fixed.
    assert refused(await station.send(signed(envelope(data={**ORDER, "price": 7.5})))) == (
        "invalid_data"
    )
    reply = await station.send(signed(envelope()))
    assert reply["data"]["ok"] is True
    assert len(station.handlers.calls) == 1


# --- time


async def test_an_expired_command_is_refused(station: Station) -> None:
    station.clock.now = T0 + timedelta(minutes=5, seconds=1) + timedelta(minutes=5)
    reply = await station.send(signed(envelope()))
    assert refused(reply) == "expired"
    assert "2026-11-22T09:20:00+08:00" in reply["data"]["error"]["message"]
    assert_nothing_happened(station)


async def test_a_station_clock_running_fast_is_tolerated_up_to_the_skew(station: Station) -> None:
    # Five minutes past expiry by the station's clock, still within max_skew (5 min).
    station.clock.now = T0 + timedelta(minutes=10)
    assert (await station.send(signed(envelope())))["data"]["ok"] is True
    # The id is kept as long as the command could still be accepted.
    with station.store._db.read() as conn:
        [(kept,)] = conn.execute("SELECT expires_at FROM commands_seen").fetchall()
    assert datetime.fromisoformat(kept) == T0 + timedelta(minutes=10)


async def test_an_expiry_too_far_ahead_is_invalid(station: Station) -> None:
    far = {**ORDER, "expires_at": "2026-11-29T09:20:00+08:00"}  # 7 days and 5 minutes
    reply = await station.send(signed(envelope(data=far)))
    assert refused(reply) == "invalid_data"
    assert reply["data"]["error"]["message"].startswith("expires_at:")
    year_9999 = {**ORDER, "expires_at": "9999-12-31T23:59:59-01:00"}
    assert refused(await station.send(signed(envelope(data=year_9999)))) == "invalid_data"
    year_9999 = {**ORDER, "expires_at": "9999-12-31T23:59:59+00:00"}
    assert refused(await station.send(signed(envelope(data=year_9999)))) == "invalid_data"
    assert_nothing_happened(station)


# --- replays


async def test_a_replayed_command_is_refused(station: Station) -> None:
    payload = signed(envelope())
    assert (await station.send(payload))["data"]["ok"] is True
    reply = await station.send(payload)
    assert refused(reply) == "replayed"
    assert reply["data"]["re"] == "cmd-1"
    assert len(station.handlers.calls) == 1
    assert [a["code"] for a in station.audit] == [None, "replayed"]


async def test_the_same_id_with_another_body_is_a_replay_too(station: Station) -> None:
    assert (await station.send(signed(envelope())))["data"]["ok"] is True
    other = envelope(data={**ORDER, "order_id": "APP-2"})
    assert refused(await station.send(signed(other))) == "replayed"
    assert len(station.handlers.calls) == 1


async def test_a_replay_is_refused_after_a_restart(station: Station) -> None:
    payload = signed(envelope())
    assert (await station.send(payload))["data"]["ok"] is True
    station.restart()
    assert refused(await station.send(payload)) == "replayed"
    assert len(station.handlers.calls) == 1


async def test_two_deliveries_at_once_run_once(station: Station) -> None:
    payload = signed(envelope())
    replies = await asyncio.gather(station.send(payload), station.send(payload))
    assert sorted(str(r["data"]["ok"]) for r in replies) == ["False", "True"]
    assert len(station.handlers.calls) == 1


async def test_the_replay_cache_failing_runs_nothing(station: Station) -> None:
    async def broken(command_id: str, keep_until: datetime) -> bool:
        raise OSError("disk full")

    inbox = Inbox(
        station_id=STATION,
        public_key=CLOUD.public_key(),
        remember=broken,
        handlers=station.handlers.for_types(*TYPES),
        clock=station.clock,
    )
    reply = await inbox.handle(signed(envelope()))
    assert refused(reply) == "unavailable"
    assert reply["data"]["re"] == "cmd-1"
    assert station.handlers.calls == []


# --- handlers


async def test_a_handler_refusal_is_the_reply(station: Station) -> None:
    station.handlers.error = CommandError("nozzle_busy", "nozzle 1 is fuelling")
    reply = await station.send(signed(envelope()))
    assert reply["data"]["error"] == {"code": "nozzle_busy", "message": "nozzle 1 is fuelling"}
    assert reply["data"]["re"] == "cmd-1"
    assert station.audit[-1] == {
        "id": "cmd-1",
        "type": "order.create",
        "ok": False,
        "code": "nozzle_busy",
    }
    # The id is spent: the handler ran once and is not run again under it.
    station.handlers.error = None
    assert refused(await station.send(signed(envelope()))) == "replayed"
    assert len(station.handlers.calls) == 1


async def test_a_handler_crash_is_an_internal_error(
    station: Station, caplog: pytest.LogCaptureFixture
) -> None:
    station.handlers.error = RuntimeError("bug")
    reply = await station.send(signed(envelope()))
    assert refused(reply) == "internal_error"
    assert "bug" not in reply["data"]["error"]["message"]  # internals stay in the log
    assert any(r.exc_info and "bug" in str(r.exc_info[1]) for r in caplog.records)


async def test_a_result_that_is_not_json_is_an_internal_error(station: Station) -> None:
    station.handlers.result = {"x": object()}
    assert refused(await station.send(signed(envelope()))) == "internal_error"


async def test_a_failing_audit_does_not_lose_the_reply(station: Station) -> None:
    async def audit(entry: dict[str, Any]) -> None:
        raise OSError("audit log full")

    async def remember(command_id: str, keep_until: datetime) -> bool:
        return True

    inbox = Inbox(
        station_id=STATION,
        public_key=CLOUD.public_key(),
        remember=remember,
        handlers=station.handlers.for_types(*TYPES),
        clock=station.clock,
        audit=audit,
    )
    assert (await inbox.handle(signed(envelope())))["data"]["ok"] is True


async def test_a_cancelled_handler_is_not_swallowed(station: Station) -> None:
    started = asyncio.Event()

    async def slow(data: BaseModel) -> None:
        started.set()
        await asyncio.Event().wait()  # until cancelled

    async def remember(command_id: str, keep_until: datetime) -> bool:
        return True

    inbox = Inbox(
        station_id=STATION,
        public_key=CLOUD.public_key(),
        remember=remember,
        handlers={"order.create": slow},
        clock=station.clock,
    )
    task = asyncio.create_task(inbox.handle(signed(envelope())))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_a_handler_without_a_schema_is_a_wiring_error() -> None:
    async def remember(command_id: str, keep_until: datetime) -> bool:
        return True

    with pytest.raises(ValueError, match=r"pump\.explode"):
        Inbox(
            station_id=STATION,
            public_key=CLOUD.public_key(),
            remember=remember,
            handlers=Handlers().for_types("pump.explode"),
            clock=Clock(),
        )
