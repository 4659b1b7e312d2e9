"""The asyncio shell against the simulated dispensers, over real sockets on 127.0.0.1:
heartbeats by broadcast on 127.255.255.255, two one-way TCP links per node, reconnects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import pytest

from drivers.ifsf import (
    Ack,
    Answer,
    DataItem,
    FpId,
    FpState,
    FpStatus,
    FuellingPointAddress,
    IfsfCommandError,
    IfsfNetwork,
    LanEvent,
    Lna,
    NodeOffline,
    NodeOnline,
    NodeSettings,
    Received,
    TransactionAddress,
    TrId,
    UnknownNode,
)
from drivers.ifsf.messages import release_items
from simulator.ifsf import IfsfSimulator, Layout, make_nodes, run_ifsf_simulator

from .conftest import free_tcp_port, free_udp_port, wait_for

US = Lna(2, 1)
BEAT = 0.5  # seconds between heartbeats: offline after 1.5 s of silence
BROADCAST = "127.255.255.255"


class Recorder:
    """Collects the network's events in a task, so tests can wait on them."""

    def __init__(self, network: IfsfNetwork) -> None:
        self.network = network
        self.events: list[LanEvent] = []

    async def run(self) -> None:
        async for event in self.network.events():
            self.events.append(event)

    def of(self, kind: type) -> list[LanEvent]:
        return [e for e in self.events if isinstance(e, kind)]

    def states(self, node: Lna, fp: int = 1) -> list[FpState | None]:
        return [FpStatus.from_items(e.message.items).state for e in self.of(Received)
                if isinstance(e, Received) and e.node == node
                and e.message.message_id == FpId.FP_STATUS_MESSAGE
                and e.message.address == FuellingPointAddress(fp)]


@asynccontextmanager
async def lan(nodes: dict[Lna, NodeSettings], udp_port: int) -> AsyncIterator[Recorder]:
    network = IfsfNetwork(US, nodes, udp_port=udp_port, heartbeat_interval=BEAT,
                          heartbeat_destination=BROADCAST, listen=("127.0.0.1", 0))
    async with network, asyncio.TaskGroup() as group:
        recorder = Recorder(network)
        task = group.create_task(recorder.run(), name="recorder")
        try:
            yield recorder
        finally:
            task.cancel()


def heard(node: int) -> dict[Lna, NodeSettings]:
    return {Lna(1, node): NodeSettings(heartbeat_interval=BEAT, reply_timeout=2.0)}


async def online(recorder: Recorder, node: Lna, count: int = 1) -> None:
    await wait_for(lambda: len([e for e in recorder.of(NodeOnline)
                                if e.node == node]) >= count, what=f"{node} online")


@pytest.fixture
async def tqc(udp_port: int) -> AsyncIterator[IfsfSimulator]:
    nodes = make_nodes(Layout.TQC, fps=2, nozzles=2, ramp_seconds=Decimal(0),
                       flow_lpm=Decimal(600))
    async with run_ifsf_simulator(nodes, udp_port=udp_port, heartbeat_interval=BEAT,
                                  heartbeat_destination=BROADCAST) as sim:
        yield sim


async def test_found_by_heartbeat_and_a_sale(no_leaked_tasks: None, tqc: IfsfSimulator,
                                             udp_port: int) -> None:
    node = Lna(1, 1)
    async with lan(heard(1), udp_port) as recorder:
        await online(recorder, node)
        network = recorder.network
        # The dispenser announced its fuelling points when our listening port was known.
        await wait_for(lambda: FpState.CLOSED in recorder.states(node), what="status")
        for fp in (1, 2):
            ack = await network.write(node, FuellingPointAddress(fp),
                                      (DataItem(FpId.OPEN_FP),))
            assert ack.accepted
        await wait_for(lambda: recorder.states(node)[-1:] == [FpState.IDLE], what="idle")
        assert not tqc.node(1).configuration_needed
        ack = await network.write(node, FuellingPointAddress(1),
                                  release_items(US, {1}, amount=Decimal("15.00")))
        assert ack.accepted
        tqc.lift(1, 1, 1)
        await wait_for(lambda: FpState.IDLE in recorder.states(node)[-1:]
                       and len(tqc.fp(1, 1).unpaid) == 1, what="the filling")
        answers = await network.read(node, TransactionAddress(1, 0), (1, 5, 6, 7, 8))
        assert isinstance(answers[-1], Ack) and len(answers) == 2
        assert isinstance(answers[0], Answer)
        assert answers[0].value(TrId.TR_AMOUNT) == bytes.fromhex("06 00 00 15 00")
        ack = await network.write(node, TransactionAddress(1, 1),
                                  (DataItem(TrId.CLEAR_TRANSACTION),))
        assert ack.accepted and tqc.fp(1, 1).unpaid == []
        assert network.stats.links[node].timeouts == 0


async def test_heartbeat_lost_then_back(tqc: IfsfSimulator, udp_port: int) -> None:
    node = Lna(1, 1)
    async with lan(heard(1), udp_port) as recorder:
        await online(recorder, node)
        tqc.set_fault(1, heartbeat=False)
        await wait_for(lambda: recorder.of(NodeOffline), what="offline")
        assert recorder.of(NodeOffline)[0] == NodeOffline(node, "heartbeat lost")
        with pytest.raises(IfsfCommandError) as info:
            await recorder.network.read(node, FuellingPointAddress(1), (FpId.FP_STATE,))
        assert info.value.reason == "offline"
        tqc.set_fault(1, heartbeat=True)
        await online(recorder, node, 2)


async def test_dropped_links_are_reopened(tqc: IfsfSimulator, udp_port: int) -> None:
    node = Lna(1, 1)
    async with lan(heard(1), udp_port) as recorder:
        await online(recorder, node)
        tqc.drop_links(1)
        await wait_for(lambda: recorder.of(NodeOffline), what="offline")
        await online(recorder, node, 2)
        answers = await recorder.network.read(node, FuellingPointAddress(2), (FpId.FP_STATE,))
        assert answers[0].value(FpId.FP_STATE) == bytes((FpState.CLOSED,))  # type: ignore[union-attr]


async def test_a_mute_node_goes_offline_and_the_link_is_reset(tqc: IfsfSimulator,
                                                              udp_port: int) -> None:
    node = Lna(1, 1)
    settings = {node: NodeSettings(heartbeat_interval=BEAT, reply_timeout=0.5,
                                   unanswered_limit=2)}
    async with lan(settings, udp_port) as recorder:
        await online(recorder, node)
        tqc.set_fault(1, mute=True)
        for _ in range(2):
            with pytest.raises(IfsfCommandError):
                await recorder.network.read(node, FuellingPointAddress(1), (FpId.FP_STATE,))
        await wait_for(lambda: NodeOffline(node, "no answer") in recorder.events,
                       what="offline")
        tqc.set_fault(1, mute=False)
        await online(recorder, node, 2)


async def test_a_static_node_without_heartbeats(no_leaked_tasks: None) -> None:
    node = Lna(1, 4)
    ours, theirs = free_udp_port(), free_udp_port()  # they never hear each other
    port = free_tcp_port()
    settings = NodeSettings(endpoint=("127.0.0.1", port), reply_timeout=0.5,
                            unanswered_limit=1, status_poll_interval=0.5)
    nodes = make_nodes(Layout.TQC, first_node=4)
    network = IfsfNetwork(US, {node: settings}, udp_port=ours, heartbeat_interval=BEAT,
                          heartbeat_destination=BROADCAST, listen=("127.0.0.1", 0))
    async with network:
        recorder = Recorder(network)
        async with asyncio.TaskGroup() as group:
            task = group.create_task(recorder.run())
            async with run_ifsf_simulator(
                    nodes, ports=[port], udp_port=theirs, heartbeat_destination=BROADCAST,
                    controller=("127.0.0.1", network.listen_port)) as sim:
                await online(recorder, node)
                sim.set_fault(4, mute=True)  # the periodic status read goes unanswered
                await wait_for(lambda: NodeOffline(node, "no answer") in recorder.events,
                               what="offline")
                sim.set_fault(4, mute=False)
                await online(recorder, node, 2)
            task.cancel()


async def test_two_dispensers_dit_layout_and_a_stranger(udp_port: int) -> None:
    # Three DIT nodes (a node per nozzle) and a TQC board; node 9 is not configured.
    dit = make_nodes(Layout.DIT, nodes=3, first_node=11)
    board = make_nodes(Layout.TQC, first_node=1)
    stranger = make_nodes(Layout.TQC, first_node=9)
    configured = {**{Lna(1, n): NodeSettings(heartbeat_interval=BEAT) for n in (11, 12, 13)},
                  Lna(1, 1): NodeSettings(heartbeat_interval=BEAT)}
    simulated = run_ifsf_simulator(dit + board + stranger, udp_port=udp_port,
                                   heartbeat_interval=BEAT, heartbeat_destination=BROADCAST)
    async with simulated, lan(configured, udp_port) as recorder:
        for node in configured:
            await online(recorder, node)
        await wait_for(lambda: recorder.of(UnknownNode), what="the stranger")
        assert recorder.of(UnknownNode)[0].node == Lna(1, 9)  # type: ignore[union-attr]
        results = await asyncio.gather(*(
            recorder.network.write(node, FuellingPointAddress(1), (DataItem(FpId.OPEN_FP),))
            for node in configured))
        assert all(ack.accepted for ack in results)
