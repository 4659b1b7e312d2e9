"""The state tables: the docs are generated from them, and the key paths hold."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from domain.states import (
    AuthorizationSignal,
    AuthorizationState,
    FuellingPoint,
    InvalidTransition,
    PumpSignal,
    authorization_next,
    fuelling_point_next,
)
from domain import states

DOCS = Path(__file__).resolve().parents[1] / "docs" / "state-machines.md"


def test_docs_show_the_tables_as_they_are() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        states._main()
    assert out.getvalue() in DOCS.read_text("utf-8"), "regenerate: python -m domain.states"


def test_a_whole_sale_walks_the_fuelling_point() -> None:
    state = FuellingPoint.OFFLINE
    for signal in (PumpSignal.ONLINE, PumpSignal.READY, PumpSignal.NOZZLE_OUT,
                   PumpSignal.AUTHORIZED, PumpSignal.FILLING, PumpSignal.NOZZLE_IN,
                   PumpSignal.FILLING_ENDED, PumpSignal.SALE_SETTLED):
        state = fuelling_point_next(state, signal)
    assert state is FuellingPoint.IDLE


@pytest.mark.parametrize("state", [s for s in FuellingPoint if s is not FuellingPoint.OFFLINE])
def test_every_online_state_can_go_offline(state: FuellingPoint) -> None:
    assert fuelling_point_next(state, PumpSignal.OFFLINE) is FuellingPoint.OFFLINE


def test_an_offline_pump_only_comes_back_through_online() -> None:
    with pytest.raises(InvalidTransition):
        fuelling_point_next(FuellingPoint.OFFLINE, PumpSignal.FILLING)


def test_a_completing_pump_is_not_idle_until_its_sale_is_settled() -> None:
    assert fuelling_point_next(FuellingPoint.COMPLETING, PumpSignal.READY) is \
        FuellingPoint.COMPLETING


def test_authorization_lifecycle() -> None:
    a = AuthorizationState.REQUESTED
    a = authorization_next(a, AuthorizationSignal.CONFIRMED)
    a = authorization_next(a, AuthorizationSignal.FLOW_STARTED)
    assert authorization_next(a, AuthorizationSignal.SALE_RECORDED) is AuthorizationState.COMPLETED
    with pytest.raises(InvalidTransition):
        authorization_next(AuthorizationState.FUELLING, AuthorizationSignal.CANCEL)
    with pytest.raises(InvalidTransition):
        authorization_next(AuthorizationState.COMPLETED, AuthorizationSignal.CONFIRMED)
