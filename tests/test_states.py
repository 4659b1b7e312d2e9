"""The state tables: the docs are generated from them, and the key paths hold."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from domain import states
from domain.states import (
    AuthorizationSignal,
    AuthorizationState,
    FuellingPoint,
    InvalidTransition,
    PumpSignal,
    authorization_next,
    fuelling_point_next,
)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "state-machines.md"


def test_docs_show_the_tables_as_they_are() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        states._main()
    assert out.getvalue() in DOCS.read_text("utf-8"), "regenerate: python -m domain.states"


def test_a_whole_sale_walks_the_fuelling_point() -> None:
    state = FuellingPoint.OFFLINE
    for signal in (PumpSignal.ONLINE, PumpSignal.READY, PumpSignal.POINT_CALLING,
                   PumpSignal.POINT_AUTHORIZED, PumpSignal.POINT_FUELLING,
                   PumpSignal.FILLING_ENDED, PumpSignal.POINT_IDLE, PumpSignal.SALE_SETTLED):
        state = fuelling_point_next(state, signal)
    assert state is FuellingPoint.IDLE


@pytest.mark.parametrize("state", [s for s in FuellingPoint if s is not FuellingPoint.OFFLINE])
def test_every_online_state_can_go_offline(state: FuellingPoint) -> None:
    assert fuelling_point_next(state, PumpSignal.OFFLINE) is FuellingPoint.OFFLINE


def test_an_offline_pump_only_comes_back_through_online() -> None:
    # What a pump says before it announced itself is not news; readiness needs a start-up.
    assert fuelling_point_next(FuellingPoint.OFFLINE, PumpSignal.POINT_FUELLING) is \
        FuellingPoint.OFFLINE
    with pytest.raises(InvalidTransition):
        fuelling_point_next(FuellingPoint.OFFLINE, PumpSignal.READY)
    assert fuelling_point_next(FuellingPoint.OFFLINE, PumpSignal.ONLINE) is \
        FuellingPoint.NOT_PROGRAMMED


def test_a_completing_pump_is_not_idle_until_its_sale_is_settled() -> None:
    for signal in (PumpSignal.POINT_IDLE, PumpSignal.POINT_CALLING, PumpSignal.FILLING_ENDED):
        assert fuelling_point_next(FuellingPoint.COMPLETING, signal) is FuellingPoint.COMPLETING
    assert fuelling_point_next(FuellingPoint.COMPLETING, PumpSignal.SALE_SETTLED) is \
        FuellingPoint.IDLE


def test_nothing_is_sold_before_start_up_is_done() -> None:
    for signal in (PumpSignal.POINT_IDLE, PumpSignal.POINT_AUTHORIZED,
                   PumpSignal.POINT_FUELLING):
        assert fuelling_point_next(FuellingPoint.NOT_PROGRAMMED, signal) is \
            FuellingPoint.NOT_PROGRAMMED
    with pytest.raises(InvalidTransition):
        fuelling_point_next(FuellingPoint.IDLE, PumpSignal.READY)


def test_leaving_fuelling_for_idle_is_the_end_of_the_filling() -> None:
    assert fuelling_point_next(FuellingPoint.FUELLING, PumpSignal.POINT_IDLE) is \
        FuellingPoint.COMPLETING
    assert fuelling_point_next(FuellingPoint.AUTHORIZED, PumpSignal.POINT_IDLE) is \
        FuellingPoint.IDLE  # withdrawn before any fuel


def test_authorization_lifecycle() -> None:
    a = AuthorizationState.REQUESTED
    a = authorization_next(a, AuthorizationSignal.CONFIRMED)
    a = authorization_next(a, AuthorizationSignal.FLOW_STARTED)
    assert authorization_next(a, AuthorizationSignal.SALE_RECORDED) is AuthorizationState.COMPLETED
    with pytest.raises(InvalidTransition):
        authorization_next(AuthorizationState.FUELLING, AuthorizationSignal.CANCEL)
    with pytest.raises(InvalidTransition):
        authorization_next(AuthorizationState.COMPLETED, AuthorizationSignal.CONFIRMED)
