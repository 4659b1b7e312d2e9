"""The station's voice: hub messages in, spoken announcements out (docs/voice.md).

Wiring, in the daemon (the announcer is an async context manager; leaving it stops the voice;
its loops are a peripheral service of the daemon's supervisor, restarted should they die):

    if cfg.voice is not None and cfg.voice.enabled:
        announcer = await stack.enter_async_context(
            Announcer.for_station(cfg.voice, cfg, ledger, clock=clock, services=services))

It listens to the hub and says:

| message | when | priority |
|---|---|---|
| `pump.state` | a nozzle (or a whole pump) becomes `authorized`, not for an app order | service |
| `order.updated` | `status` = `authorized`: the app order's driver may lift the nozzle | service |
| `sale.completed` | always | sale |
| `pump.alarm` | always | alarm |
| `tank.alert` | `status` = `raised` (not `cleared`) | alarm or warning by kind |

A failing voice appends a `voice.alarm` event (`{"kind", "active", "message"}`) when it starts
failing and again, with `active: false`, when it speaks again. Nothing here can raise into the
hub or the controller: a message that cannot be phrased is skipped with a log line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from drivers.voice import Announcement, Priority, Speaker, VoiceAlarm, phrases
from edge.hub import EventHub, Message, Subscription
from edge.services import Service, Services

if TYPE_CHECKING:
    from edge.config import StationConfig
    from edge.config.voice import VoiceConfig
    from edge.ledger import Ledger

log = logging.getLogger(__name__)

RecordEvent = Callable[[str, dict[str, Any]], Awaitable[object]]

# DART DC5 alarm codes (PROTOCOLS.md) as an attendant would hear them.
PUMP_ALARM_CODES: Mapping[int, str] = {
    0x01: "主板复位",
    0x03: "内存故障",
    0x04: "程序校验错误",
    0x06: "编码器故障",
    0x07: "编码器故障",
    0x09: "紧急停机",
    0x0A: "断电",
    0x0B: "压力异常",
    0x0D: "泄漏报警",
    0x0E: "泄漏报警",
    0x0F: "油管泄漏",
}
# `pump.alarm` events the controller raises itself carry a `kind` instead of a code.
PUMP_ALARM_KINDS: Mapping[str, str] = {
    "price_readback_mismatch": "油价与系统不一致，已停止授权",
}
# `tank.alert` kinds: (what is said, urgent). Urgent ones are alarms, the rest warnings.
TANK_ALERTS: Mapping[str, tuple[str, bool]] = {
    "high_water": ("水位过高", True),
    "leak": ("疑似泄漏", True),
    "high_level": ("液位过高", True),
    "overfill": ("液位过高", True),
    "gauge_offline": ("液位仪离线", False),
}


class OrderLookup(Protocol):
    """What the announcer asks the store about app orders."""

    async def order_nozzle(self, order_id: str) -> int | None: ...

    async def authorization_is_order(self, authorization_id: str) -> bool: ...


class LedgerLookup:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def order_nozzle(self, order_id: str) -> int | None:
        order = await self._ledger.read(self._ledger.store.get_order, order_id)
        return order.nozzle if order is not None else None

    async def authorization_is_order(self, authorization_id: str) -> bool:
        store = self._ledger.store
        return await self._ledger.read(store.order_for_authorization, authorization_id) \
            is not None


def _number(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class Phrasebook:
    """Announcements for hub messages. Pure: lookups are the caller's business."""

    def __init__(self, grades: Mapping[str, str]) -> None:
        self._grades = dict(grades)  # grade code -> name as configured ("92" -> "92号汽油")

    def grade(self, code: object) -> str | None:
        if not isinstance(code, str) or not code:
            return None
        # The config names every grade a nozzle sells; an unknown code is still said as one.
        return self._grades.get(code, f"{code}号")

    def sale_completed(self, data: Mapping[str, Any]) -> Announcement | None:
        nozzle, amount = _number(data, "nozzle"), data.get("amount")
        if nozzle is None or not isinstance(amount, str):
            return None
        volume = data.get("volume")
        text = phrases.sale_completed(nozzle, amount, grade=self.grade(data.get("grade")),
                                      volume=volume if isinstance(volume, str) else None)
        return Announcement(text, Priority.SALE, "sale")

    def order_ready(self, nozzle: int | None) -> Announcement:
        return Announcement(phrases.order_ready(nozzle), Priority.SERVICE, "order")

    def nozzle_authorized(self, nozzle: int) -> Announcement:
        return Announcement(phrases.nozzle_authorized(nozzle), Priority.SERVICE, "authorized")

    def pump_authorized(self, pump: int) -> Announcement:
        return Announcement(phrases.pump_authorized(pump), Priority.SERVICE, "authorized")

    def pump_alarm(self, data: Mapping[str, Any]) -> Announcement | None:
        pump = _number(data, "pump")
        if pump is None:
            return None
        code, kind = _number(data, "code"), data.get("kind")
        problem = PUMP_ALARM_CODES.get(code) if code is not None else None
        if problem is None and isinstance(kind, str):
            problem = PUMP_ALARM_KINDS.get(kind)
        return Announcement(phrases.pump_alarm(pump, problem), Priority.ALARM, "pump_alarm")

    def tank_alert(self, data: Mapping[str, Any]) -> Announcement | None:
        tank, kind = _number(data, "tank"), data.get("kind")
        if tank is None or not isinstance(kind, str):
            return None
        if data.get("status") == "cleared" or data.get("cleared") is True:
            return None  # a cleared alert is good news for the console, not for the speaker
        if kind == "low_stock":
            left = data.get("volume_l", data.get("volume"))
            text = phrases.low_stock(tank, self.grade(data.get("grade")),
                                     left if isinstance(left, str) else None)
            return Announcement(text, Priority.WARNING, "low_stock")
        problem, urgent = TANK_ALERTS.get(kind, ("报警", False))
        return Announcement(phrases.tank_problem(tank, problem, urgent=urgent),
                            Priority.ALARM if urgent else Priority.WARNING, "tank_alert")


class AuthorizedWatch:
    """Turns live `pump.state` views into "became authorized" moments. Pure."""

    def __init__(self) -> None:
        self._last: dict[int, tuple[str, dict[int, str]]] = {}

    def update(self, view: Mapping[str, Any]) -> list[tuple[str, int]]:
        """[("nozzle", number)] or [("pump", number)] for what just became authorized."""
        pump = _number(view, "number")
        if pump is None:
            return []
        state = str(view.get("state"))
        nozzles = {n: str(item.get("state")) for item in view.get("nozzles") or ()
                   if isinstance(item, Mapping) and (n := _number(item, "number")) is not None}
        before_state, before = self._last.get(pump, ("", {}))
        self._last[pump] = (state, nozzles)
        fresh = [("nozzle", n) for n, s in sorted(nozzles.items())
                 if s == "authorized" and before.get(n) != "authorized"]
        if fresh or any(s == "authorized" for s in nozzles.values()):
            return fresh
        if state == "authorized" and before_state != "authorized":
            return [("pump", pump)]  # authorized for any nozzle, none lifted yet
        return []


class Announcer:
    def __init__(self, hub: EventHub, speaker: Speaker, *, grades: Mapping[str, str],
                 lookup: OrderLookup | None = None, services: Services | None = None) -> None:
        self.hub = hub
        self.speaker = speaker
        self.phrasebook = Phrasebook(grades)
        self._watch = AuthorizedWatch()
        self._lookup = lookup
        self._stack = AsyncExitStack()
        self._services = services
        self._service: Service | None = None
        self._subscription: Subscription | None = None

    @classmethod
    def for_station(cls, voice: VoiceConfig, config: StationConfig, ledger: Ledger, *,
                    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                    services: Services | None = None) -> Announcer:
        """The daemon's announcer: alarms go to the event log as `voice.alarm` events."""
        speaker = Speaker(voice.speech, zone=config.station.zone, clock=clock,
                          on_alarm=alarm_recorder(ledger.append_event))
        return cls(ledger.hub, speaker, grades={g.code: g.name for g in config.grades},
                   lookup=LedgerLookup(ledger), services=services)

    async def __aenter__(self) -> Announcer:
        try:
            await self._stack.enter_async_context(self.speaker.opened())
            # Entered once: what is published while the loops restart waits in it.
            self._subscription = await self._stack.enter_async_context(self.hub.subscribe())
            services = self._services
            if services is None:  # used on its own: a supervisor of its own
                services = await self._stack.enter_async_context(Services())
            self._service = services.peripheral("voice", self.run)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._service is not None:
            await self._service.stop()
        await self._stack.aclose()

    async def run(self) -> None:
        """The voice's loops, until cancelled: the speaker's worker and the hub's listener."""
        assert self._subscription is not None, "entered first"
        async with asyncio.TaskGroup() as loops:
            loops.create_task(self.speaker.run(), name="voice-speaker")
            loops.create_task(self._listen(self._subscription), name="voice-listener")

    async def _listen(self, subscription: Subscription) -> None:
        while True:
            message = await subscription.get()
            try:
                await self.handle(message)
            except Exception:  # a message we cannot phrase must not end the voice
                log.exception("cannot announce %s", message.get("type"))

    async def handle(self, message: Message) -> None:
        """Queue what `message` calls for, if anything."""
        kind, data = message.get("type"), message.get("data")
        if not isinstance(data, Mapping):
            return
        book = self.phrasebook
        if kind == "sale.completed":
            self._say(book.sale_completed(data))
        elif kind == "pump.alarm":
            self._say(book.pump_alarm(data))
        elif kind == "tank.alert":
            self._say(book.tank_alert(data))
        elif kind == "order.updated" and data.get("status") == "authorized":
            order_id = data.get("order_id")
            nozzle = await self._order_nozzle(order_id) if isinstance(order_id, str) else None
            self._say(book.order_ready(nozzle))
        elif kind == "pump.state":
            for what, number in self._watch.update(data):
                auth_id = data.get("authorization_id")
                if isinstance(auth_id, str) and await self._is_order(auth_id):
                    continue  # its order.updated says it, with the order's wording
                self._say(book.nozzle_authorized(number) if what == "nozzle"
                          else book.pump_authorized(number))

    def _say(self, announcement: Announcement | None) -> None:
        if announcement is not None:
            self.speaker.announce(announcement)

    async def _order_nozzle(self, order_id: str) -> int | None:
        if self._lookup is None:
            return None
        try:
            return await self._lookup.order_nozzle(order_id)
        except Exception as exc:  # the store being down costs the nozzle number, not the words
            log.debug("cannot look up order %s: %s", order_id, exc)
            return None

    async def _is_order(self, authorization_id: str) -> bool:
        if self._lookup is None:
            return False
        try:
            return await self._lookup.authorization_is_order(authorization_id)
        except Exception as exc:
            log.debug("cannot look up authorization %s: %s", authorization_id, exc)
            return False


def alarm_recorder(record_event: RecordEvent) -> Callable[[VoiceAlarm], Awaitable[None]]:
    """An alarm sink that appends `voice.alarm` events (e.g. with `Ledger.append_event`)."""

    async def record(alarm: VoiceAlarm) -> None:
        await record_event("voice.alarm", alarm.to_data())

    return record
