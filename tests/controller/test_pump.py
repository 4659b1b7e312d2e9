"""The pump controller against a fuelling point in memory (tests/controller/fake_point.py).

The store is a real SQLite file and the ledger the daemon's own: only the pump is fake, so
each rule of the controller is tested without a line, a simulator or a clock of minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from domain.equipment import NozzleConfig, PumpConfig
from domain.errors import NozzleBusy, PumpNotReady, PumpOutOfService, PumpStopped
from domain.fuelling import Capabilities, Decimals, FillingEnded, FinishedSale, PointState
from domain.model import Preset, TotalsReading
from domain.states import FuellingPoint as FP
from domain.states import InvalidTransition, PumpSignal
from edge.config import Controller
from edge.forecourt import PriceBook
from edge.hub import EventHub
from edge.ledger import Ledger
from edge.pump import PumpController
from edge.store import Store
from tests.controller.fake_point import FakePoint
from tests.helpers import wait_until

ZONE = ZoneInfo("Asia/Shanghai")


@dataclass
class Rig:
    pump: PumpController
    point: FakePoint
    store: Store

    def events(self, type_: str) -> list[dict[str, object]]:
        return [e.data for e in self.store.events_since(0, 1000) if e.type == type_]


def _now() -> datetime:
    return datetime.now(UTC)


@contextlib.asynccontextmanager
async def _rig(tmp_path: Path, *, capabilities: Capabilities | None = None,
               policy: Controller | None = None,
               readings: dict[int, Decimal] | None = None) -> AsyncIterator[Rig]:
    store = Store.open(tmp_path / "station.db", zone=ZONE)
    for nozzle, volume in (readings or {}).items():
        store.record_totals(TotalsReading(1, nozzle, volume, volume * 7, _now(), "sale"))
    ledger = Ledger(store, EventHub(), zone=ZONE)
    config = PumpConfig(1, "line1", (NozzleConfig(1, 1, "92"), NozzleConfig(2, 2, "95")))
    prices = PriceBook({"92": Decimal("7.50"), "95": Decimal("8.02")}, "ps-1")
    holder: list[PumpController] = []
    point = FakePoint(1, lambda event: holder[0].handle(event))
    if capabilities is not None:
        point.capabilities = capabilities
    pump = PumpController(config, point, ledger, prices, clock=_now, on_change=lambda _: None,
                          policy=policy or Controller(lift_timeout=timedelta(seconds=30)))
    holder.append(pump)
    task = asyncio.get_running_loop().create_task(pump.run())
    try:
        yield Rig(pump, point, store)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        ledger.close()
        store.close()


async def _ready(rig: Rig, state: PointState = PointState.IDLE) -> None:
    rig.point.come_online(state)
    await wait_until(lambda: rig.pump.ready, what="the pump ready")


async def test_start_up_reads_totals_programs_prices_and_gets_ready(tmp_path: Path) -> None:
    async with _rig(tmp_path) as rig:
        await _ready(rig)
        assert rig.pump.state is FP.IDLE
        assert rig.point.prices == {1: Decimal("7.50"), 2: Decimal("8.02")}
        baseline = rig.store.last_totals(1, 1)
        assert baseline is not None and baseline.source == "baseline"


async def test_a_totals_jump_with_an_agreeing_filling_is_recovered_once(tmp_path: Path) -> None:
    async with _rig(tmp_path, readings={1: Decimal("1000.00"), 2: Decimal("2000.00")}) as rig:
        rig.point.totals[1] += Decimal("3.00")  # while nothing recorded it
        rig.point.sales.append(_finished(1, "3.00"))
        await _ready(rig)
        (sale,) = rig.store.sales()
        assert (sale.volume, sale.recovered) == (Decimal("3.00"), True)
        assert rig.store.list_reviews() == []


async def test_a_totals_jump_without_a_filling_is_a_review_not_a_sale(tmp_path: Path) -> None:
    async with _rig(tmp_path, readings={1: Decimal("1000.00"), 2: Decimal("2000.00")}) as rig:
        rig.point.totals[2] += Decimal("2.000")  # a pump-wide counter, a board swap...
        await _ready(rig)
        assert rig.store.sales() == []
        (review,) = rig.store.list_reviews()
        assert (review.nozzle, review.kind, review.volume_delta) == (2, "one_witness",
                                                                     Decimal("2.000"))
        kinds = {d["kind"] for d in rig.events("reconciliation.discrepancy")}
        assert "recovery_needs_review" in kinds


async def test_witnesses_that_disagree_are_a_review(tmp_path: Path) -> None:
    async with _rig(tmp_path, readings={1: Decimal("1000.00"), 2: Decimal("2000.00")}) as rig:
        rig.point.totals[1] += Decimal("5.00")
        rig.point.sales.append(_finished(1, "3.00"))
        await _ready(rig)
        assert rig.store.sales() == []
        (review,) = rig.store.list_reviews()
        assert review.kind == "witnesses_disagree"
        assert review.filling == {"volume": "3.00", "amount": "22.50", "price": "7.50"}


async def test_a_live_sale_is_recorded_with_its_totals(tmp_path: Path) -> None:
    async with _rig(tmp_path) as rig:
        await _ready(rig)
        auth = await rig.pump.authorize(1, Preset("volume", Decimal("2.00")), source="attendant",
                                        user="li")
        rig.point.lift(1)
        rig.point.fill(1, Decimal("2.00"))
        await wait_until(lambda: rig.store.sales(), what="the sale")
        (sale,) = rig.store.sales()
        assert (sale.volume, sale.authorization_id) == (Decimal("2.00"), auth.id)
        assert sale.totals_volume_after - (sale.totals_volume_before or 0) == Decimal("2.00")
        assert "clear_sale" in rig.point.calls
        await wait_until(lambda: rig.pump.state is FP.IDLE, what="idle again")


async def test_an_authorization_the_pump_withdraws_is_released(tmp_path: Path) -> None:
    async with _rig(tmp_path) as rig:
        await _ready(rig)
        auth = await rig.pump.authorize(1, None, source="attendant", user="li")
        await rig.pump.stop("li")  # before the lift: the pump goes back to idle
        await wait_until(lambda: getattr(rig.store.get_authorization(auth.id), "state", None)
                         == "cancelled", what="the authorization released")
        assert rig.pump.auth is None
        with pytest.raises(PumpStopped):  # held until a person resets the stop
            rig.pump.check_can_authorize(1)
        assert await rig.pump.reset_stop("li") is True
        await rig.pump.authorize(1, None, source="attendant", user="li")


async def test_an_unused_authorization_expires(tmp_path: Path) -> None:
    policy = Controller(lift_timeout=timedelta(seconds=0.2))
    async with _rig(tmp_path, policy=policy) as rig:
        await _ready(rig)
        auth = await rig.pump.authorize(1, None, source="attendant", user="li")
        await wait_until(lambda: getattr(rig.store.get_authorization(auth.id), "state", None)
                         == "expired", what="the authorization expired")
        assert rig.pump.auth is None
        assert "cancel" in rig.point.calls


async def test_a_wrong_price_at_the_lift_stops_the_pump(tmp_path: Path) -> None:
    caps = Capabilities(nozzles=frozenset(range(1, 9)), price_readback=False)
    async with _rig(tmp_path, capabilities=caps) as rig:
        await _ready(rig)
        await rig.pump.authorize(1, None, source="attendant", user="li")
        rig.point.shown_offset = Decimal("0.10")
        rig.point.lift(1)
        await wait_until(lambda: "price_mismatch" in rig.pump.alarms, what="the alarm")
        assert "stop" in rig.point.calls
        assert rig.pump.blocked
        kinds = [d["kind"] for d in rig.events("pump.alarm")]
        assert "price_mismatch" in kinds
        # Programmed again; without a read-back only the next lift proves the price.
        await wait_until(lambda: rig.pump.ready, what="programmed again")
        assert "price" in rig.pump.blocked
        rig.point.shown_offset = Decimal(0)
        rig.point.end(1)
        rig.point.lift(1)
        await wait_until(lambda: not rig.pump.blocked, what="unblocked by a right price")
        await wait_until(lambda: "price_mismatch" not in rig.pump.alarms, what="alarm cleared")


async def test_a_pump_with_other_decimals_is_blocked(tmp_path: Path) -> None:
    caps = Capabilities(nozzles=frozenset(range(1, 9)), decimals=Decimals(3, 2, 3))
    async with _rig(tmp_path, capabilities=caps) as rig:
        await _ready(rig)
        assert "decimals" in rig.pump.blocked
        with pytest.raises(PumpNotReady):
            rig.pump.check_can_authorize(1)
        assert "decimals_mismatch" in rig.pump.alarms


async def test_impossible_figures_take_the_pump_out_of_service(tmp_path: Path) -> None:
    async with _rig(tmp_path) as rig:
        await _ready(rig)
        await rig.pump.authorize(1, Preset("volume", Decimal("1.00")), source="attendant",
                                 user="li")
        rig.point.lift(1)
        rig.point.fill(1, Decimal("1.00"), report=Decimal("999999.99"))
        await wait_until(lambda: rig.store.sales(), what="the sale")
        (sale,) = rig.store.sales()
        assert sale.volume == Decimal("999999.99") and "impossible_figures" in sale.flags
        await wait_until(lambda: rig.pump.out_of_service is not None, what="out of service")
        with pytest.raises(PumpOutOfService):
            rig.pump.check_can_authorize(1)
        assert rig.store.pumps_out_of_service()[1].reason == "impossible_figures"


async def test_a_sale_that_cannot_be_read_is_asked_again(tmp_path: Path) -> None:
    async with _rig(tmp_path) as rig:
        await _ready(rig)
        await rig.pump.authorize(1, None, source="attendant", user="li")
        rig.point.fail_reads = 2
        rig.point.lift(1)
        rig.point.fill(1, Decimal("4.00"))
        await wait_until(lambda: rig.store.sales(), timeout=20, what="the sale after retries")
        after = rig.point.calls[rig.point.calls.index("authorize"):]
        assert after.count("read_sales") == 3  # twice no answer, then the sale


async def test_the_table_refuses_a_signal_it_does_not_allow(tmp_path: Path) -> None:
    async with _rig(tmp_path) as rig:
        await _ready(rig)
        with pytest.raises(InvalidTransition):
            rig.pump.signal(PumpSignal.SALE_SETTLED)  # idle: nothing to settle


async def test_a_busy_pump_refuses_another_authorization(tmp_path: Path) -> None:
    async with _rig(tmp_path) as rig:
        await _ready(rig)
        await rig.pump.authorize(1, None, source="attendant", user="li")
        with pytest.raises(NozzleBusy):
            rig.pump.check_can_authorize(2)


def _finished(logical: int, volume: str) -> FinishedSale:
    v = Decimal(volume)
    return FinishedSale(logical, v, (v * Decimal("7.50")).quantize(Decimal("0.01")),
                        Decimal("7.50"))


async def test_a_filling_whose_end_comes_after_the_idle_state_keeps_its_authorization(
        tmp_path: Path) -> None:
    """A driver may tell the pump idle before the filling's end (IFSF messages in either
    order): the authorization was used, and the sale carries it."""
    async with _rig(tmp_path) as rig:
        await _ready(rig)
        auth = await rig.pump.authorize(1, None, source="attendant", user="li")
        point = rig.point
        point.lift(1)
        point.totals[1] += Decimal("2.00")
        point.sales.append(_finished(1, "2.00"))
        point.set_state(PointState.IDLE)  # idle first, before any fuelling was told
        point.emit(FillingEnded(1, 1))
        await wait_until(lambda: rig.store.sales(), what="the sale")
        (sale,) = rig.store.sales()
        assert sale.authorization_id == auth.id
        assert "no_authorization" not in {d["kind"] for d in
                                         rig.events("reconciliation.discrepancy")}


async def test_a_wall_clock_step_during_a_filling_does_not_make_it_impossible(
        tmp_path: Path) -> None:
    """The maximum-flow check times the filling on the monotonic clock: an NTP step back in
    the middle of it (seen in the chaos run) is no reason to take the pump out of service."""
    async with _rig(tmp_path, policy=Controller(max_flow_lpm=Decimal(600))) as rig:
        await _ready(rig)
        stepped = False
        rig.pump._clock = lambda: _now() - (timedelta(hours=1) if stepped else timedelta(0))
        seconds = [1000.0]
        rig.pump.monotonic = lambda: seconds[0]
        await rig.pump.authorize(1, None, source="attendant", user="li")
        rig.point.lift(1)
        rig.point.fill(1, Decimal("1.00"), end=False)  # fuel seen flowing now
        seconds[0] += 0.2  # 0.2 s at 600 L/min is 2 L: 1 L is possible
        stepped = True  # the wall clock goes back an hour
        rig.point.end(1)
        await wait_until(lambda: rig.store.sales(), what="the sale")
        (sale,) = rig.store.sales()
        assert "impossible_figures" not in sale.flags
        assert rig.pump.out_of_service is None
