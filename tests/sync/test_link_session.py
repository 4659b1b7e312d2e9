"""What the link says about itself and what it does with the cloud's messages, against a real
Mosquitto: retained status and the will, throttled live state, garbage acks, commands."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiomqtt
import pytest

from edge.store import Store
from tests.helpers import wait_until
from tests.mosquitto import Mosquitto
from tests.sync.conftest import (
    SID,
    Cloud,
    Commands,
    Forecourt,
    StoreOutbox,
    TcpProxy,
    append,
    make_link,
)

pytestmark = pytest.mark.usefixtures("no_leaks")


async def retained(broker: Mosquitto, leaf: str) -> dict[str, Any]:
    """What a newcomer gets on subscribing: the retained message of `leaf`."""
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="newcomer") as client:
        await client.subscribe(f"fcc/v1/{SID}/{leaf}", qos=1)
        async with asyncio.timeout(5):
            async for message in client.messages:
                assert message.retain
                assert isinstance(message.payload, bytes)
                body: dict[str, Any] = json.loads(message.payload)
                return body
    raise AssertionError("no retained message")


def is_status(body: dict[str, Any], *, online: bool) -> bool:
    data = body.get("data", {})
    return bool(body.get("type") == "status" and data.get("online") is online)


async def test_status_online_is_retained_and_a_clean_exit_leaves_offline(
        broker: Mosquitto, outbox: StoreOutbox) -> None:
    async with make_link(broker.url, outbox) as link:
        await wait_until(lambda: link.connected, what="link connected")
        status = await retained(broker, "status")
        assert status["v"] == 1 and status["station"] == SID and status["type"] == "status"
        assert "seq" not in status
        assert {k: status["data"][k] for k in ("online", "boot_id", "version")} == {
            "online": True, "boot_id": "boot-1", "version": "0.1.0"}
        assert status["data"]["ts"].endswith("+00:00")
    assert not link.connected
    status = await retained(broker, "status")
    assert status["data"]["online"] is False
    assert status["data"]["boot_id"] == "boot-1"


async def test_the_will_says_offline_when_the_connection_dies_and_online_follows(
        broker: Mosquitto, outbox: StoreOutbox) -> None:
    async with Cloud(broker) as cloud, TcpProxy(broker.port) as proxy:
        await cloud.connected()
        async with make_link(proxy.url, outbox) as link:
            await wait_until(lambda: any(is_status(m.body, online=True)
                                         for m in cloud.of("status")), what="online")
            proxy.cut()  # the station's TCP connection dies without an MQTT DISCONNECT
            await wait_until(lambda: any(is_status(m.body, online=False)
                                         for m in cloud.of("status")), what="the will")
            await wait_until(lambda: link.connects == 2 and link.connected, what="reconnected")
            await wait_until(lambda: is_status(cloud.of("status")[-1].body, online=True),
                             what="online again")
            will = next(m.body for m in cloud.of("status") if is_status(m.body, online=False))
            assert will["data"]["boot_id"] == "boot-1"
            assert link.failures == 0 and link.last_error is None
    assert (await retained(broker, "status"))["data"]["online"] is False


async def test_live_is_retained_and_throttled_to_one_message_per_interval(
        broker: Mosquitto, outbox: StoreOutbox) -> None:
    forecourt = Forecourt()
    async with Cloud(broker) as cloud:
        await cloud.connected()
        async with make_link(broker.url, outbox, live=forecourt, live_interval=1.0) as link:
            # On connect: the current snapshot, once.
            await wait_until(lambda: cloud.of("live"), what="the first snapshot")
            first = cloud.of("live")[0].body
            assert first["type"] == "live" and first["station"] == SID and "seq" not in first
            assert first["data"] == {"pumps": [{"number": 1, "state": "idle"}], "n": 0}

            started = time.monotonic()
            for n in range(1, 51):
                forecourt.n = n
                link.live_changed()
                await asyncio.sleep(0.01)  # 50 changes spread over about half a second
            burst = time.monotonic() - started
            await wait_until(lambda: cloud.of("live")[-1].body["data"]["n"] == 50,
                             what="the last state")
            during = len(cloud.of("live")) - 1
            # One per interval while it changes, plus the trailing one carrying the last state.
            assert 1 <= during <= 2 + int(burst // 1.0), (during, burst)
            assert (await retained(broker, "live"))["data"]["n"] == 50


async def test_garbage_on_acks_is_ignored_and_a_good_ack_still_works(
        broker: Mosquitto, store: Store, outbox: StoreOutbox) -> None:
    garbage = [b"", b"nonsense", b"\xff\xfe", b"[]", b"null", b'{"upto_seq": -1}',
               b'{"upto_seq": "3"}', b'{"upto_seq": 3.0}', b'{"upto_seq": true}',
               b'{"upto": 3}', b'{"upto_seq": 99999999999999999999999}', b"[" * 100_000]
    async with Cloud(broker, ack=False) as cloud, make_link(broker.url, outbox) as link:
        await cloud.connected()
        await wait_until(lambda: link.connected, what="link connected")
        await append(store, link, 4)
        await wait_until(lambda: len(cloud.events) == 4, what="events out")
        for payload in garbage:
            await cloud.publish("acks", payload)
        await cloud.publish("acks", b'{"v": 1, "type": "ack", "data": {"upto_seq": 2}}')
        await wait_until(lambda: link.acked_upto == 2, what="the enveloped ack")
        assert link.bad_acks == len(garbage)
        assert await outbox.unacked() == [3, 4]
        assert outbox.acks == [2]
        assert link.connects == 1 and link.connected  # never dropped the connection


async def test_commands_reach_the_handler_in_order_and_replies_are_published(
        broker: Mosquitto, outbox: StoreOutbox) -> None:
    commands = Commands(fail_on=b"breaks")
    async with Cloud(broker) as cloud, make_link(broker.url, outbox,
                                                 on_command=commands) as link:
        await cloud.connected()
        await wait_until(lambda: link.connected, what="link connected")
        for payload in (b"first", b"breaks", b"quiet", b"second"):
            await cloud.publish("commands", payload)
        await wait_until(lambda: len(cloud.of("replies")) == 2, what="two replies")
        assert commands.received == [b"first", b"breaks", b"quiet", b"second"]
        replies = [m.body for m in cloud.of("replies")]
        assert [r["data"]["re"] for r in replies] == ["first", "second"]
        assert replies[0] == {"v": 1, "id": "reply-1", "type": "reply", "station": SID,
                              "ts": "2026-11-22T09:15:00+08:00",
                              "data": {"re": "first", "ok": True, "error": None,
                                       "result": None}}
        assert link.connects == 1 and link.connected


async def test_a_reply_ready_while_disconnected_is_published_after_the_reconnect(
        broker: Mosquitto, outbox: StoreOutbox) -> None:
    release = asyncio.Event()
    started: list[bytes] = []

    async def slow(payload: bytes) -> dict[str, Any]:
        started.append(payload)
        call = len(started)
        await release.wait()
        return {"v": 1, "id": f"r-{call}", "type": "reply", "station": SID,
                "ts": "2026-11-22T09:15:00+08:00", "data": {"re": payload.decode()}}

    async with Cloud(broker) as cloud, TcpProxy(broker.port) as proxy, \
            make_link(proxy.url, outbox, on_command=slow, reconnect_min=0.5,
                      reconnect_max=0.5) as link:
        await cloud.connected()
        await wait_until(lambda: link.connected, what="link connected")
        await cloud.publish("commands", b"cmd-1")
        await wait_until(lambda: started, what="the command in the handler")
        proxy.cut()
        await wait_until(lambda: not link.connected, what="link down")
        release.set()  # the command finishes while there is no connection
        await wait_until(lambda: any(m.body["id"] == "r-1" for m in cloud.of("replies")),
                         what="the reply after the reconnect")
        assert link.connects == 2
        # If the cut came before the station's PUBACK reached the broker, the broker delivers
        # the command again (QoS 1; the inbox refuses a seen id): every call gets its reply.
        await wait_until(lambda: len(cloud.of("replies")) == len(started), what="all replies")
        assert started in ([b"cmd-1"], [b"cmd-1", b"cmd-1"])
        assert all(m.body["data"] == {"re": "cmd-1"} for m in cloud.of("replies"))


async def test_leaving_while_the_broker_never_answers_the_connect_is_prompt(
        outbox: StoreOutbox) -> None:
    # A TCP peer that accepts and then says nothing: the link waits for a CONNACK that never
    # comes. Shutting the station down must not wait for the client's own timeout.
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        link = make_link(f"mqtt://127.0.0.1:{port}", outbox, close_timeout=0.5)
        async with link:
            await wait_until(lambda: accepted, what="the TCP connection")
            started = time.monotonic()
        assert time.monotonic() - started < 5
        assert link.connects == 0 and not link.connected
    finally:
        for writer in accepted:
            writer.transport.abort()
        server.close()
        await server.wait_closed()
