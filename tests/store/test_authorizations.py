from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from domain.model import Preset
from domain.states import AuthorizationState
from edge.store import Store, UnknownAuthorization

from .conftest import T0, FakeClock


def test_an_authorization_starts_requested_and_reads_back(store: Store) -> None:
    auth = store.create_authorization(
        pump=2, nozzle=5, preset=Preset("volume", Decimal("20.00")), source="order",
        order_id="o-1",
    )  # fmt: skip
    assert auth.state == "requested"
    assert (auth.pump, auth.nozzle, auth.source, auth.order_id) == (2, 5, "order", "o-1")
    assert auth.preset == Preset("volume", Decimal("20.00"))
    assert auth.created_at == auth.updated_at == T0
    assert store.get_authorization(auth.id) == auth
    assert store.get_authorization("nope") is None


def test_states_are_recorded_and_active_ones_listed(store: Store, clock: FakeClock) -> None:
    first = store.create_authorization(pump=1, nozzle=None, preset=None, source="attendant",
                                       user="li")  # fmt: skip
    second = store.create_authorization(pump=2, nozzle=3, preset=None, source="auto")
    third = store.create_authorization(pump=3, nozzle=4, preset=None, source="auto")
    clock.advance(timedelta(seconds=3))
    store.set_authorization_state(first.id, AuthorizationState.AUTHORIZED)
    store.set_authorization_state(second.id, AuthorizationState.FUELLING)
    refused = store.set_authorization_state(third.id, AuthorizationState.FAILED,
                                            reason="nozzle_busy")
    assert (refused.state, refused.reason) == (AuthorizationState.FAILED, "nozzle_busy")
    assert type(refused.state) is AuthorizationState  # the enum from the model to the store
    assert refused.updated_at == T0 + timedelta(seconds=3)
    assert [(a.id, a.state) for a in store.active_authorizations()] == [
        (first.id, "authorized"),
        (second.id, "fuelling"),
    ]


def test_bad_authorizations_are_refused(store: Store) -> None:
    with pytest.raises(ValueError):
        store.create_authorization(pump=1, nozzle=1, preset=None, source="anyone")
    with pytest.raises(UnknownAuthorization):
        store.set_authorization_state("nope", AuthorizationState.AUTHORIZED)
    first = store.create_authorization(pump=1, nozzle=1, preset=None, source="auto")
    with pytest.raises(ValueError):  # not a state of the lifecycle
        store.set_authorization_state(first.id, "rejected")  # type: ignore[arg-type]
