"""The controller's two seams for the books, against a fuelling point in memory
(tests/controller/fake_point.py) and a real SQLite ledger: a fill the recorder claims is no
sale; the gate is asked before every authorization, and told whether the pump authorized."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from domain.accounts import AccountRefused, AccountUse
from domain.errors import PumpDidNotConfirm
from domain.fuelling import FinishedSale
from domain.model import Authorization, Preset, TotalsReading
from domain.states import AuthorizationSignal
from edge.pump import PumpController
from tests.controller.test_pump import _ready, _rig
from tests.helpers import wait_until


@dataclass
class Recorder:
    wanted: set[str] = field(default_factory=set)
    fills: list[tuple[int, Decimal, Decimal | None, Decimal]] = field(default_factory=list)

    def claims(self, auth: Authorization) -> bool:
        return auth.id in self.wanted

    async def record(self, pump: PumpController, *, logical: int, filling: FinishedSale,
                     before: TotalsReading | None, after: TotalsReading) -> None:
        self.fills.append((logical, filling.volume,
                           None if before is None else before.volume_total, after.volume_total))


@dataclass
class Ticket:
    preset: Preset | None
    events: list[str]

    async def bind(self, auth: Authorization) -> None:
        self.events.append(f"bind {auth.id}")

    async def release(self) -> None:
        self.events.append("release")


@dataclass
class Gate:
    events: list[str] = field(default_factory=list)
    refuse: bool = False

    async def admit(self, pump: PumpController, logical: int, preset: Preset | None, *,
                    source: str, user: str | None, account: AccountUse | None) -> Ticket:
        self.events.append(f"admit {logical} {account.value if account else '-'}")
        if self.refuse:
            raise AccountRefused("account_daily_fills", "今日加油次数已达上限")
        return Ticket(Preset("volume", Decimal("20.00")) if account else preset, self.events)


async def test_a_claimed_fill_goes_to_the_recorder_and_is_no_sale(tmp_path: Path) -> None:
    async with _rig(tmp_path, readings={1: Decimal("1000.00"), 2: Decimal("2000.00")}) as rig:
        await _ready(rig)
        recorder = Recorder()
        rig.pump.nonsale = recorder
        auth = await rig.pump.authorize(1, Preset("volume", Decimal("20.00")),
                                        source="attendant", user="li")
        recorder.wanted.add(auth.id)
        rig.point.fill(1, Decimal("20.00"))
        await wait_until(lambda: recorder.fills, what="the non-sale fill")
        assert recorder.fills == [(1, Decimal("20.00"), Decimal("1000.00"), Decimal("1020.00"))]
        await wait_until(lambda: rig.pump.auth is None, what="the pump free again")
        assert rig.store.sales() == []

        # The next fill, not claimed, is a sale as before.
        await rig.pump.authorize(1, None, source="attendant", user="li")
        rig.point.fill(1, Decimal("3.00"))
        await wait_until(lambda: rig.store.sales(), what="the sale")
        assert len(recorder.fills) == 1


async def test_the_gate_is_asked_first_and_told_the_outcome(tmp_path: Path) -> None:
    async with _rig(tmp_path) as rig:
        await _ready(rig)
        with pytest.raises(AccountRefused) as refused:
            await rig.pump.authorize(1, None, source="attendant", user="li",
                                     account=AccountUse("plate", "新A1", "王五"))
        assert refused.value.code == "account_unavailable"  # no books: no account sales
        gate = Gate()
        rig.pump.gate = gate
        auth = await rig.pump.authorize(1, None, source="attendant", user="li",
                                        account=AccountUse("plate", "新A1", "王五"))
        assert gate.events == ["admit 1 新A1", f"bind {auth.id}"]
        assert auth.preset == Preset("volume", Decimal("20.00"))  # the gate's preset
        await rig.pump.cancel_authorization(AuthorizationSignal.CANCEL, "test")

        gate.refuse = True
        with pytest.raises(AccountRefused):
            await rig.pump.authorize(1, None, source="attendant", user="li")
        assert rig.pump.auth is None

        # The pump does not confirm: the gate is told to release what it held.
        gate.refuse = False
        rig.point.online = False
        with pytest.raises(PumpDidNotConfirm):
            await rig.pump.authorize(1, None, source="attendant", user="li")
        assert gate.events[-2:] == ["admit 1 -", "release"]



async def test_a_nonsale_fill_that_ended_while_the_station_was_down_is_still_no_sale(
        tmp_path: Path) -> None:
    async with _rig(tmp_path, readings={1: Decimal("1000.00"), 2: Decimal("2000.00")}) as rig:
        auth = rig.store.create_authorization(pump=1, nozzle=1, preset=None,
                                              source="attendant", user="li")
        recorder = Recorder(wanted={auth.id})
        rig.pump.nonsale = recorder
        # The self-check ran and ended while nothing recorded it: the pump holds the filling.
        rig.point.totals[1] += Decimal("20.00")
        rig.point.sales.append(FinishedSale(1, Decimal("20.00"), Decimal("150.00"),
                                            Decimal("7.50")))
        await _ready(rig)
        assert recorder.fills == [(1, Decimal("20.00"), Decimal("1000.00"), Decimal("1020.00"))]
        assert rig.store.sales() == [] and rig.store.list_reviews() == []
