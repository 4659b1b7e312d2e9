"""Tank monitoring: polls the gauges, tells what changed, finds deliveries, closes each day.

    monitor = TankMonitor(settings, pumps=config.pumps, ledger=ledger, hub=hub, clock=clock,
                          zone=zone)
    async with monitor:               # its loops run as the peripheral service "tanks"
        body = await monitor.view()   # GET /api/v1/tanks, data.request "tanks"

The loops run under the supervisor given as `services` (the daemon's), else under one of the
monitor's own; should they die they are restarted (edge/services.py).

One poller per gauge connection reads each gauge every `poll_interval`; a gauge that fails
`offline_after` polls in a row raises `gauge_offline` on its tanks, cleared by its next answer.
A dead gauge costs one bounded request per poll: it never stalls anything else, and nothing
here raises into the caller (failures are alerts and log lines: the first at error, repeats at
debug, the recovery at info).

From the hub it follows `pump.state` (which nozzles are fuelling: a tank is "quiet" when none
of its nozzles is) and `sale.completed` (litres sold per tank). Readings taken while a tank is
quiet feed its delivery detector (drivers.gauges.delivery). After the station's midnight, the
first quiet reading of each tank closes the day: the store reconciles opening + deliveries -
sales against it and raises `reconciliation.discrepancy` beyond the tolerance.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from types import TracebackType
from typing import Any

from domain.model import decimal_str
from drivers.gauges import (
    DeliveryDetector,
    DeliveryFound,
    GaugeError,
    GaugePoller,
    ModbusLink,
    Phase,
    ProbeValues,
    StockPoint,
)
from edge.config.model import Pump
from edge.config.tanks import Gauge, Tank, TankSettings, tank_nozzles
from edge.hub import EventHub
from edge.ledger import Ledger
from edge.services import Service, Services
from edge.store import StoreUnavailable
from edge.store.tanks import AlertChange, AlertKind, TankReading, reading_data

log = logging.getLogger(__name__)

_FLOWING = frozenset({"fuelling", "completing"})  # nozzle states (edge.views) that draw fuel
# Probes resolve 0.1 mm; a water level that moved a whole millimetre is real.
WATER_STEP = Decimal(1)
# A day is closed at the first quiet reading after midnight; a tank busy for this long after
# midnight is closed anyway (its reconciliation is then off by what was in flight).
CLOSE_WAIT = timedelta(hours=2)
_TENTH = Decimal("0.1")
_CENT = Decimal("0.01")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _TankState:
    tank: Tank
    nozzles: tuple[int, ...]
    detector: DeliveryDetector
    latest: TankReading | None = None
    reported: TankReading | None = None  # the last reading told as a tank.reading event
    alerts: dict[AlertKind, dict[str, Any]] = field(default_factory=dict)  # open: event data
    sold: Decimal = Decimal(0)  # litres sold since start, from sale.completed
    closed_day: date | None = None
    close_waiting_since: datetime | None = None
    pending: list[DeliveryFound] = field(default_factory=list)  # found, not yet stored


@dataclass
class _GaugeState:
    gauge: Gauge
    poller: GaugePoller
    tanks: tuple[Tank, ...]
    online: bool | None = None  # as the alerts stored say; None: not heard from since start


class TankMonitor:
    def __init__(
        self,
        settings: TankSettings,
        *,
        pumps: Sequence[Pump],
        ledger: Ledger,
        hub: EventHub,
        clock: Callable[[], datetime] = utc_now,
        zone: tzinfo | None = None,
        services: Services | None = None,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.store = ledger.store
        self.hub = hub
        self._clock = clock
        self.zone = zone or UTC
        self._nozzle_tank = tank_nozzles(settings, pumps)
        feeds: dict[int, list[int]] = defaultdict(list)
        for nozzle, number in sorted(self._nozzle_tank.items()):
            feeds[number].append(nozzle)
        wet = settings.wetstock
        self._tanks = {
            tank.number: _TankState(
                tank, tuple(feeds[tank.number]),
                DeliveryDetector(noise=wet.noise, minimum=wet.delivery_min,
                                 settle=wet.delivery_settle),
            )
            for tank in settings.tanks
        }  # fmt: skip
        # One link per physical connection, shared by the gauges on it (one owner per bus).
        links: dict[str, ModbusLink] = {}
        for gauge in settings.gauges:
            timeout = max(
                g.timeout for g in settings.gauges if g.url.endpoint == gauge.url.endpoint
            ).total_seconds()
            links.setdefault(gauge.url.endpoint, ModbusLink(gauge.url, timeout=timeout))
        self._gauges = {
            gauge.id: _GaugeState(gauge, GaugePoller(
                gauge.id, links[gauge.url.endpoint], device_id=gauge.device_id,
                kind=gauge.register_type, word_order=gauge.word_order,
                probes={tank.number: tank.probe for tank in settings.tanks_on(gauge.id)},
            ), settings.tanks_on(gauge.id))
            for gauge in settings.gauges
            if settings.tanks_on(gauge.id)
        }  # fmt: skip
        self._links = links
        self._flowing: set[int] = set()  # nozzles fuelling now
        self._started = False
        self._since = clock()  # sales that ended before this are in the first readings
        self._services = services
        self._service: Service | None = None
        self._stack = AsyncExitStack()

    # -- life -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Picks up what the store knows: open alerts, the latest readings, days closed."""
        if self._started:
            return
        self._started = True
        for alert in await self.ledger.read(self.store.open_tank_alerts):
            if alert.tank in self._tanks:
                self._tanks[alert.tank].alerts[alert.kind] = _alert_view(alert.data)
        for reading in await self.ledger.read(self.store.latest_tank_readings):
            if reading.tank in self._tanks:
                state = self._tanks[reading.tank]
                state.latest = state.reported = reading
        for number, state in self._tanks.items():
            closed = await self.ledger.read(self.store.last_tank_close, number)
            state.closed_day = closed[0] if closed else None

    async def run(self) -> None:
        """Runs until cancelled: follows the hub and polls every gauge."""
        await self.start()
        by_link: dict[int, list[_GaugeState]] = defaultdict(list)
        for state in self._gauges.values():
            by_link[id(state.poller.link)].append(state)
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._follow_hub(), name="tanks-hub")
                for states in by_link.values():
                    name = f"gauges-{states[0].gauge.url.endpoint}"
                    tasks.create_task(self._poll_loop(states), name=name)
        finally:
            self.close()

    async def __aenter__(self) -> TankMonitor:
        await self.start()
        services = self._services
        if services is None:  # used on its own: a supervisor of its own
            services = await self._stack.enter_async_context(Services())
        self._service = services.peripheral("tanks", self.run)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._service is not None:
            await self._service.stop()
            self._service = None
        await self._stack.aclose()
        self.close()

    def close(self) -> None:
        for link in self._links.values():
            link.close()

    async def _follow_hub(self) -> None:
        async with self.hub.subscribe() as subscription:
            while True:
                self.observe(await subscription.get())

    async def _poll_loop(self, states: list[_GaugeState]) -> None:
        loop = asyncio.get_running_loop()
        due = {state.gauge.id: loop.time() for state in states}
        while True:
            for state in states:
                if loop.time() >= due[state.gauge.id]:
                    await self.poll(state.gauge.id)
                    due[state.gauge.id] = loop.time() + state.gauge.poll_interval.total_seconds()
            await asyncio.sleep(max(0.0, min(due.values()) - loop.time()))

    # -- what the forecourt does ----------------------------------------------------------------

    def observe(self, message: dict[str, Any]) -> None:
        """One hub message: `pump.state` and `sale.completed` matter, the rest is ignored."""
        try:
            kind, data = message.get("type"), message.get("data") or {}
            if kind == "pump.state":
                for nozzle in data.get("nozzles", ()):
                    number = nozzle["number"]
                    if nozzle.get("state") in _FLOWING:
                        self._flowing.add(number)
                    else:
                        self._flowing.discard(number)
            elif kind == "sale.completed":
                number = self._nozzle_tank.get(data["nozzle"])
                ended = data.get("ended_at")
                # A sale that ended before this start (recovered from a pump after a restart)
                # left the tank before the first reading here: counting it would look like fuel
                # coming in.
                if number is not None and (ended is None or
                                           datetime.fromisoformat(ended) >= self._since):
                    self._tanks[number].sold += Decimal(data["volume"])
        except (AttributeError, KeyError, TypeError, ValueError, InvalidOperation) as exc:
            log.debug("tanks: ignoring a %s message: %r", message.get("type"), exc)

    def sold(self, tank: int) -> Decimal:
        """Litres sold from `tank` since the monitor started (its `sale.completed` events)."""
        return self._tanks[tank].sold

    def dispensing(self, tank: int) -> bool:
        """True while a nozzle that draws from `tank` is fuelling."""
        return any(nozzle in self._flowing for nozzle in self._tanks[tank].nozzles)

    # -- polling --------------------------------------------------------------------------------

    async def poll_all(self) -> None:
        for gauge_id in self._gauges:
            await self.poll(gauge_id)

    async def poll(self, gauge_id: str) -> None:
        """Reads one gauge once and acts on it; never raises (but for cancellation)."""
        state = self._gauges[gauge_id]
        try:
            result = await state.poller.poll()
        except Exception:
            log.exception("gauge %s: unexpected failure", gauge_id)
            return
        try:
            if result.error is not None:
                if result.failures >= state.gauge.offline_after and state.online is not False:
                    await self._gauge_online(state, result.error)
                return
            if state.online is not True:
                await self._gauge_online(state)
            await self._take(state, result.values, self._clock())
        except StoreUnavailable:
            pass  # the ledger logged it; the next poll writes what is still due
        except Exception:
            log.exception("gauge %s: cannot record its readings", gauge_id)

    async def _gauge_online(self, state: _GaugeState, error: GaugeError | None = None) -> None:
        """Raises (with the `error`) or clears `gauge_offline` on every tank of the gauge."""
        data = {"gauge": state.gauge.id}
        if error is not None:
            data.update(reason=error.reason, message=str(error))
        changes = [AlertChange(tank.number, tank.grade, AlertKind.GAUGE_OFFLINE,
                               error is not None, data) for tank in state.tanks]  # fmt: skip
        if await self._change_alerts(changes):
            state.online = error is None

    async def _take(
        self, state: _GaugeState, values: Mapping[int, ProbeValues], now: datetime
    ) -> None:
        wet = self.settings.wetstock
        report: list[TankReading] = []
        changes: list[AlertChange] = []
        for tank in state.tanks:
            ts = self._tanks[tank.number]
            reading = _reading(tank, values[tank.number], now)
            ts.latest = reading
            last = ts.reported
            if (
                last is None
                or abs(reading.volume_l - last.volume_l) >= wet.noise
                or _moved(reading.water_mm, last.water_mm, WATER_STEP)
                or now - last.read_at >= wet.reading_interval
            ):
                report.append(reading)
            changes.extend(self._alert_changes(ts, reading, state.gauge.id))
        if report:
            await self.ledger.write(self.store.record_tank_readings, report)
            await self.ledger.publish_new()
            for reading in report:
                self._tanks[reading.tank].reported = reading
        await self._change_alerts(changes)
        for tank in state.tanks:
            ts = self._tanks[tank.number]
            await self._deliveries(ts, now)
            await self._close_day(ts, now)

    def _alert_changes(self, ts: _TankState, reading: TankReading, gauge: str) -> list[AlertChange]:
        tank, noise = ts.tank, self.settings.wetstock.noise
        # (kind, beyond the limit, back clear of it, details). An alert clears only clear of the
        # noise, so a level hovering at the limit does not flap.
        rules: list[tuple[AlertKind, bool, bool, dict[str, Any]]] = []
        if tank.low_stock is not None:
            volume, limit = reading.volume_l, tank.low_stock
            rules.append((AlertKind.LOW_STOCK, volume < limit, volume >= limit + noise,
                          {"volume_l": decimal_str(volume), "low_stock_l": decimal_str(limit)}))
        if tank.high_water_mm is not None and reading.water_mm is not None:
            water, limit = reading.water_mm, tank.high_water_mm
            rules.append((AlertKind.HIGH_WATER, water > limit, water <= limit - WATER_STEP,
                          {"water_mm": decimal_str(water, 1),
                           "high_water_mm": decimal_str(limit, 1)}))
        changes = []
        for kind, beyond, back, details in rules:
            is_open = kind in ts.alerts
            if (beyond and not is_open) or (back and is_open):
                data = {"gauge": gauge, **details}
                changes.append(AlertChange(tank.number, tank.grade, kind, not is_open, data))
        return changes  # fmt: skip

    async def _change_alerts(self, changes: list[AlertChange]) -> bool:
        """Writes the changes; True once they are durable (or there were none)."""
        if not changes:
            return True
        try:
            told = await self.ledger.write(self.store.change_tank_alerts, changes)
        except StoreUnavailable:
            return False
        await self.ledger.publish_new()
        for change in changes:
            # A raise that wrote nothing found the alert open already: it stays as it is.
            if not change.raised:
                self._tanks[change.tank].alerts.pop(change.kind, None)
        for event in told:
            data = event.data
            if data["status"] == "raised":
                self._tanks[data["tank"]].alerts[AlertKind(data["kind"])] = _alert_view(data)
            log.log(logging.WARNING if data["status"] == "raised" else logging.INFO,
                    "tank %d: %s %s", data["tank"], data["kind"], data["status"])  # fmt: skip
        return True

    # -- deliveries and the day's close ---------------------------------------------------------

    async def _deliveries(self, ts: _TankState, now: datetime) -> None:
        reading = ts.latest
        assert reading is not None
        if not self.dispensing(ts.tank.number):
            found = ts.detector.observe(StockPoint(now, reading.volume_l, ts.sold))
            if found is not None:
                ts.pending.append(found)
        while ts.pending:
            found = ts.pending[0]
            await self.ledger.write(
                self.store.record_delivery, tank=ts.tank.number, grade=ts.tank.grade,
                started_at=found.start.at, ended_at=found.last_rise.at,
                volume_l=found.volume.quantize(_CENT), start_volume_l=found.start.volume,
                end_volume_l=found.end.volume, sold_l=found.sold.quantize(_CENT),
            )  # fmt: skip
            ts.pending.pop(0)
            await self.ledger.publish_new()
            log.info("tank %d: delivery of %s L detected", ts.tank.number, found.volume)

    async def _close_day(self, ts: _TankState, now: datetime) -> None:
        due = now.astimezone(self.zone).date() - timedelta(days=1)
        if ts.closed_day is not None and ts.closed_day >= due:
            return
        quiet = not self.dispensing(ts.tank.number) and ts.detector.phase is Phase.QUIET
        if not quiet:
            ts.close_waiting_since = ts.close_waiting_since or now
            if now - ts.close_waiting_since < CLOSE_WAIT:
                return
            log.warning("tank %d: closing %s while fuel moves", ts.tank.number, due)
        reading = ts.latest
        assert reading is not None
        rec, event = await self.ledger.write(
            self.store.close_tank_day, reading, due, nozzles=ts.nozzles,
            tolerance=self.settings.wetstock.tolerance_for,
        )  # fmt: skip
        ts.closed_day, ts.close_waiting_since = due, None
        if event is not None:
            await self.ledger.publish_new()
        if rec is not None and rec.flagged:
            log.warning("tank %d: %s is off by %s L (tolerance %s L)", ts.tank.number, due,
                        rec.variance_l, rec.tolerance_l)  # fmt: skip

    # -- what others ask ------------------------------------------------------------------------

    def gauge_online(self, gauge_id: str) -> bool:
        return self._gauges[gauge_id].online is True if gauge_id in self._gauges else False

    async def view(self) -> dict[str, Any]:
        """Every tank with its latest reading and open alerts: `GET /api/v1/tanks` and the
        answer to the cloud's `data.request` for "tanks"."""
        tanks = []
        for number in sorted(self._tanks):
            ts = self._tanks[number]
            figures: dict[str, Any] = {
                "level_mm": None, "volume_l": None, "water_mm": None, "temperature_c": None,
                "ullage_l": None, "read_at": None,
            }  # fmt: skip
            if ts.latest is not None:
                figures.update(reading_data(ts.latest, self.zone))
            tanks.append({
                "number": number,
                "grade": ts.tank.grade,
                "capacity": decimal_str(ts.tank.capacity),
                **{key: figures[key] for key in ("level_mm", "volume_l", "water_mm",
                                                 "temperature_c", "ullage_l", "read_at")},
                "alerts": [ts.alerts[kind] for kind in sorted(ts.alerts)],
                "gauge": ts.tank.gauge,
                "gauge_online": self.gauge_online(ts.tank.gauge),
            })  # fmt: skip
        return {"tanks": tanks}


def _reading(tank: Tank, values: ProbeValues, now: datetime) -> TankReading:
    volume = values.volume_l.quantize(_CENT)
    return TankReading(
        tank=tank.number,
        grade=tank.grade,
        read_at=now,
        level_mm=values.level_mm.quantize(_TENTH),
        volume_l=volume,
        ullage_l=max(tank.capacity - volume, Decimal(0)),
        water_mm=_tenths(values.water_mm),
        temperature_c=_tenths(values.temperature_c),
    )


def _tenths(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(_TENTH)


def _alert_view(data: dict[str, Any]) -> dict[str, Any]:
    """An open alert as the API lists it: its kind, since when, and its details."""
    details = {k: v for k, v in data.items() if k not in ("tank", "grade", "kind", "status", "at")}
    return {"kind": data["kind"], "since": data["at"], **details}


def _moved(new: Decimal | None, old: Decimal | None, step: Decimal) -> bool:
    if new is None or old is None:
        return new is not old
    return abs(new - old) >= step
