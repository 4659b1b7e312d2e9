"""Whatever arrives on the commands topic, the inbox answers and runs nothing it should not."""

from __future__ import annotations

import base64
import json
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from sync.inbox import Inbox
from sync.keys import sign_command
from sync.schemas import SCHEMAS

STATION = "S1"
T0 = datetime(2026, 11, 22, 1, 15, tzinfo=UTC)
CLOUD = Ed25519PrivateKey.generate()
CODES = {
    "malformed",
    "bad_signature",
    "wrong_station",
    "unknown_type",
    "invalid_data",
    "expired",
    "replayed",
}
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(coro: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    # The callbacks below never suspend, so neither does handle(): no event loop needed, and
    # hypothesis can try hundreds of payloads quickly.
    try:
        coro.send(None)
    except StopIteration as done:
        result: dict[str, Any] = done.value
        return result
    raise AssertionError("handle() suspended")


class Recorder:
    def __init__(self) -> None:
        self.calls: list[BaseModel] = []
        self.seen: set[str] = set()
        self.inbox = Inbox(
            station_id=STATION,
            public_key=CLOUD.public_key(),
            remember=self.remember,
            clock=lambda: T0,
            handlers={t: self.handler for t in SCHEMAS},
        )

    async def remember(self, command_id: str, keep_until: datetime) -> bool:
        new = command_id not in self.seen
        self.seen.add(command_id)
        return new

    async def handler(self, data: BaseModel) -> str:
        self.calls.append(data)
        return "done"

    def handle(self, payload: bytes) -> dict[str, Any]:
        reply = run(self.inbox.handle(payload))
        json.dumps(reply)
        data = reply["data"]
        assert (reply["type"], set(data)) == ("reply", {"re", "ok", "error", "result"})
        if not data["ok"]:
            assert data["error"]["code"] in CODES, data
        return reply


# JSON has no NaN or Infinity: a body with them is malformed (test_inbox.py covers that).
finite = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_are_refused_without_running_anything(payload: bytes) -> None:
    recorder = Recorder()
    reply = recorder.handle(payload)
    assert reply["data"]["ok"] is False
    assert reply["data"]["re"] is None
    assert recorder.calls == [] and recorder.seen == set()


@FUZZ
@given(json_values, st.one_of(st.none(), st.text(), json_values))
def test_arbitrary_json_payloads_are_refused(body: Any, sig: Any) -> None:
    recorder = Recorder()
    for payload in (body, {"body": body, "sig": sig}, {"body": json.dumps(body), "sig": sig}):
        reply = recorder.handle(json.dumps(payload).encode())
        assert reply["data"]["ok"] is False
        assert reply["data"]["re"] is None
    assert recorder.calls == [] and recorder.seen == set()


@FUZZ
@given(json_values)
def test_arbitrary_signed_bodies_never_raise(body: Any) -> None:
    # Past the signature: the cloud's own mistakes must still get an answer.
    recorder = Recorder()
    text = json.dumps(body)
    sig = base64.b64encode(CLOUD.sign(text.encode("utf-8"))).decode()
    reply = recorder.handle(json.dumps({"body": text, "sig": sig}).encode())
    assert reply["data"]["ok"] is False
    assert recorder.calls == []


exp_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda t: t.isoformat())
order_like = st.fixed_dictionaries(
    {},
    optional={
        "order_id": st.text(max_size=70) | st.integers(),
        "nozzle": st.integers(-2, 2000) | st.text(max_size=3) | st.booleans(),
        "grade": st.text(max_size=20),
        "price": st.from_regex(r"[0-9]{1,5}(\.[0-9]{0,4})?", fullmatch=True) | finite,
        "preset": st.dictionaries(
            st.sampled_from(["amount", "volume", "x"]),
            st.from_regex(r"-?[0-9]{1,8}(\.[0-9]{1,3})?", fullmatch=True) | finite,
            max_size=3,
        ),
        "paid": st.from_regex(r"-?[0-9]{1,8}(\.[0-9]{1,3})?", fullmatch=True) | st.integers(),
        "expires_at": exp_times | st.text(max_size=30),
        "what": st.sampled_from(["sales", "shift", "tanks", "totals", "all"]),
        "limit": st.integers(-5, 600),
        "args": json_values,
        "extra": json_values,
    },
)


@FUZZ
@given(st.sampled_from(sorted(SCHEMAS)), order_like, st.text(min_size=1, max_size=8))
def test_signed_commands_with_arbitrary_data_run_only_when_valid(
    type_: str, data: dict[str, Any], command_id: str
) -> None:
    recorder = Recorder()
    envelope = {
        "v": 1,
        "id": command_id,
        "type": type_,
        "station": STATION,
        "ts": T0.isoformat(),
        "data": data,
    }
    reply = recorder.handle(sign_command(CLOUD, envelope))
    assert reply["data"]["re"] == command_id
    if reply["data"]["ok"]:
        [checked] = recorder.calls
        assert isinstance(checked, SCHEMAS[type_])
        assert T0 - timedelta(minutes=5) <= checked.expires_at <= T0 + timedelta(days=7)
        assert recorder.seen == {command_id}
        assert recorder.handle(sign_command(CLOUD, envelope))["data"]["error"]["code"] == (
            "replayed"
        )
        assert len(recorder.calls) == 1
    else:
        assert reply["data"]["error"]["code"] in {"invalid_data", "expired"}
        assert recorder.calls == [] and recorder.seen == set()


EXP = (T0 + timedelta(minutes=5)).isoformat()
VALID: dict[str, dict[str, Any]] = {
    "order.create": {
        "order_id": "A-1",
        "nozzle": 1,
        "grade": "92",
        "price": "7.50",
        "preset": {"volume": "20.00"},
        "paid": "200.00",
        "expires_at": EXP,
    },
    "order.cancel": {"order_id": "A-1", "expires_at": EXP},
    "price.schedule": {
        "price_set_id": "PS-1",
        "effective_at": EXP,
        "prices": {"92": "7.62"},
        "expires_at": EXP,
    },
    "data.request": {"what": "totals", "expires_at": EXP},
}
mutations = st.one_of(
    st.just(("keep", None, None)),
    st.tuples(st.just("drop"), st.text(max_size=12), st.none()),
    st.tuples(st.just("set"), st.text(max_size=12), json_values),
)


@FUZZ
@given(st.sampled_from(sorted(VALID)), mutations, st.sampled_from(sorted(VALID["order.create"])))
def test_one_field_changed_in_a_valid_command(
    type_: str, mutation: tuple[str, str | None, Any], existing_key: str
) -> None:
    recorder = Recorder()
    data = dict(VALID[type_])
    action, key, value = mutation
    if action != "keep":
        # Half the time aim at a key the schema knows, so that its checks are exercised.
        key = existing_key if len(str(key)) % 2 else key
        assert key is not None
        if action == "drop":
            data.pop(key, None)
        else:
            data[key] = value
    envelope = {
        "v": 1,
        "id": "c-1",
        "type": type_,
        "station": STATION,
        "ts": T0.isoformat(),
        "data": data,
    }
    reply = recorder.handle(sign_command(CLOUD, envelope))
    # Compared as JSON: True == 1 in Python, but not on the wire (and not to the schema).
    if json.dumps(data, sort_keys=True) == json.dumps(VALID[type_], sort_keys=True):
        assert reply["data"]["ok"] is True, reply
    if reply["data"]["ok"]:
        [checked] = recorder.calls
        assert isinstance(checked, SCHEMAS[type_])
    else:
        assert reply["data"]["error"]["code"] in {"invalid_data", "expired"}, reply
        assert recorder.calls == [] and recorder.seen == set()
