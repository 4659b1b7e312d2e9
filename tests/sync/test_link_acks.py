"""What arrives on `acks`, against a real Mosquitto and a real SQLite store: an ack above what the
ledger has assigned is refused whole (never clamped), counted and raised as an alarm, and the
genuine acks after it still work; a restart is no reason to refuse one; a conflict the cloud
reports moves the unacknowledged events to a new epoch (docs/cloud.md, "Epochs")."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from edge.store import Store
from tests.helpers import wait_until
from tests.mosquitto import Mosquitto
from tests.sync.conftest import Cloud, StoreOutbox, append, make_link

pytestmark = pytest.mark.usefixtures("no_leaks")


def ack(upto: int, epoch: int | None = None) -> bytes:
    body: dict[str, int] = {"upto_seq": upto}
    if epoch is not None:
        body["epoch"] = epoch
    return json.dumps(body).encode()


async def alarms(store: Store) -> list[dict[str, object]]:
    events = await asyncio.to_thread(store.events_since, 0, 1000)
    return [event.data for event in events if event.type == "cloud.alarm"]


async def test_a_forged_ack_deletes_nothing_and_a_genuine_ack_after_it_still_works(
        broker: Mosquitto, store: Store, outbox: StoreOutbox,
        caplog: pytest.LogCaptureFixture) -> None:
    """Issue case 1: seq 1-8 unacked, one `{"upto_seq": 1000000000000}` emptied the outbox, and
    the genuine `{"upto_seq": 9}` after it was ignored: seq 9 was never sent again."""
    async with Cloud(broker, ack=False) as cloud, make_link(broker.url, outbox) as link:
        await cloud.connected()
        await wait_until(lambda: link.connected, what="link connected")
        await append(store, link, 8)
        await wait_until(lambda: len(cloud.events) == 8, what="8 events out")

        with caplog.at_level(logging.ERROR, logger="sync.outbox"):
            await cloud.publish("acks", ack(1_000_000_000_000))
            await wait_until(lambda: link.forged_acks == 1, what="the forged ack refused")
        assert "refused an ack up to seq 1000000000000 of epoch 1" in caplog.text
        # The alarm is an event like any other (seq 9): recorded, and on its way to the cloud.
        await wait_until(lambda: alarms(store), what="the alarm event")
        assert await outbox.unacked() == [1, 2, 3, 4, 5, 6, 7, 8, 9]  # nothing deleted
        assert outbox.acks == []  # not clamped to 8 either: never applied at all
        assert link.acked_upto == 0
        [alarm] = await alarms(store)
        assert alarm["kind"] == "forged_ack"
        assert (alarm["highest_seq"], alarm["current_epoch"], alarm["refused"]) == (8, 1, 1)
        assert alarm["ack"] == {"upto_seq": 1_000_000_000_000, "epoch": 1}
        await wait_until(lambda: 9 in cloud.seqs, what="the alarm event at the cloud")
        assert cloud.events[-1]["type"] == "cloud.alarm"

        await append(store, link, 1, start=8)  # seq 10
        await wait_until(lambda: 10 in cloud.seqs, what="seq 10 out")
        await cloud.publish("acks", ack(9))
        await wait_until(lambda: link.acked_upto == 9, what="the genuine ack applied")
        assert await outbox.unacked() == [10]
        await cloud.publish("acks", ack(10))
        await wait_until(lambda: link.acked_upto == 10, what="the next genuine ack")
        assert await outbox.backlog() == 0
        assert link.forged_acks == 1
        assert link.health() == {"connected": True, "forged_acks": 1, "bad_acks": 0,
                                 "epoch": 1, "epochs_started": 0}


async def test_forged_acks_in_a_flood_raise_one_alarm_and_are_all_counted(
        broker: Mosquitto, store: Store, outbox: StoreOutbox) -> None:
    async with Cloud(broker, ack=False) as cloud, make_link(broker.url, outbox) as link:
        await cloud.connected()
        await wait_until(lambda: link.connected, what="link connected")
        await append(store, link, 3)
        await wait_until(lambda: len(cloud.events) == 3, what="3 events out")
        for n in range(20):
            await cloud.publish("acks", ack(4 + n))  # every one above seq 3
        # A genuine ack after the flood is applied: it shows the flood was dealt with.
        await cloud.publish("acks", ack(2))
        await wait_until(lambda: link.acked_upto == 2, what="the genuine ack")
        await wait_until(lambda: link.forged_acks == 20, what="all 20 counted")
        assert len(await alarms(store)) == 1  # one alarm a minute at most, not one a message
        assert await outbox.unacked() == [3, 4]  # 4: the alarm itself


async def test_an_ack_for_an_epoch_the_ledger_has_not_reached_is_refused(
        broker: Mosquitto, store: Store, outbox: StoreOutbox) -> None:
    async with Cloud(broker, ack=False) as cloud, make_link(broker.url, outbox) as link:
        await cloud.connected()
        await append(store, link, 3)
        await wait_until(lambda: len(cloud.events) == 3, what="3 events out")
        await cloud.publish("acks", ack(3, epoch=2))
        await wait_until(lambda: link.forged_acks == 1, what="refused")
        assert await outbox.unacked() == [1, 2, 3, 4]  # 4: the alarm
        await cloud.publish("acks", ack(3, epoch=1))
        await wait_until(lambda: link.acked_upto == 3, what="the genuine ack")
        assert await outbox.unacked() == [4]


async def test_acks_of_events_sent_before_a_restart_are_no_false_alarm(
        broker: Mosquitto, store: Store, outbox: StoreOutbox) -> None:
    """The bound is the ledger's durable counter, not what this run of the link has sent: the
    cloud's acks of events published before a restart arrive before anything is sent again."""
    async with Cloud(broker, ack=False) as cloud:
        await cloud.connected()
        async with make_link(broker.url, outbox) as link:
            await append(store, link, 5)
            await wait_until(lambda: len(cloud.events) == 5, what="5 events out")
        async with make_link(broker.url, outbox, window=1) as link:
            await cloud.publish("acks", ack(5))
            await wait_until(lambda: link.acked_upto == 5, what="the old events acked")
            assert link.forged_acks == 0
            assert await outbox.backlog() == 0
            assert await alarms(store) == []


async def test_a_conflict_moves_the_unacked_events_to_a_new_epoch(
        broker: Mosquitto, store: Store, outbox: StoreOutbox) -> None:
    """The cloud holds other events under (epoch 1, seq 3...): this ledger's events from seq 3
    on go again in a new epoch, above the highest the cloud knows, and an `epoch.started`
    event says where it starts."""
    async with Cloud(broker, ack=False) as cloud, make_link(broker.url, outbox) as link:
        await cloud.connected()
        await append(store, link, 5)
        await wait_until(lambda: len(cloud.events) == 5, what="5 events out")
        await cloud.publish("acks", ack(2))
        await wait_until(lambda: link.acked_upto == 2, what="1 and 2 acked")
        conflict = {"conflict": {"epoch": 1, "seq": 3, "cloud_epoch": 4}}
        await cloud.publish("acks", json.dumps(conflict).encode())
        await wait_until(lambda: link.epochs_started == 1, what="a new epoch")
        assert link.epoch == 5
        await wait_until(lambda: [e["seq"] for e in cloud.events[5:]] == [3, 4, 5, 6],
                         what="3..5 again and the epoch.started event")
        again = cloud.events[5:]
        assert [e["epoch"] for e in again] == [5, 5, 5, 5]
        assert [e["id"] for e in again[:3]] == [e["id"] for e in cloud.events[2:5]]
        started = again[3]
        assert started["type"] == "epoch.started"
        assert started["data"] == {"epoch": 5, "first_seq": 3, "previous_epoch": 1,
                                   "reason": "conflict",
                                   "conflict": {"epoch": 1, "seq": 3, "cloud_epoch": 4,
                                                "moved": 3}}
        assert await asyncio.to_thread(store.ledger_position) == (5, 6)

        # The same conflict again (the cloud saw a resend) changes nothing; an ack of the old
        # epoch removes nothing of the new one; the new epoch's ack does.
        await cloud.publish("acks", json.dumps(conflict).encode())
        await cloud.publish("acks", ack(5, epoch=1))
        await cloud.publish("acks", ack(4, epoch=5))
        await wait_until(lambda: link.acked.get(5) == 4, what="the new epoch's ack")
        assert link.epochs_started == 1 and link.forged_acks == 0
        assert await outbox.unacked() == [5, 6]
        assert await asyncio.to_thread(store.ledger_position) == (5, 6)


async def test_a_conflict_beyond_the_ledger_is_refused_like_a_forged_ack(
        broker: Mosquitto, store: Store, outbox: StoreOutbox) -> None:
    async with Cloud(broker, ack=False) as cloud, make_link(broker.url, outbox) as link:
        await cloud.connected()
        await append(store, link, 2)
        await wait_until(lambda: len(cloud.events) == 2, what="2 events out")
        for conflict in ({"epoch": 1, "seq": 50, "cloud_epoch": 1},
                         {"epoch": 3, "seq": 1, "cloud_epoch": 3}):
            await cloud.publish("acks", json.dumps({"conflict": conflict}).encode())
        await wait_until(lambda: link.forged_acks == 2, what="both refused")
        assert link.epochs_started == 0
        assert await asyncio.to_thread(store.ledger_position) == (1, 3)  # 3: the alarm
