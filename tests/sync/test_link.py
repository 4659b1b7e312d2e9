"""The outbox publisher against a real Mosquitto and a real SQLite store: order, acks as the only
way out of the outbox, a broker that is down or killed, and resends after an ack timeout."""

from __future__ import annotations

import asyncio
import functools

import pytest

from edge.store import Store
from sync.link import CloudLink
from tests.helpers import wait_until
from tests.mosquitto import Mosquitto
from tests.sync.conftest import SID, Cloud, StoreOutbox, TcpProxy, append, make_link

pytestmark = pytest.mark.usefixtures("no_leaks")


async def test_events_reach_the_cloud_in_order_and_leave_the_outbox_only_by_ack(
        broker: Mosquitto, store: Store, outbox: StoreOutbox) -> None:
    async with Cloud(broker, ack=False) as cloud:
        await cloud.connected()
        async with make_link(broker.url, outbox) as link:
            await wait_until(lambda: link.connected, what="link connected")
            await append(store, link, 5)
            await wait_until(lambda: len(cloud.events) >= 5, what="5 events at the cloud")

            assert cloud.seqs == [1, 2, 3, 4, 5]
            stored = await outbox.pending(0, 100)
            # CONTRACT section 4: the stored event's own id, type, seq, epoch, ts and data.
            assert cloud.events[0] == {
                "v": 1, "id": stored[0].id, "type": "tank.reading", "station": SID,
                "ts": "2026-11-22T01:15:00+00:00", "seq": 1, "epoch": 1,
                "data": {"tank": 1, "n": 0, "level": "1234.50"},
            }
            assert [e["id"] for e in cloud.events] == [e.id for e in stored]
            assert all(not m.retain for m in cloud.of("events"))
            # Delivered and PUBACKed, but nothing acked: all five stay.
            assert await outbox.unacked() == [1, 2, 3, 4, 5]
            assert (link.sent, link.resent, link.acked_upto, link.in_flight) == (5, 0, 0, 5)

            await cloud.publish("acks", b'{"upto_seq": 3}')
            await wait_until(lambda: link.acked_upto == 3, what="ack applied")
            assert await outbox.unacked() == [4, 5]
            assert outbox.acks == [3]
            assert link.in_flight == 2

            await cloud.publish("acks", b'{"upto_seq": 5}')
            await wait_until(lambda: link.acked_upto == 5, what="second ack applied")
            assert await outbox.unacked() == []
            assert cloud.seqs == [1, 2, 3, 4, 5]  # nothing was sent twice


async def test_the_window_bounds_what_is_in_flight_and_acks_slide_it(
        broker: Mosquitto, store: Store, outbox: StoreOutbox) -> None:
    await append(store, None, 10)  # queued before the link starts
    async with Cloud(broker, ack=False) as cloud:
        await cloud.connected()
        async with make_link(broker.url, outbox, window=4) as link:
            await wait_until(lambda: len(cloud.events) >= 4, what="a full window")
            assert cloud.seqs == [1, 2, 3, 4]
            assert link.in_flight == 4
            await cloud.publish("acks", b'{"upto_seq": 2}')
            await wait_until(lambda: len(cloud.events) >= 6, what="the window slid by two")
            assert cloud.seqs == [1, 2, 3, 4, 5, 6]
            await cloud.publish("acks", b'{"upto_seq": 6}')
            await wait_until(lambda: len(cloud.events) >= 10, what="the rest")
            assert cloud.seqs == list(range(1, 11))
            assert link.in_flight == 4
            assert await outbox.unacked() == [7, 8, 9, 10]


async def test_broker_down_at_start_events_wait_and_drain_in_order_when_it_comes(
        broker: Mosquitto, store: Store, outbox: StoreOutbox) -> None:
    # The cloud's persistent session exists before the outage (saved by a clean broker stop),
    # so everything the link publishes later is queued for it in order.
    async with Cloud(broker) as cloud:
        await cloud.connected()
    broker.stop()

    async with make_link(broker.url, outbox) as link:
        await append(store, link, 6)
        await wait_until(lambda: link.failures >= 3, what="several failed attempts")
        assert not link.connected
        assert link.last_error
        assert await outbox.backlog() == 6

        broker.start()
        async with Cloud(broker) as cloud:
            await wait_until(lambda: link.connected, what="link connected")
            await append(store, link, 4, start=6)
            await wait_until(lambda: link.acked_upto == 10, timeout=15, what="all acked")
            assert cloud.seqs == list(range(1, 11))
            assert await outbox.backlog() == 0
            assert link.last_error is None and link.failures == 0


def reconnected(link: CloudLink, connects: int) -> bool:
    return link.connects > connects


async def test_broker_killed_again_and_again_loses_nothing(
        broker: Mosquitto, store: Store, outbox: StoreOutbox) -> None:
    total = 0
    async with Cloud(broker) as cloud, make_link(broker.url, outbox, ack_timeout=1.0) as link:
        await wait_until(lambda: link.connected, what="link connected")
        for _ in range(3):
            connects = link.connects
            await append(store, link, 15, start=total)
            total += 15
            broker.kill()  # mid-stream: some publishes are lost, some acks never arrive
            await append(store, link, 5, start=total)
            total += 5
            broker.start()
            # The next kill hits a link that is back (on a loaded machine the reconnect may
            # otherwise come only after the next restart, and one outage would hide another).
            await wait_until(functools.partial(reconnected, link, connects), timeout=15,
                             what="the link connected again")
        await append(store, link, 5, start=total)
        total += 5
        await wait_until(lambda: link.acked_upto == total and cloud.contiguous() == total,
                         timeout=40, what=f"all {total} events acked")

        assert sorted(set(cloud.seqs)) == list(range(1, total + 1))
        stored = await asyncio.to_thread(store.events_since, 0, total)
        ids = {event.seq: event.id for event in stored}
        for body in cloud.events:  # a resend is the same message: same id for the same seq
            assert body["id"] == ids[body["seq"]]
        # Every duplicate the cloud saw is one of the link's counted resends (a new MQTT client
        # per connection: paho never resends on its own).
        duplicates = len(cloud.seqs) - total
        assert 0 <= duplicates <= link.resent
        print(f"{total} events, {duplicates} duplicates at the cloud, {link.resent} resent")
        assert await outbox.backlog() == 0
        assert link.connects >= 4


async def test_an_unacked_window_is_sent_again_with_the_same_id_and_seq(
        broker: Mosquitto, store: Store, outbox: StoreOutbox) -> None:
    async with Cloud(broker, ack=False) as cloud:
        await cloud.connected()
        async with make_link(broker.url, outbox, ack_timeout=0.3) as link:
            await append(store, link, 3)
            await wait_until(lambda: len(cloud.events) >= 6, what="the window twice")
            first, again = cloud.events[:3], cloud.events[3:6]
            assert [e["seq"] for e in first] == [1, 2, 3]
            assert again == first  # byte-identical envelopes: same id, seq, ts and data
            assert link.resent >= 3
            assert await outbox.backlog() == 3  # resending removes nothing

            cloud.ack = True
            await cloud.publish("acks", b'{"upto_seq": 3}')
            await wait_until(lambda: link.acked_upto == 3, what="acked")
            assert await outbox.backlog() == 0


async def test_after_a_reconnect_everything_unacked_goes_again_from_the_lowest_seq(
        broker: Mosquitto, store: Store, outbox: StoreOutbox) -> None:
    async with Cloud(broker, ack=False) as cloud, TcpProxy(broker.port) as proxy:
        await cloud.connected()
        async with make_link(proxy.url, outbox, ack_timeout=60) as link:
            await append(store, link, 4)
            await wait_until(lambda: len(cloud.events) == 4, what="4 events")
            await cloud.publish("acks", b'{"upto_seq": 1}')
            await wait_until(lambda: link.acked_upto == 1, what="ack")
            proxy.cut()
            # Long before the ack timeout: the new connection resends 2..4 as they were.
            await wait_until(lambda: len(cloud.events) == 7, what="the resend")
            assert link.connects == 2
            assert cloud.seqs == [1, 2, 3, 4, 2, 3, 4]
            assert cloud.events[4:] == cloud.events[1:4]
            assert (link.sent, link.resent) == (7, 3)
            assert await outbox.unacked() == [2, 3, 4]


async def test_events_committed_wakes_the_publisher_from_any_thread(
        broker: Mosquitto, store: Store, outbox: StoreOutbox,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sync.outbox.POLL_INTERVAL", 3600.0)  # no polling to hide a lost wake-up
    async with Cloud(broker) as cloud, make_link(broker.url, outbox) as link:
        await wait_until(lambda: link.connected, what="link connected")
        await wait_until(lambda: cloud.of("live"), what="publisher idle")

        def commit_in_a_worker_thread() -> None:
            store.append_event("tank.reading", {"tank": 2})
            link.events_committed()

        await asyncio.to_thread(commit_in_a_worker_thread)
        await wait_until(lambda: link.acked_upto == 1, timeout=5, what="woken and acked")
        await append(store, link, 2, start=1)  # and from the loop's own thread
        await wait_until(lambda: link.acked_upto == 3, timeout=5, what="woken again")
        assert cloud.seqs == [1, 2, 3]
