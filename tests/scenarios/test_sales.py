"""The sale scenarios, written once against the neutral fuelling point (``domain.fuelling``).

Each runs against every driver + simulator pair (conftest.py): the pump is driven only through
``FuellingPoint`` operations and its events, the customer through the simulator's nozzles, and
what the pump reports is compared with what really left the nozzle.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from domain.fuelling import (
    FillingEnded,
    FinishedSale,
    NotSupported,
    NozzleUp,
    PointEvent,
    PointOffline,
    PointOnline,
    PointRestarted,
    PointState,
    PointUnreachable,
    StateChanged,
    Totals,
)
from domain.model import Preset, Sale, TotalsReading
from domain.units import step
from edge.recovery import Ledgerside, RecoveredSale, RecoveryPlan, plan_recovery
from tests.scenarios.rig import Fill, Rig, Session

PUMP = 1


async def _sale(session: Session, rig: Rig, logical: int, preset: Preset | None, *,
                hang_at: Decimal | None = None) -> tuple[FinishedSale, Fill, Decimal]:
    """Authorize, fill, end; the pump's finished sale, the real fill, the totals delta."""
    point = session.point(PUMP)
    before = await point.read_totals(logical)
    mark = session.mark()
    await point.authorize(frozenset({logical}), preset)
    assert point.state in (PointState.AUTHORIZED, PointState.STARTED, PointState.FUELLING)
    fills = len(rig.fills(PUMP))
    rig.lift(PUMP, logical)
    if hang_at is not None:
        await session.until(lambda: rig.dispensed(PUMP) >= hang_at, what=f"{hang_at} L")
        rig.hang(PUMP, logical)
    await session.wait(FillingEnded, pump=PUMP, after=mark)
    if hang_at is None:
        rig.hang(PUMP, logical)
    await session.until(lambda: len(rig.fills(PUMP)) > fills, what="the fill recorded")
    fill = rig.fills(PUMP)[-1]
    sales = await point.read_sales()
    assert sales, "the pump holds no finished sale"
    finished = sales[-1]
    after = await point.read_totals(logical)
    await point.clear_sale(finished)
    return finished, fill, after.volume - before.volume


def _matches(finished: FinishedSale, fill: Fill, delta: Decimal, rig: Rig) -> None:
    assert (finished.volume, finished.amount) == (fill.volume, fill.amount)
    assert finished.logical in (None, fill.logical)
    assert delta == fill.volume  # the totals counted what left the nozzle
    price = rig.prices[fill.logical]
    assert abs(fill.amount - fill.volume * price) <= price * step(3) * 10 + Decimal("0.005")


@pytest.mark.sample
async def test_preset_amount(rig: Rig, session: Session) -> None:
    finished, fill, delta = await _sale(session, rig, 1, Preset("amount", Decimal("10.00")))
    assert fill.amount == Decimal("10.00")
    _matches(finished, fill, delta, rig)


async def test_preset_volume(rig: Rig, session: Session) -> None:
    finished, fill, delta = await _sale(session, rig, 2, Preset("volume", Decimal("2.00")))
    assert fill.volume == Decimal("2.00")
    _matches(finished, fill, delta, rig)


async def test_fill_up_without_a_preset(rig: Rig, session: Session) -> None:
    finished, fill, delta = await _sale(session, rig, 1, None, hang_at=Decimal("1.5"))
    assert fill.volume >= Decimal("1.5")
    _matches(finished, fill, delta, rig)


async def test_early_hang_up(rig: Rig, session: Session) -> None:
    finished, fill, delta = await _sale(session, rig, 1, Preset("volume", Decimal("20.00")),
                                        hang_at=Decimal("1.0"))
    assert Decimal("1.0") <= fill.volume < Decimal("20.00")
    _matches(finished, fill, delta, rig)


async def test_two_identical_sales_are_two_sales(rig: Rig, session: Session) -> None:
    first = await _sale(session, rig, 1, Preset("volume", Decimal("1.00")))
    second = await _sale(session, rig, 1, Preset("volume", Decimal("1.00")))
    for finished, fill, delta in (first, second):
        _matches(finished, fill, delta, rig)
    assert len(rig.fills(PUMP)) == 2
    if first[0].key is not None:
        assert first[0].key != second[0].key


async def test_stop_while_fuelling_ends_the_filling(rig: Rig, session: Session) -> None:
    point = session.point(PUMP)
    mark = session.mark()
    await point.authorize(frozenset({1}), Preset("volume", Decimal("30.00")))
    rig.lift(PUMP, 1)
    await session.until(lambda: rig.dispensed(PUMP) >= Decimal("0.5"), what="fuel flowing")
    await point.stop()
    # A pump ends the filling at stop (DART, IFSF), or holds it stopped until the nozzle is
    # hung up (Gilbarco: an authorization would resume it).
    await session.wait(PointEvent, pump=PUMP, after=mark, where=lambda e: isinstance(
        e, FillingEnded) or (isinstance(e, StateChanged) and e.state is PointState.STOPPED))
    rig.hang(PUMP, 1)
    ended = await session.wait(FillingEnded, pump=PUMP, after=mark)
    assert ended.logical in (None, 1)
    await session.until(lambda: len(rig.fills(PUMP)) == 1, what="the fill recorded")
    (fill,) = rig.fills(PUMP)
    assert fill.volume < Decimal("30.00")
    finished = (await point.read_sales())[-1]
    assert (finished.volume, finished.amount) == (fill.volume, fill.amount)


async def test_stop_before_the_lift_withdraws_the_authorization(rig: Rig,
                                                                 session: Session) -> None:
    point = session.point(PUMP)
    await point.authorize(frozenset({1}), None)
    mark = session.mark()
    await point.stop()
    await session.wait(StateChanged, pump=PUMP, after=mark,
                       where=lambda e: e.state in (PointState.IDLE, PointState.CALLING,
                                                   PointState.STOPPED, PointState.CLOSED))
    assert rig.fills(PUMP) == []
    # A pump that leaves it stopped takes the next authorization once opened again.
    if point.state in (PointState.STOPPED, PointState.CLOSED):
        await point.open()
    await point.authorize(frozenset({1}), Preset("volume", Decimal("1.00")))


async def test_suspend_and_resume(rig: Rig, session: Session) -> None:
    point = session.point(PUMP)
    await point.authorize(frozenset({1}), Preset("volume", Decimal("3.00")))
    rig.lift(PUMP, 1)
    await session.until(lambda: rig.dispensed(PUMP) >= Decimal("0.3"), what="fuel flowing")
    if not point.capabilities.suspend:
        with pytest.raises(NotSupported):
            await point.suspend()
        return
    mark = session.mark()
    await point.suspend()
    await session.wait(StateChanged, pump=PUMP, after=mark,
                       where=lambda e: e.state is PointState.SUSPENDED)
    paused = rig.dispensed(PUMP)
    await asyncio.sleep(0.3)  # the simulator's flow would add 3 L in this time
    assert rig.dispensed(PUMP) == paused
    await point.resume()
    await session.wait(FillingEnded, pump=PUMP, after=mark)
    rig.hang(PUMP, 1)
    await session.until(lambda: len(rig.fills(PUMP)) == 1, what="the fill recorded")
    assert rig.fills(PUMP)[0].volume == Decimal("3.00")


@pytest.mark.sample
async def test_price_change_when_idle(rig: Rig, session: Session) -> None:
    point = session.point(PUMP)
    new = {logical: price + Decimal("0.11") for logical, price in rig.prices.items()}
    await point.set_prices(new)
    rig.prices.update(new)
    mark = session.mark()
    finished, fill, delta = await _sale(session, rig, 1, Preset("volume", Decimal("2.00")))
    _matches(finished, fill, delta, rig)
    lifted = await session.wait(NozzleUp, pump=PUMP, after=mark)
    if lifted.price is not None:
        assert lifted.price == new[1]


async def test_offline_and_back(rig: Rig, session: Session) -> None:
    point = session.point(PUMP)
    mark = session.mark()
    rig.silence(PUMP, True)
    await session.wait(PointOffline, pump=PUMP, after=mark)
    assert not point.online
    with pytest.raises(PointUnreachable):
        await point.authorize(frozenset({1}), None)
    if not rig.shares_link:
        assert session.point(2).online  # the other pump is unaffected
    back = session.mark()
    rig.silence(PUMP, False)
    await session.wait(PointOnline, pump=PUMP, after=back)
    await point.set_prices(rig.prices)
    finished, fill, delta = await _sale(session, rig, 1, Preset("volume", Decimal("1.00")))
    _matches(finished, fill, delta, rig)


@pytest.mark.sample
async def test_a_controller_killed_mid_fill_recovers_the_sale_once(rig: Rig,
                                                                   session: Session) -> None:
    """The line is dropped mid-fill (as by kill -9); a new line reads the pump back, and the
    start-up planner finds the sale with two agreeing witnesses: exactly one sale. Killed
    again after the sale was written but before the pump was told (a buffer not cleared yet),
    the next start-up finds nothing new: the sale is recorded once."""
    point = session.point(PUMP)
    totals = {n.logical: await point.read_totals(n.logical) for n in rig.pumps()[0].nozzles}
    await point.authorize(frozenset({1}), Preset("volume", Decimal("2.00")))
    rig.lift(PUMP, 1)
    await session.until(lambda: rig.dispensed(PUMP) >= Decimal("0.3"), what="fuel flowing")
    await session.__aexit__(None, None, None)  # the controller dies; the pump fills on
    await session_idle(rig)
    rig.hang(PUMP, 1)
    (fill,) = rig.fills(PUMP)
    async with Session(rig) as again:
        await again.online(PUMP)
        plan = await _plan_recovery(again, rig, totals)
        if plan.sales:
            # Written (as the controller does), the pump not told yet; the start-up after the
            # next restart reads the same pump again.
            (written,) = plan.sales
            after = dict(totals)
            after[written.logical] = Totals(written.logical, written.after.volume_total,
                                            written.after.amount_total)
            again_plan = await _plan_recovery(again, rig, after, recorded=_written(written))
            assert (again_plan.sales, again_plan.reviews) == ([], [])
            if written.filling.key is not None:
                assert [f.key for f in again_plan.recorded] == [written.filling.key]
    if rig.counters_shared:
        # Every counter answers the pump-wide sum: both nozzles moved by the filling, and a
        # filling the pump does not attribute matches both. No witness says which nozzle
        # sold it: two reviews for a person, never a guessed sale.
        assert plan.sales == []
        assert sorted(r.logical for r in plan.reviews) == [1, 2]
        return
    assert [(s.logical, s.filling.volume, s.filling.amount) for s in plan.sales] == [
        (1, fill.volume, fill.amount)]
    assert plan.reviews == []


@pytest.mark.sample
async def test_a_pump_that_loses_power_mid_fill_sells_what_it_measured_once(
        rig: Rig, session: Session) -> None:
    """The pump loses power mid-fill and comes back, the filling ended where it was. Either the
    pump tells the filling ended (the controller settles it as any other), or it tells that it
    restarted or went away (the controller recovers it from the pump's own figures at start-up):
    either way the fuel that left the nozzle is one sale, and the pump sells on."""
    point = session.point(PUMP)
    totals = {n.logical: await point.read_totals(n.logical) for n in rig.pumps()[0].nozzles}
    await point.authorize(frozenset({1}), Preset("volume", Decimal("20.00")))
    rig.lift(PUMP, 1)
    await session.until(lambda: rig.dispensed(PUMP) >= Decimal("0.5"), what="fuel flowing")
    mark = session.mark()
    rig.power_cycle(PUMP)
    await session.until(lambda: len(rig.fills(PUMP)) == 1, what="the filling cut short")
    (fill,) = rig.fills(PUMP)
    assert Decimal("0.5") <= fill.volume < Decimal("20.00")
    told = await session.wait(PointEvent, pump=PUMP, after=mark, where=lambda e: isinstance(
        e, FillingEnded | PointRestarted | PointOffline))
    rig.hang(PUMP, 1)
    if isinstance(told, FillingEnded):
        finished = (await point.read_sales())[-1]
        after = await point.read_totals(1)
        _matches(finished, fill, after.volume - totals[1].volume, rig)
        await point.clear_sale(finished)
    else:
        if isinstance(told, PointOffline):
            await session.wait(PointOnline, pump=PUMP, after=mark)
        await session.until(lambda: point.online, what="the pump back")
        plan = await _plan_recovery(session, rig, totals)
        if rig.counters_shared:
            assert plan.sales == [] and sorted(r.logical for r in plan.reviews) == [1, 2]
        else:
            assert [(s.logical, s.filling.volume, s.filling.amount) for s in plan.sales] == [
                (1, fill.volume, fill.amount)]
            assert plan.reviews == []
        for recovered in plan.sales:
            await point.clear_sale(recovered.filling)
    await point.set_prices(rig.prices)
    finished, fill, delta = await _sale(session, rig, 1, Preset("volume", Decimal("1.00")))
    _matches(finished, fill, delta, rig)


async def _plan_recovery(session: Session, rig: Rig, totals: dict[int, Totals], *,
                         recorded: Sale | None = None) -> RecoveryPlan:
    """What the controller's start-up would record, the ledger holding ``totals`` as the last
    reading of each nozzle and ``recorded`` as the pump's last sale."""
    config = rig.pumps()[0]
    readings = {n.number: TotalsReading(PUMP, n.number, totals[n.logical].volume,
                                        totals[n.logical].amount or Decimal(0), _now(), "start")
                for n in config.nozzles}

    async def last_totals(nozzle: int) -> TotalsReading | None:
        return readings[nozzle]

    async def last_sale() -> Sale | None:
        return recorded

    async def sale_by_key(key: str) -> Sale | None:
        return recorded if recorded is not None and recorded.pump_key == key else None

    return await plan_recovery(session.point(PUMP), config, Ledgerside(
        last_totals=last_totals, last_sale=last_sale, sale_by_key=sale_by_key),
        active=[], now=_now, tolerance_steps=1, volume_decimals=config.decimals.volume)


def _written(recovered: RecoveredSale) -> Sale:
    """The sale the controller writes for a recovered filling."""
    filling = recovered.filling
    return Sale(id="S-1", seq=1, pump=PUMP, nozzle=recovered.after.nozzle,
                logical=recovered.logical, grade="92", price=filling.price or Decimal(0),
                volume=filling.volume, amount=filling.amount, price_set_id=None,
                started_at=None, ended_at=_now(), authorization_id=None, order_id=None,
                recovered=True, totals_volume_before=recovered.before.volume_total,
                totals_volume_after=recovered.after.volume_total,
                totals_amount_before=recovered.before.amount_total,
                totals_amount_after=recovered.after.amount_total, payments=(),
                pump_key=filling.key)


async def session_idle(rig: Rig) -> None:
    """Until the simulator's filling has reached the preset (no controller watches now)."""
    for _ in range(400):
        if rig.dispensed(PUMP) >= Decimal("2.00") or rig.fills(PUMP):
            return
        await asyncio.sleep(0.025)
    raise AssertionError("the preset was never reached")


def _now() -> datetime:
    return datetime.now(UTC)
