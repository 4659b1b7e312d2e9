"""The test cloud (simulator/cloud.py) and the production broker configuration.

The stream logic is checked on its own with time as a parameter; the peer against a real
Mosquitto, with a plain aiomqtt client standing in for the station and envelopes written out by
hand (not made by any encoder of ours). The broker configuration in config/mosquitto is run for
real, TLS removed, to check that one station cannot touch another's topics.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from simulator.cloud import ACK_INTERVAL, CloudPeer, Received, StationStream, parse_envelope
from sync.inbox import Inbox
from sync.keys import generate, load_private_key, load_public_key, sign_command
from sync.schemas import OrderCancel
from tests.mosquitto import Mosquitto

SID = "XJ-TEST-0001"
REPO = Path(__file__).resolve().parents[2]
T = 1000.0  # an arbitrary monotonic time


def event(seq: int, type_: str = "tank.reading", *, id_: str | None = None,
          station: str = SID) -> dict[str, Any]:
    return {"v": 1, "id": id_ or f"evt-{seq:04d}", "type": type_, "station": station,
            "ts": "2026-11-22T09:15:00+08:00", "seq": seq, "data": {"tank": 1, "n": seq}}


def raw(seq: int, **kwargs: Any) -> bytes:
    return json.dumps(event(seq, **kwargs)).encode()


# ---------------------------------------------------------------------------------- the stream


def test_in_order_events_are_contiguous_and_acked_one_by_one() -> None:
    stream = StationStream()
    for seq in (1, 2, 3):
        assert stream.add(event(seq), T) is Received.NEW
        assert stream.take_ack(T) == seq
    assert stream.contiguous() == 3
    assert stream.gaps() == []
    assert stream.duplicates == 0
    assert stream.take_ack(T + 10) is None  # nothing new: no ack


def test_a_gap_holds_the_ack_back_until_the_missing_event_arrives() -> None:
    stream = StationStream()
    for seq in (1, 2, 4, 5, 7):
        stream.add(event(seq), T)
    assert stream.contiguous() == 2
    assert stream.gaps() == [3, 6]
    assert stream.highest() == 7
    assert stream.take_ack(T) == 2
    assert stream.take_ack(T + 1) is None  # 4, 5, 7 are there, but never acked past 3
    stream.add(event(3), T + 1)
    assert stream.contiguous() == 5
    assert stream.gaps() == [6]
    assert stream.take_ack(T + 1) == 5
    stream.add(event(6), T + 2)
    assert (stream.contiguous(), stream.gaps(), stream.take_ack(T + 2)) == (7, [], 7)


def test_duplicates_keep_the_first_envelope_and_a_reused_seq_is_a_conflict() -> None:
    stream = StationStream()
    first = event(1)
    stream.add(first, T)
    assert stream.add(event(1), T) is Received.DUPLICATE
    assert stream.add(event(1, id_="another"), T) is Received.CONFLICT
    assert stream.add(event(1, "sale.completed"), T) is Received.CONFLICT
    assert stream.received[1] is first
    assert stream.duplicates == 3
    assert stream.conflicts == [1, 1]


def test_ack_every_n_events_or_after_the_interval() -> None:
    stream = StationStream(ack_every=3)
    stream.add(event(1), T)
    stream.add(event(2), T + 0.01)
    assert stream.take_ack(T + 0.02) is None
    assert stream.next_timeout() == T + ACK_INTERVAL  # timed from the first unacked event
    assert stream.take_ack(T + ACK_INTERVAL) == 2
    assert stream.next_timeout() is None
    for seq in (3, 4):
        stream.add(event(seq), T + 1)
        assert stream.take_ack(T + 1) is None
    stream.add(event(5), T + 1)
    assert stream.take_ack(T + 1) == 5  # the third new event: at once


def test_a_resend_of_an_acked_event_is_acked_again() -> None:
    """The station sends again what it has not seen acked: the ack was lost, say it again."""
    stream = StationStream(ack_every=100)
    stream.add(event(1), T)
    assert stream.take_ack(T + 1) == 1
    assert stream.add(event(1), T + 2) is Received.DUPLICATE
    assert stream.take_ack(T + 2) == 1
    assert stream.take_ack(T + 3) is None
    stream.reack()  # e.g. after a reconnect
    assert stream.take_ack(T + 3) == 1


def test_nothing_to_ack_before_the_first_event() -> None:
    stream = StationStream()
    stream.reack()
    assert stream.take_ack(T) is None
    stream.add(event(2), T)  # seq 1 missing: still nothing
    assert stream.take_ack(T + 1) is None
    assert stream.gaps() == [1]


def test_what_the_cloud_committed_before_counts_as_received() -> None:
    stream = StationStream(committed=10)
    assert stream.contiguous() == 10
    stream.reack()
    assert stream.take_ack(T) == 10  # a fresh cloud tells the station where it stands
    assert stream.add(event(7), T) is Received.DUPLICATE
    stream.add(event(12), T)
    assert stream.gaps() == [11]
    stream.add(event(11), T)
    assert (stream.contiguous(), stream.take_ack(T)) == (12, 12)


def test_bad_settings_are_refused() -> None:
    for kwargs in ({"ack_every": 0}, {"committed": -1}, {"ack_interval": -1.0}):
        with pytest.raises(ValueError):
            StationStream(**kwargs)


@pytest.mark.parametrize("payload", [
    b"", b"\xff\xfe", b"not json", b"[]", b"null", b'"text"', b"{}",
    json.dumps({**event(1), "v": 2}).encode(),
    json.dumps({**event(1), "station": "XJ-OTHER-0002"}).encode(),
    json.dumps({**event(1), "seq": 0}).encode(),
    json.dumps({**event(1), "seq": True}).encode(),
    json.dumps({**event(1), "seq": "1"}).encode(),
    json.dumps({**event(1), "seq": 1.0}).encode(),
    json.dumps({**event(1), "data": [1]}).encode(),
    json.dumps({k: v for k, v in event(1).items() if k != "seq"}).encode(),
    json.dumps({k: v for k, v in event(1).items() if k != "id"}).encode(),
])
def test_malformed_events_are_not_envelopes(payload: bytes) -> None:
    assert parse_envelope(payload, SID, event=True) is None


def test_a_well_formed_event_and_a_reply_parse() -> None:
    assert parse_envelope(raw(3), SID, event=True) == event(3)
    reply = {k: v for k, v in event(1).items() if k != "seq"}
    assert parse_envelope(json.dumps(reply), SID, event=False) == reply
    assert parse_envelope(json.dumps(reply), SID, event=True) is None


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["v", "id", "type", "station", "ts", "seq", "data"]), inner, max_size=7),
    max_leaves=12).map(lambda value: json.dumps(value).encode())))
def test_any_payload_gives_an_envelope_or_none(payload: bytes) -> None:
    parsed = parse_envelope(payload, SID, event=True)
    if parsed is not None:
        stream = StationStream()
        stream.add(parsed, T)
        assert stream.contiguous() in (0, 1)


# ------------------------------------------------------------------------- against Mosquitto


@pytest.fixture(autouse=True)
async def nothing_left() -> AsyncIterator[None]:
    """A test that leaves a task or a thread behind fails."""
    threads = set(threading.enumerate())
    tasks = set(asyncio.all_tasks())
    yield
    current = asyncio.current_task()
    await asyncio.get_running_loop().shutdown_default_executor()
    left = [t for t in asyncio.all_tasks() if t not in tasks and t is not current and not t.done()]
    assert not left, f"tasks left running: {left}"
    extra = [t for t in threading.enumerate() if t not in threads and t.is_alive()]
    assert not extra, f"threads left running: {extra}"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "broker") as running:
        yield running


def station_client(broker: Mosquitto, sid: str = SID, **kwargs: Any) -> aiomqtt.Client:
    return aiomqtt.Client("127.0.0.1", broker.port, identifier=f"station-{sid}", **kwargs)


async def next_ack(messages: AsyncIterator[aiomqtt.Message]) -> int:
    async with asyncio.timeout(10):
        message = await anext(messages)
    body = json.loads(message.payload)
    assert set(body) == {"upto_seq"}
    assert isinstance(body["upto_seq"], int)
    return body["upto_seq"]


async def test_the_peer_acks_only_the_contiguous_prefix(broker: Mosquitto) -> None:
    async with CloudPeer(broker.url, SID) as cloud, station_client(broker) as station:
        await station.subscribe(f"fcc/v1/{SID}/acks", qos=1)
        acks = aiter(station.messages)
        events = f"fcc/v1/{SID}/events"
        for seq in (1, 2):
            await station.publish(events, raw(seq), qos=1)
            assert await next_ack(acks) == seq
        for seq in (4, 5):
            await station.publish(events, raw(seq), qos=1)
        # A resend of 2 makes the peer ack again; it comes after 4 and 5 were handled (one
        # connection, in order), so this ack shows that 4 and 5 did not move it past the gap.
        await station.publish(events, raw(2), qos=1)
        assert await next_ack(acks) == 2
        assert cloud.gaps() == [3]
        await station.publish(events, raw(3), qos=1)
        assert await next_ack(acks) == 5
        await cloud.wait_for_seq(5, timeout=5)
        assert cloud.duplicates == 1
        assert sorted(cloud.received) == [1, 2, 3, 4, 5]
        await cloud.wait_until(lambda: cloud.last_ack == 5, 5, "the broker's PUBACK of the ack")


async def test_garbage_is_counted_and_the_peer_keeps_going(broker: Mosquitto) -> None:
    async with CloudPeer(broker.url, SID) as cloud, station_client(broker) as station:
        base = f"fcc/v1/{SID}"
        garbage = [("events", b"\x00\xff"), ("events", b"{}"), ("replies", b"[1,2]"),
                   ("events", raw(1, station="XJ-OTHER-0002")), ("status", b"nope"),
                   ("live", b"42")]
        for kind, payload in garbage:
            await station.publish(f"{base}/{kind}", payload, qos=1)
        await station.publish(f"{base}/events", raw(1, type_="sale.completed"), qos=1)
        await cloud.wait_for_seq(1, timeout=10)
        assert cloud.malformed == len(garbage)
        assert cloud.sales() == [event(1)["data"]]


async def test_status_and_live_are_kept_as_retained(broker: Mosquitto) -> None:
    status = {"v": 1, "id": "s1", "type": "status", "station": SID,
              "ts": "2026-11-22T09:15:00+08:00",
              "data": {"online": True, "boot_id": "b1", "version": "0.1.0",
                       "ts": "2026-11-22T09:15:00+08:00"}}
    async with station_client(broker) as station:
        await station.publish(f"fcc/v1/{SID}/status", json.dumps(status), qos=1, retain=True)
        await station.publish(f"fcc/v1/{SID}/live", b'{"pumps": []}', qos=0, retain=True)
    async with CloudPeer(broker.url, SID) as cloud:
        await cloud.wait_until(lambda: cloud.status and cloud.live, 10, "status and live")
        assert cloud.status == status
        assert cloud.online() is True
        assert cloud.live == {"pumps": []}


async def test_the_peer_rides_out_a_broker_kill(broker: Mosquitto) -> None:
    async with CloudPeer(broker.url, SID) as cloud:
        async with station_client(broker) as station:
            await station.publish(f"fcc/v1/{SID}/events", raw(1), qos=1)
            await cloud.wait_for_seq(1, timeout=10)
        broker.kill()
        broker.start()
        async with station_client(broker) as station:
            await station.subscribe(f"fcc/v1/{SID}/acks", qos=1)
            await cloud.wait_until(lambda: cloud.connections == 2, 10, "a new connection")
            await station.publish(f"fcc/v1/{SID}/events", raw(2), qos=1)
            await cloud.wait_for_seq(2, timeout=10)
            acks = aiter(station.messages)
            assert await next_ack(acks) in (1, 2)  # the re-ack after reconnecting, then 2
            await cloud.wait_until(lambda: cloud.last_ack == 2, 10, "the ack of 2")
        assert cloud.gaps() == []


async def test_a_command_without_a_key_is_refused_and_send_raw_publishes(
        broker: Mosquitto) -> None:
    async with CloudPeer(broker.url, SID) as cloud, station_client(broker) as station:
        await station.subscribe(f"fcc/v1/{SID}/commands", qos=1)
        with pytest.raises(RuntimeError, match="private_key"):
            await cloud.command("order.cancel", {"order_id": "o1"})
        await cloud.send_raw(b"forged")
        async with asyncio.timeout(10):
            message = await anext(aiter(station.messages))
        assert message.payload == b"forged"
        envelope = cloud.command_envelope("order.cancel", {"order_id": "o1"}, expires_in=30,
                                          id_="c1", station="XJ-OTHER-0002")
        assert envelope["station"] == "XJ-OTHER-0002"
        assert envelope["data"]["order_id"] == "o1"
        assert envelope["data"]["expires_at"] > envelope["ts"]


# --------------------------------------------- signed commands, checked by the station's inbox


class InboxStation:
    """The station's side of commands, the real `sync.inbox.Inbox` behind a plain client."""

    def __init__(self, broker: Mosquitto, public_key: Ed25519PublicKey) -> None:
        self.client = station_client(broker)
        self.seen: set[str] = set()
        self.cancelled: list[str] = []
        self.inbox = Inbox(station_id=SID, public_key=public_key, remember=self._remember,
                           handlers={"order.cancel": self._cancel},
                           clock=lambda: datetime.now(UTC))

    async def _remember(self, command_id: str, keep_until: datetime) -> bool:
        new = command_id not in self.seen
        self.seen.add(command_id)
        return new

    async def _cancel(self, data: BaseModel) -> dict[str, Any]:
        assert isinstance(data, OrderCancel)
        self.cancelled.append(data.order_id)
        return {"order_id": data.order_id, "status": "cancelled"}

    async def serve(self) -> None:
        async for message in self.client.messages:
            assert isinstance(message.payload, bytes)
            reply = await self.inbox.handle(message.payload)
            await self.client.publish(f"fcc/v1/{SID}/replies", json.dumps(reply), qos=1)


@pytest.fixture
def cloud_key(tmp_path: Path) -> tuple[Ed25519PrivateKey, Ed25519PublicKey]:
    private_path, public_path = generate(tmp_path / "keys")
    return load_private_key(private_path), load_public_key(public_path)


@pytest.fixture
async def inbox_station(broker: Mosquitto, cloud_key: tuple[Ed25519PrivateKey, Ed25519PublicKey]
                        ) -> AsyncIterator[InboxStation]:
    station = InboxStation(broker, cloud_key[1])
    async with station.client, asyncio.TaskGroup() as group:
        await station.client.subscribe(f"fcc/v1/{SID}/commands", qos=1)
        task = group.create_task(station.serve(), name="inbox station")
        yield station
        task.cancel()


def refusal(reply: dict[str, Any]) -> str:
    assert reply["data"]["ok"] is False, reply
    code = reply["data"]["error"]["code"]
    assert isinstance(code, str)
    return code


async def test_a_signed_command_passes_the_station_inbox_once(
        broker: Mosquitto, cloud_key: tuple[Ed25519PrivateKey, Ed25519PublicKey],
        inbox_station: InboxStation) -> None:
    async with CloudPeer(broker.url, SID, private_key=cloud_key[0]) as cloud:
        reply = await cloud.command("order.cancel", {"order_id": "APP-1"}, id_="cmd-1")
        assert reply["station"] == SID
        assert reply["data"] == {"re": "cmd-1", "ok": True, "error": None,
                                 "result": {"order_id": "APP-1", "status": "cancelled"}}
        again = await cloud.command("order.cancel", {"order_id": "APP-1"}, id_="cmd-1")
        assert again["data"]["re"] == "cmd-1"
        assert refusal(again) == "replayed"
        assert inbox_station.cancelled == ["APP-1"]


async def test_the_inbox_refuses_what_the_peer_can_forge(
        broker: Mosquitto, cloud_key: tuple[Ed25519PrivateKey, Ed25519PublicKey],
        inbox_station: InboxStation) -> None:
    async with CloudPeer(broker.url, SID, private_key=cloud_key[0]) as cloud:
        other = await cloud.command("order.cancel", {"order_id": "APP-2"},
                                    station="XJ-OTHER-0002")
        assert refusal(other) == "wrong_station"
        expired = await cloud.command("order.cancel", {"order_id": "APP-3"}, expires_in=-3600)
        assert refusal(expired) == "expired"

        envelope = cloud.command_envelope("order.cancel", {"order_id": "APP-4"})
        stranger = sign_command(Ed25519PrivateKey.generate(), envelope)
        assert refusal(await cloud.request_raw(stranger)) == "bad_signature"
        signed = json.loads(sign_command(cloud_key[0], envelope))
        signed["body"] = signed["body"].replace("APP-4", "APP-5")
        assert refusal(await cloud.request_raw(json.dumps(signed).encode())) == "bad_signature"
        assert refusal(await cloud.request_raw(b"{")) == "malformed"
        assert inbox_station.cancelled == []
        assert cloud.malformed == 0


# ------------------------------------------------------------- the production broker config


def production_conf_for_test(conf: str, *, port: int, folder: Path, passwd: Path) -> str:
    """config/mosquitto/mosquitto.conf with TLS removed and paths moved under `folder`."""
    replaced = {"listener": f"listener {port} 127.0.0.1",
                "password_file": f"password_file {passwd}",
                "acl_file": f"acl_file {REPO / 'config/mosquitto/acl'}",
                "persistence_location": f"persistence_location {folder}/",
                "log_dest": f"log_dest file {folder / 'mosquitto.log'}\nuser root"}
    dropped = {"certfile", "keyfile", "tls_version", "cafile", "require_certificate",
               "use_identity_as_username"}
    seen = set()
    out = []
    for line in conf.splitlines():
        key = line.split(maxsplit=1)[0] if line.strip() and not line.startswith("#") else ""
        seen.add(key)
        if key in dropped:
            continue
        out.append(replaced.get(key, line))
    assert set(replaced) | {"certfile", "keyfile"} <= seen, "the template lost a directive"
    return "\n".join(out) + "\n"


@pytest.fixture
def secured_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    passwd_tool = shutil.which("mosquitto_passwd", path="/usr/bin:/usr/sbin:/usr/local/bin")
    if passwd_tool is None:
        pytest.skip("mosquitto_passwd is not installed")
    passwd = tmp_path / "passwd"
    passwd.touch()
    for user in ("XJ-A-0001", "XJ-B-0002", "cloud.backend"):
        subprocess.run([passwd_tool, "-b", str(passwd), user, f"pw-{user}"], check=True,
                       capture_output=True)
    broker = Mosquitto(tmp_path / "secured")
    conf = (REPO / "config/mosquitto/mosquitto.conf").read_text("utf-8")
    broker.config.write_text(production_conf_for_test(
        conf, port=broker.port, folder=broker.folder, passwd=passwd), "utf-8")
    with broker:
        yield broker


def login(broker: Mosquitto, user: str, identifier: str) -> aiomqtt.Client:
    return aiomqtt.Client("127.0.0.1", broker.port, username=user, password=f"pw-{user}",
                          identifier=identifier)


async def collect(client: aiomqtt.Client, until: bytes) -> list[tuple[str, bytes]]:
    """Messages up to and including the one whose payload is `until`."""
    got = []
    async with asyncio.timeout(10):
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            got.append((message.topic.value, message.payload))
            if message.payload == until:
                return got
    raise AssertionError("the client disconnected")


async def test_the_acl_confines_each_station_to_its_own_topics(
        secured_broker: Mosquitto) -> None:
    broker = secured_broker
    a, b = "XJ-A-0001", "XJ-B-0002"
    async with login(broker, "cloud.backend", "cloud") as cloud, \
            login(broker, b, "station-b") as station_b, \
            login(broker, a, "station-a-spy") as spy:
        await cloud.subscribe("$share/ingest/fcc/v1/+/events", qos=1)
        await cloud.subscribe("fcc/v1/+/replies", qos=1)
        await station_b.subscribe(f"fcc/v1/{b}/acks", qos=1)
        await station_b.subscribe(f"fcc/v1/{b}/commands", qos=1)
        await spy.subscribe(f"fcc/v1/{b}/commands", qos=1)  # granted, but never delivered
        await spy.subscribe(f"fcc/v1/{a}/commands", qos=1)

        # Station A writes into B's topics. Once the publish returned (PUBACKed) or failed
        # (Mosquitto 2.0 may drop a client after refusing its publish), the broker has dealt
        # with it; a fresh login for each, since the connection may be gone.
        for topic in (f"fcc/v1/{b}/events", f"fcc/v1/{b}/acks", f"fcc/v1/{b}/commands",
                      f"fcc/v1/{b}/status", "fcc/v1/other/events"):
            client = login(broker, a, "station-a")
            with contextlib.suppress(aiomqtt.MqttError):
                async with client:
                    await client.publish(topic, b"forged by A", qos=1)
            # When the broker dropped the client, aiomqtt leaves that error unread in a future
            # (asyncio would log "Future exception was never retrieved"): read it.
            if client._disconnected.done():
                client._disconnected.exception()
        async with login(broker, a, "station-a") as station_a:
            await station_a.publish(f"fcc/v1/{a}/events", b"event of A", qos=1)

        # What is allowed arrives, in order, and none of the forged messages before it did.
        await station_b.publish(f"fcc/v1/{b}/events", b"event of B", qos=1)
        await station_b.publish(f"fcc/v1/{b}/replies", b"reply of B", qos=1)
        assert await collect(cloud, b"reply of B") == [
            (f"fcc/v1/{a}/events", b"event of A"), (f"fcc/v1/{b}/events", b"event of B"),
            (f"fcc/v1/{b}/replies", b"reply of B")]
        await cloud.publish(f"fcc/v1/{b}/acks", b"ack for B", qos=1)
        await cloud.publish(f"fcc/v1/{b}/commands", b"command for B", qos=1)
        assert await collect(station_b, b"command for B") == [
            (f"fcc/v1/{b}/acks", b"ack for B"), (f"fcc/v1/{b}/commands", b"command for B")]
        await cloud.publish(f"fcc/v1/{a}/commands", b"command for A", qos=1)
        assert await collect(spy, b"command for A") == [(f"fcc/v1/{a}/commands",
                                                         b"command for A")]


async def test_a_station_cannot_log_in_without_its_password(secured_broker: Mosquitto) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client("127.0.0.1", secured_broker.port, username="XJ-A-0001",
                                  password="wrong", identifier="intruder"):
            pass
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client("127.0.0.1", secured_broker.port, identifier="anonymous"):
            pass
