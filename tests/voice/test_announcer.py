"""What the station says for each hub message, and the announcer wired to a real hub, store
and speaker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from domain.model import Preset
from drivers.voice import (
    Announcement,
    Output,
    Priority,
    Speaker,
    SpeechSettings,
)
from edge.announcer import Announcer, AuthorizedWatch, Phrasebook
from edge.config import parse_config
from edge.config.voice import VoiceConfig
from edge.hub import EventHub
from edge.ledger import Ledger
from edge.store import Store
from tests.helpers import StationSpec, wait_until

from .conftest import SHANGHAI, FakeClock, assert_speech

GRADES = {"92": "92号汽油", "95": "95号汽油", "0": "0号柴油"}


def sale(**changes: Any) -> dict[str, Any]:
    """A `sale.completed` event's data as the API shows a sale."""
    data: dict[str, Any] = {
        "id": "S-1", "seq": 12, "pump": 2, "nozzle": 3, "grade": "92", "volume": "38.33",
        "amount": "287.50", "price": "7.50", "started_at": "2026-11-22T09:10:00+08:00",
        "ended_at": "2026-11-22T09:15:00+08:00", "order_id": None, "paid": False,
        "payments": [], "recovered": False,
    }
    data.update(changes)
    return data


def view(pump: int, state: str, nozzles: dict[int, str], auth: str | None = None
         ) -> dict[str, Any]:
    """A live `pump.state` message's data."""
    return {"number": pump, "online": True, "state": state, "status": None, "alarm": None,
            "authorization_id": auth,
            "nozzles": [{"number": n, "logical": i, "grade": "92", "state": s,
                         "volume": "0.00", "amount": "0.00"}
                        for i, (n, s) in enumerate(sorted(nozzles.items()), start=1)]}


# -- the words -----------------------------------------------------------------------------------

book = Phrasebook(GRADES)


@pytest.mark.parametrize(("data", "text"), [
    (sale(), "三号枪加油完成，九十二号汽油三十八点三三升，金额二百八十七元五角"),
    (sale(nozzle=12, grade="0", volume="41.90", amount="300.00"),
     "十二号枪加油完成，零号柴油四十一点九升，金额三百元"),
    (sale(nozzle=1, grade="95", volume="0.01", amount="0.05"),
     "一号枪加油完成，九十五号汽油零点零一升，金额五分"),
    # A grade code the config does not name is said as a grade number.
    (sale(nozzle=4, grade="98", volume="125.35", amount="1005.30"),
     "四号枪加油完成，九十八号一百二十五点三五升，金额一千零五元三角"),
])
def test_sale_completed(data: dict[str, Any], text: str) -> None:
    assert book.sale_completed(data) == Announcement(text, Priority.SALE, "sale")


def test_a_sale_without_figures_is_not_announced() -> None:
    assert book.sale_completed(sale(amount=None)) is None
    assert book.sale_completed(sale(nozzle="3")) is None


@pytest.mark.parametrize(("data", "text"), [
    ({"pump": 3, "code": 0x09}, "注意，三号加油机紧急停机，请立即处理"),
    ({"pump": 1, "code": 0x0A}, "注意，一号加油机断电，请立即处理"),
    ({"pump": 2, "code": 0x0F}, "注意，二号加油机油管泄漏，请立即处理"),
    ({"pump": 2, "code": 0x42}, "注意，二号加油机报警，请立即处理"),
    ({"pump": 5, "kind": "price_readback_mismatch", "expected": ["7.50"], "read_back": ["7.05"]},
     "注意，五号加油机油价与系统不一致，已停止授权，请立即处理"),
])
def test_pump_alarms(data: dict[str, Any], text: str) -> None:
    assert book.pump_alarm(data) == Announcement(text, Priority.ALARM, "pump_alarm")


@pytest.mark.parametrize(("data", "text", "priority"), [
    ({"tank": 1, "grade": "92", "kind": "low_stock", "status": "raised", "volume_l": "3250.00"},
     "一号油罐九十二号汽油库存不足，剩余三千二百五十升，请及时订油", Priority.WARNING),
    ({"tank": 2, "grade": "0", "kind": "low_stock", "status": "raised"},
     "二号油罐零号柴油库存不足，请及时订油", Priority.WARNING),
    ({"tank": 3, "grade": "95", "kind": "high_water", "status": "raised", "water_mm": "55"},
     "注意，三号油罐水位过高，请立即处理", Priority.ALARM),
    ({"tank": 4, "grade": "95", "kind": "gauge_offline", "status": "raised"},
     "四号油罐液位仪离线，请检查", Priority.WARNING),
])
def test_tank_alerts(data: dict[str, Any], text: str, priority: Priority) -> None:
    said = book.tank_alert(data)
    assert said is not None and (said.text, said.priority) == (text, priority)


def test_a_cleared_tank_alert_is_not_announced() -> None:
    assert book.tank_alert({"tank": 1, "grade": "92", "kind": "low_stock",
                            "status": "cleared"}) is None


def test_app_order_ready_and_authorized_phrases() -> None:
    assert book.order_ready(3).text == "三号枪手机订单已授权，请提枪加油"
    assert book.order_ready(None).text == "手机订单已授权，请提枪加油"
    assert book.nozzle_authorized(3).text == "三号枪已授权，请加油"
    assert book.pump_authorized(2).text == "二号加油机已授权，请加油"


def test_authorized_is_announced_when_it_becomes_so() -> None:
    watch = AuthorizedWatch()
    assert watch.update(view(2, "idle", {3: "idle", 4: "idle"})) == []
    assert watch.update(view(2, "calling", {3: "calling", 4: "idle"})) == []
    assert watch.update(view(2, "authorized", {3: "authorized", 4: "idle"})) == [("nozzle", 3)]
    # The same state again (a volume tick, a re-publish) is not news.
    assert watch.update(view(2, "authorized", {3: "authorized", 4: "idle"})) == []
    assert watch.update(view(2, "fuelling", {3: "fuelling", 4: "idle"})) == []
    assert watch.update(view(2, "idle", {3: "idle", 4: "idle"})) == []
    assert watch.update(view(2, "authorized", {3: "idle", 4: "idle"})) == [("pump", 2)]
    assert watch.update(view(2, "authorized", {3: "idle", 4: "authorized"})) == [("nozzle", 4)]
    assert watch.update(view(1, "authorized", {1: "authorized"})) == [("nozzle", 1)]


# -- the service ---------------------------------------------------------------------------------


class Lookup:
    def __init__(self, orders: dict[str, int], order_auths: set[str], broken: bool = False
                 ) -> None:
        self.orders, self.order_auths, self.broken = orders, order_auths, broken

    async def order_nozzle(self, order_id: str) -> int | None:
        if self.broken:
            raise RuntimeError("store unavailable")
        return self.orders.get(order_id)

    async def authorization_is_order(self, authorization_id: str) -> bool:
        if self.broken:
            raise RuntimeError("store unavailable")
        return authorization_id in self.order_auths


def queued(speaker: Speaker, clock: FakeClock) -> list[str]:
    out = []
    while (item := speaker.queue.next(clock.now)) is not None:
        out.append(item.text)
    return out


@pytest.fixture
def speaker(tmp_path: Path, clock: FakeClock) -> Speaker:
    # Not entered: the tests read its queue instead of listening.
    return Speaker(SpeechSettings(output=Output.FILES, folder=tmp_path), zone=SHANGHAI,
                   clock=clock)


async def test_messages_to_announcements(speaker: Speaker, clock: FakeClock) -> None:
    announcer = Announcer(EventHub(), speaker, grades=GRADES,
                          lookup=Lookup({"APP-1": 3}, {"A-ORDER"}))
    messages: list[dict[str, Any]] = [
        {"type": "sale.completed", "seq": 1, "data": sale()},
        {"type": "order.updated", "seq": 2, "data": {"order_id": "APP-1", "status": "accepted"}},
        {"type": "order.updated", "seq": 3, "data": {"order_id": "APP-1", "status": "authorized"}},
        {"type": "pump.state", "data": view(2, "authorized", {3: "authorized"}, "A-ORDER")},
        {"type": "pump.state", "data": view(1, "authorized", {1: "authorized"}, "A-ATT")},
        {"type": "pump.alarm", "seq": 4, "data": {"pump": 1, "code": 9}},
        {"type": "tank.alert", "seq": 5, "data": {"tank": 1, "grade": "92", "kind": "low_stock",
                                                  "status": "raised"}},
        {"type": "price.applied", "seq": 6, "data": {"price_set_id": "P1"}},
        {"type": "pump.alarm", "seq": 7, "data": "garbage"},
    ]
    for message in messages:
        await announcer.handle(message)
    assert queued(speaker, clock) == [
        "注意，一号加油机紧急停机，请立即处理",
        "一号油罐九十二号汽油库存不足，请及时订油",
        "三号枪手机订单已授权，请提枪加油",
        "一号枪已授权，请加油",
        "三号枪加油完成，九十二号汽油三十八点三三升，金额二百八十七元五角",
    ]


async def test_a_store_that_cannot_answer_costs_the_nozzle_number_only(
        speaker: Speaker, clock: FakeClock) -> None:
    announcer = Announcer(EventHub(), speaker, grades=GRADES, lookup=Lookup({}, set(), True))
    await announcer.handle({"type": "order.updated",
                            "data": {"order_id": "APP-1", "status": "authorized"}})
    await announcer.handle({"type": "pump.state",
                            "data": view(1, "authorized", {1: "authorized"}, "A-1")})
    assert queued(speaker, clock) == ["手机订单已授权，请提枪加油", "一号枪已授权，请加油"]


@asynccontextmanager
async def station_ledger(tmp_path: Path) -> AsyncIterator[tuple[Any, Ledger]]:
    spec = StationSpec(port_url="socket://127.0.0.1:9", db=tmp_path / "station.db", api_port=1)
    config = parse_config(spec.toml())
    store = Store.open(spec.db, zone=SHANGHAI)
    ledger = Ledger(store, EventHub(), zone=SHANGHAI)
    try:
        yield config, ledger
    finally:
        ledger.close()
        store.close()
        await asyncio.get_running_loop().shutdown_default_executor()


async def test_the_daemons_announcer_speaks_hub_events_and_skips_order_authorizations(
        tmp_path: Path, clock: FakeClock) -> None:
    folder = tmp_path / "voice"
    voice = VoiceConfig(SpeechSettings(output=Output.FILES, folder=folder))
    async with station_ledger(tmp_path) as (config, ledger):
        store = ledger.store
        async with Announcer.for_station(voice, config, ledger, clock=clock) as announcer:
            await ledger.write(store.create_order, order_id="APP-7", nozzle=3, grade="92",
                               price=Decimal("7.50"), preset=Preset("amount", Decimal("100")),
                               paid=Decimal("100.00"), status="accepted",
                               expires_at=datetime.now(UTC) + timedelta(minutes=5))
            auth = await ledger.write(store.create_authorization, pump=2, nozzle=3,
                                      preset=Preset("amount", Decimal("100")), source="order",
                                      order_id="APP-7")
            await ledger.write(store.update_order, "APP-7", status="authorized",
                               authorization_id=auth.id)
            await ledger.publish_new()
            hub = ledger.hub
            hub.publish({"type": "pump.state",
                         "data": view(2, "authorized", {3: "authorized", 4: "idle"}, auth.id)})
            attendant = await ledger.write(store.create_authorization, pump=1, nozzle=1,
                                           preset=None, source="attendant", user="li")
            hub.publish({"type": "pump.state",
                         "data": view(1, "authorized", {1: "authorized", 2: "idle"},
                                      attendant.id)})
            speaker = announcer.speaker
            await wait_until(lambda: speaker.said + speaker.failed >= 2, timeout=10,
                             what="two announcements")
            await speaker.drained()
            assert speaker.said == 2 and speaker.failed == 0
        names = sorted(p.name for p in folder.iterdir())
        assert names == ["20261122-091500-authorized.wav", "20261122-091500-order.wav"]
        for name in names:
            assert_speech(folder / name)
        events = await ledger.read(store.events_since, 0)
        assert "voice.alarm" not in {e.type for e in events}


async def test_a_failing_voice_appends_voice_alarm_events(tmp_path: Path,
                                                         clock: FakeClock) -> None:
    voice = VoiceConfig(SpeechSettings(output=Output.FILES, folder=tmp_path / "v",
                                       voice="no-such-voice"))
    async with station_ledger(tmp_path) as (config, ledger):
        async with Announcer.for_station(voice, config, ledger, clock=clock) as announcer:
            ledger.hub.publish({"type": "pump.alarm", "seq": 1, "data": {"pump": 1, "code": 9}})
            speaker = announcer.speaker
            await wait_until(lambda: speaker.failed >= 1, timeout=10, what="a failed alarm")
        events = await ledger.read(ledger.store.events_since, 0)
    alarms = [e.data for e in events if e.type == "voice.alarm"]
    assert alarms == [{"kind": "voice_not_found", "active": True,
                       "message": "voice 'no-such-voice' is not installed"}]
