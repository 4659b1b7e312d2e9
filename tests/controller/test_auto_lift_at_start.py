"""An auto pump that becomes ready while a customer already holds a nozzle.

Seen in the demo station: a customer lifted a nozzle of an auto pump while the station was
still starting that pump (its start-up: totals, prices); the pump came ready showing the
nozzle up (calling) and was never authorized: ``PumpController._maybe_auto_authorize``
(edge/pump.py) returns while the pump is not ready, and nothing asks again once it is. The
customer had to hang up and lift again. A lift during start-up is a new lift, not a command
replayed after a restart: an auto pump authorizes it once it is ready (edge/pump.py,
``follow_point``), as the contract's "auto: authorize on nozzle lift" says.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from domain.equipment import Authorize, NozzleConfig, PumpConfig
from domain.fuelling import FillingEnded, NozzleUp, PointState
from edge.config import Controller
from edge.forecourt import PriceBook
from edge.hub import EventHub
from edge.ledger import Ledger
from edge.pump import PumpController
from edge.store import Store
from tests.controller.fake_point import FakePoint
from tests.helpers import wait_until

ZONE = ZoneInfo("Asia/Shanghai")


async def test_an_auto_pump_ready_with_a_nozzle_up_authorizes_it(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "station.db", zone=ZONE)
    ledger = Ledger(store, EventHub(), zone=ZONE)
    config = PumpConfig(1, "line1", (NozzleConfig(1, 1, "92"), NozzleConfig(2, 2, "95")),
                        authorize=Authorize.AUTO)
    prices = PriceBook({"92": Decimal("7.50"), "95": Decimal("8.02")}, "ps-1")
    holder: list[PumpController] = []
    point = FakePoint(1, lambda event: holder[0].handle(event))
    pump = PumpController(config, point, ledger, prices, clock=lambda: datetime.now(UTC),
                          on_change=lambda _: None,
                          policy=Controller(lift_timeout=timedelta(seconds=30)))
    holder.append(pump)
    task = asyncio.get_running_loop().create_task(pump.run())
    try:
        # The pump comes online with the nozzle already up, as a driver tells it.
        point.come_online(PointState.CALLING)
        point.emit(NozzleUp(1, 1, Decimal("7.50")))
        await wait_until(lambda: pump.ready, what="the pump ready")
        await wait_until(lambda: point.authorized is not None, timeout=5,
                         what="the lifted nozzle authorized")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        ledger.close()
        store.close()


async def test_an_auto_pump_does_not_authorize_again_a_nozzle_still_up_after_its_sale(
        tmp_path: Path) -> None:
    """The customer who just filled may hold the nozzle a moment longer: no new sale."""
    store = Store.open(tmp_path / "station.db", zone=ZONE)
    ledger = Ledger(store, EventHub(), zone=ZONE)
    config = PumpConfig(1, "line1", (NozzleConfig(1, 1, "92"), NozzleConfig(2, 2, "95")),
                        authorize=Authorize.AUTO)
    prices = PriceBook({"92": Decimal("7.50"), "95": Decimal("8.02")}, "ps-1")
    holder: list[PumpController] = []
    point = FakePoint(1, lambda event: holder[0].handle(event))
    pump = PumpController(config, point, ledger, prices, clock=lambda: datetime.now(UTC),
                          on_change=lambda _: None,
                          # A fake pump fills in no time: not impossible figures here.
                          policy=Controller(lift_timeout=timedelta(seconds=30),
                                            max_flow_lpm=Decimal(10**9)))
    holder.append(pump)
    task = asyncio.get_running_loop().create_task(pump.run())
    try:
        point.come_online(PointState.IDLE)
        await wait_until(lambda: pump.ready, what="the pump ready")
        point.lift(1)  # auto: authorized on the lift
        await wait_until(lambda: point.authorized is not None, what="the lift authorized")
        point.fill(1, Decimal("3.00"), end=False)
        point.authorized = None
        point.emit(FillingEnded(1, 1))
        point.set_state(PointState.CALLING)  # filling over, nozzle still in the hand
        await wait_until(lambda: store.sales(), what="the sale")
        await wait_until(lambda: pump.state.value == "calling", what="the pump calling again")
        async def nothing() -> None:
            return None

        await pump.call(nothing)  # after every job queued so far (an auto-authorize included)
        assert point.calls.count("authorize") == 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        ledger.close()
        store.close()
