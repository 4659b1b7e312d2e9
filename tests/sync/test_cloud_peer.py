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
from dataclasses import dataclass
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
from tests.helpers import free_port
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
    assert stream.received[1] is first
    assert stream.duplicates == 1
    assert stream.conflicts == [(1, 1)]
    # Reported, and never acked: an ack of seq 1 would remove the station's other event 1.
    assert stream.take_acks(T) == [{"conflict": {"epoch": 1, "seq": 1, "cloud_epoch": 1}}]
    assert stream.add(event(2), T) is Received.CONFLICT  # nothing of epoch 1 from seq 1 on
    assert 2 not in stream.received


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
    assert stream.take_ack(T) is None  # no ack names a seq the station has not sent
    assert stream.add(event(7), T) is Received.DUPLICATE
    assert stream.take_ack(T) == 7
    stream.add(event(12), T)
    assert stream.gaps() == [11]
    stream.add(event(11), T)
    assert (stream.contiguous(), stream.take_ack(T)) == (12, 12)


def in_epoch(epoch: int, seq: int, type_: str = "tank.reading", *, id_: str | None = None,
             data: dict[str, Any] | None = None) -> dict[str, Any]:
    body = event(seq, type_, id_=id_ or f"evt-{epoch}-{seq:04d}")
    body["epoch"] = epoch
    if data is not None:
        body["data"] = data
    return body


def started(epoch: int, seq: int, first_seq: int) -> dict[str, Any]:
    return in_epoch(epoch, seq, "epoch.started",
                    data={"epoch": epoch, "first_seq": first_seq, "reason": "restore"})


def test_a_new_epoch_is_acked_from_where_its_epoch_started_event_says() -> None:
    stream = StationStream()
    for seq in (1, 2, 3, 4):
        stream.add(in_epoch(1, seq), T)
    assert stream.take_acks(T) == [{"epoch": 1, "upto_seq": 4}]
    # A restore to seq 2: (2, 3) and (2, 4) are new keys, not duplicates of (1, 3), (1, 4).
    assert stream.add(in_epoch(2, 4), T) is Received.NEW  # before its announcement
    assert stream.take_acks(T) == []  # where epoch 2 starts is not known yet
    assert stream.add(started(2, 3, 3), T) is Received.NEW
    assert stream.take_acks(T) == [{"epoch": 2, "upto_seq": 4}]
    assert [(e["epoch"], e["seq"]) for e in stream.events()] == [
        (1, 1), (1, 2), (1, 3), (1, 4), (2, 3), (2, 4)]
    # The station's current ledger: 1..2 of epoch 1, 3..4 of epoch 2.
    assert [stream.received[seq]["epoch"] for seq in (1, 2, 3, 4)] == [1, 1, 2, 2]
    assert stream.conflicts == []


def test_acks_never_name_more_than_the_station_sent_since_it_restarted() -> None:
    """A station restored to seq 2 resends 1..2 of epoch 1: acking the 4 the cloud holds from
    the lost ledger would be refused by the station as forged."""
    stream = StationStream()
    for seq in (1, 2, 3, 4):
        stream.add(in_epoch(1, seq), T)
    stream.take_acks(T)
    stream.station_restarted()
    assert stream.add(in_epoch(1, 2), T) is Received.DUPLICATE
    assert stream.take_acks(T) == [{"epoch": 1, "upto_seq": 2}]


def test_after_a_conflict_the_epoch_is_closed_and_the_events_come_again_in_a_new_one() -> None:
    stream = StationStream()
    for seq in (1, 2, 3):
        stream.add(in_epoch(1, seq, id_=f"old-{seq}"), T)
    stream.take_acks(T)
    stream.station_restarted()  # a new PC, its own ledger from seq 1
    assert stream.add(in_epoch(1, 1, id_="new-1"), T) is Received.CONFLICT
    assert stream.add(in_epoch(1, 4, id_="new-4"), T) is Received.CONFLICT  # past the conflict
    assert stream.take_acks(T) == [{"conflict": {"epoch": 1, "seq": 1, "cloud_epoch": 1}}]
    for seq in (1, 4):
        assert stream.add(in_epoch(2, seq, id_=f"new-{seq}"), T) is Received.NEW
    assert stream.take_acks(T) == []  # epoch 2's start is not known yet
    assert stream.add(in_epoch(2, 5, "epoch.started", id_="new-5", data={
        "epoch": 2, "first_seq": 1, "reason": "conflict"}), T) is Received.NEW
    assert stream.take_acks(T) == [{"epoch": 2, "upto_seq": 1}]  # 2 and 3 missing: up to 1
    assert stream.add(in_epoch(2, 2, id_="new-2"), T) is Received.NEW
    assert stream.add(in_epoch(2, 3, id_="new-3"), T) is Received.NEW
    assert stream.take_acks(T) == [{"epoch": 2, "upto_seq": 5}]
    assert stream.conflicts == [(1, 1), (1, 4)]
    assert len(stream.events()) == 3 + 5


def test_an_event_already_held_under_another_key_is_a_duplicate_there_too() -> None:
    """A conflict reported in error (or forged) moves events the cloud had: their ids say they
    are the same events, committed once, and acked under the new key as well."""
    stream = StationStream()
    stream.add(in_epoch(1, 1), T)
    stream.add(in_epoch(2, 2, "epoch.started", id_="s", data={"epoch": 2, "first_seq": 1}), T)
    assert stream.add({**in_epoch(1, 1), "epoch": 2}, T) is Received.DUPLICATE
    assert stream.take_acks(T) == [{"epoch": 1, "upto_seq": 1}, {"epoch": 2, "upto_seq": 2}]
    assert len(stream.events()) == 2


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
    assert set(body) == {"epoch", "upto_seq"} and body["epoch"] == 1
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


def production_conf_for_test(conf: str, *, ports: tuple[int, int], folder: Path,
                             passwd: Path, cloud_passwd: Path) -> str:
    """config/mosquitto/mosquitto.conf with TLS removed and paths moved under `folder`: the
    stations' listener on ports[0], the cloud services' on ports[1]."""
    listeners = iter(f"listener {port} 127.0.0.1" for port in ports)
    password_files = iter((f"password_file {passwd}", f"password_file {cloud_passwd}"))
    replaced = {"acl_file": f"acl_file {REPO / 'config/mosquitto/acl'}",
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
        if key == "listener":
            out.append(next(listeners))
        elif key == "password_file":
            out.append(next(password_files))
        else:
            out.append(replaced.get(key, line))
    assert set(replaced) | {"certfile", "keyfile", "use_username_as_clientid"} <= seen, \
        "the template lost a directive"
    assert next(listeners, None) is None and next(password_files, None) is None, \
        "the template has no separate listener for the cloud"
    return "\n".join(out) + "\n"


def passwords(tool: str, path: Path, *users: str) -> Path:
    path.touch()
    for user in users:
        subprocess.run([tool, "-b", str(path), user, f"pw-{user}"], check=True,
                       capture_output=True)
    return path


@dataclass
class SecuredBroker:
    broker: Mosquitto
    cloud_port: int

    @property
    def port(self) -> int:
        return self.broker.port


def secured(tmp_path: Path, conf: str) -> Iterator[SecuredBroker]:
    passwd_tool = shutil.which("mosquitto_passwd", path="/usr/bin:/usr/sbin:/usr/local/bin")
    if passwd_tool is None:
        pytest.skip("mosquitto_passwd is not installed")
    stations = passwords(passwd_tool, tmp_path / "passwd", "XJ-A-0001", "XJ-B-0002")
    cloud = passwords(passwd_tool, tmp_path / "cloud.passwd", "cloud.backend")
    broker = Mosquitto(tmp_path / "secured")
    cloud_port = free_port()
    broker.config.write_text(production_conf_for_test(
        conf, ports=(broker.port, cloud_port), folder=broker.folder, passwd=stations,
        cloud_passwd=cloud), "utf-8")
    with broker:
        yield SecuredBroker(broker, cloud_port)


@pytest.fixture
def secured_broker(tmp_path: Path) -> Iterator[SecuredBroker]:
    yield from secured(tmp_path, (REPO / "config/mosquitto/mosquitto.conf").read_text("utf-8"))


def login(broker: SecuredBroker, user: str, identifier: str) -> aiomqtt.Client:
    port = broker.cloud_port if user.startswith("cloud.") else broker.port
    return aiomqtt.Client("127.0.0.1", port, username=user, password=f"pw-{user}",
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


async def forge(client: aiomqtt.Client, topic: str) -> None:
    """Publishes into a topic the ACL denies. Once the publish returned (PUBACKed) or failed
    (Mosquitto 2.0 may drop a client after refusing its publish), the broker has dealt with it;
    a fresh login for each, since the connection may be gone."""
    with contextlib.suppress(aiomqtt.MqttError):
        async with client:
            await client.publish(topic, b"forged by A", qos=1)
    # When the broker dropped the client, aiomqtt leaves that error unread in a future (asyncio
    # would log "Future exception was never retrieved"): read it.
    if client._disconnected.done():
        client._disconnected.exception()


async def test_the_acl_confines_each_station_to_its_own_topics(
        secured_broker: SecuredBroker) -> None:
    broker = secured_broker
    a, b = "XJ-A-0001", "XJ-B-0002"
    # Station A writes into B's topics (before A's own connection below: one connection per
    # station account, a second login replaces the first).
    for topic in (f"fcc/v1/{b}/events", f"fcc/v1/{b}/acks", f"fcc/v1/{b}/commands",
                  f"fcc/v1/{b}/status", "fcc/v1/other/events"):
        await forge(login(broker, a, "station-a"), topic)
    async with login(broker, "cloud.backend", "cloud.backend-ingest") as cloud, \
            login(broker, b, "station-b") as station_b, \
            login(broker, a, "station-a") as station_a:
        await cloud.subscribe("$share/ingest/fcc/v1/+/events", qos=1)
        await cloud.subscribe("fcc/v1/+/replies", qos=1)
        await station_b.subscribe(f"fcc/v1/{b}/acks", qos=1)
        await station_b.subscribe(f"fcc/v1/{b}/commands", qos=1)
        await station_a.subscribe(f"fcc/v1/{b}/commands", qos=1)  # granted, but never delivered
        await station_a.subscribe(f"fcc/v1/{a}/commands", qos=1)
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
        assert await collect(station_a, b"command for A") == [(f"fcc/v1/{a}/commands",
                                                               b"command for A")]


async def knock(broker: SecuredBroker, user: str, identifiers: list[str]) -> None:
    """Connects once with each of `identifiers` using `user`'s own password."""
    for identifier in identifiers:
        with contextlib.suppress(aiomqtt.MqttError):
            async with login(broker, user, identifier):
                pass


async def still_connected(client: aiomqtt.Client, topic: str) -> bool:
    """The client's connection survived: it is not marked gone and a publish round-trips."""
    if client._disconnected.done():
        return False
    try:
        await client.publish(topic, b"still here", qos=1, timeout=5)
    except aiomqtt.MqttError:
        return False
    return True


async def test_another_stations_credentials_cannot_take_a_stations_client_id(
        secured_broker: SecuredBroker) -> None:
    """Issue case 9: B's password and A's client id knocked A off the broker, again and again.
    With the client id pinned to the user name, B's logins are B's own connection."""
    a, b = "XJ-A-0001", "XJ-B-0002"
    broker = secured_broker
    async with login(broker, a, f"forecourt-{a}") as station_a:
        await knock(broker, b, [f"forecourt-{a}", a, f"forecourt-{a}"])
        assert await still_connected(station_a, f"fcc/v1/{a}/events")
        async with login(broker, "cloud.backend", f"forecourt-{a}") as cloud:
            # The id A asked for is not the one it has (its user name): a cloud service using
            # that id on its own port does not collide with A either.
            await cloud.publish(f"fcc/v1/{a}/commands", b"hello", qos=1)
        assert await still_connected(station_a, f"fcc/v1/{a}/events")
        # The station listener refuses cloud accounts, the cloud listener station accounts.
        for user, port in (("cloud.backend", broker.port), (a, broker.cloud_port)):
            with pytest.raises(aiomqtt.MqttError):
                async with aiomqtt.Client("127.0.0.1", port, username=user,
                                          password=f"pw-{user}", identifier="x"):
                    pass


async def test_without_the_pinned_client_id_the_knock_works(tmp_path: Path) -> None:
    """The same knock against the template without `use_username_as_clientid`: what the
    setting is there for (this test fails if Mosquitto ever stops dropping duplicates)."""
    conf = (REPO / "config/mosquitto/mosquitto.conf").read_text("utf-8")
    unpinned = conf.replace("use_username_as_clientid true", "use_username_as_clientid false")
    a, b = "XJ-A-0001", "XJ-B-0002"
    for broker in secured(tmp_path, unpinned):
        async with login(broker, a, f"forecourt-{a}") as station_a:
            await knock(broker, b, [f"forecourt-{a}"])
            assert not await still_connected(station_a, f"fcc/v1/{a}/events")
            if station_a._disconnected.done():
                station_a._disconnected.exception()


async def test_a_station_cannot_log_in_without_its_password(
        secured_broker: SecuredBroker) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client("127.0.0.1", secured_broker.port, username="XJ-A-0001",
                                  password="wrong", identifier="intruder"):
            pass
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client("127.0.0.1", secured_broker.port, identifier="anonymous"):
            pass
