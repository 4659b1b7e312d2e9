"""A nozzle taken while its fuelling point is closed (before the controller opened it, or
after a power cut): opened, the point calls. Before, it sat Idle with a nozzle up, and the
customer's lift was never seen (the demo's customers who arrived before the station)."""

from __future__ import annotations

from drivers.ifsf.ids import FpState

from .conftest import FakeClock
from .test_sim_node import US, Peer, node, states


def test_a_nozzle_up_before_the_point_is_opened_calls_once_opened(clock: FakeClock) -> None:
    peer = Peer(node(), clock)
    peer.node.controller_heard(US)
    peer.lift(1, 2)
    assert peer.node.fp(1).state is FpState.CLOSED
    out = peer.open(1)
    assert states(out)[-1] is FpState.CALLING
    assert peer.node.fp(1).state is FpState.CALLING
    peer.hang(1, 2)
    assert peer.node.fp(1).state is FpState.IDLE


def test_a_point_opened_with_its_nozzles_in_is_idle(clock: FakeClock) -> None:
    peer = Peer(node(), clock)
    peer.node.controller_heard(US)
    assert states(peer.open(1)) == [FpState.IDLE]
