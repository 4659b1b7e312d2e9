"""The simulated node without I/O: the notes' sale, and the quirks real dispensers have."""

from __future__ import annotations

from decimal import Decimal

import pytest

from drivers.ifsf import (
    Ack,
    AllFuellingPoints,
    Answer,
    BufferStatus,
    DataItem,
    ErrorAddress,
    ErrorReport,
    FpId,
    FpState,
    FpStatus,
    FuellingPointAddress,
    Lna,
    Message,
    MessageStatus,
    NozzleAddress,
    NozzleForm,
    ProductModeAddress,
    Read,
    RunningTransaction,
    Transaction,
    TransactionAddress,
    TrId,
    TrState,
    Unsolicited,
    Write,
    decode_message,
    encode_number,
)
from drivers.ifsf.messages import release_items
from simulator.ifsf import SimulatedNode
from simulator.records import SimulationError

from .conftest import FakeClock

US = Lna(2, 1)
NODE = Lna(1, 1)
TR_IDS = (1, 5, 6, 7, 8, 10, 20, 21, 0xC8, 0xC9)


class Peer:
    """The controller's side, written with the codec: builds requests, reads the outbox."""

    def __init__(self, node: SimulatedNode, clock: FakeClock) -> None:
        self.node = node
        self.clock = clock
        self.token = 0

    def send(self, message: Message) -> list[Message]:
        # Every message goes through bytes, as it would on the wire.
        self.node.handle(decode_message(message.to_bytes()), self.clock())
        return [decode_message(m.to_bytes()) for m in self.node.take_outbox()]

    def next_token(self) -> int:
        self.token = self.token % 31 + 1
        return self.token

    def write(self, address: object, items: tuple[DataItem, ...]) -> list[Message]:
        return self.send(Write(self.node.lna, US, self.next_token(), address, items))  # type: ignore[arg-type]

    def read(self, address: object, ids: tuple[int, ...]) -> list[Message]:
        return self.send(Read(self.node.lna, US, self.next_token(), address, ids))  # type: ignore[arg-type]

    def tick(self, seconds: float) -> list[Message]:
        self.node.tick(self.clock.advance(seconds))
        return [decode_message(m.to_bytes()) for m in self.node.take_outbox()]

    def lift(self, fp: int, nozzle: int) -> list[Message]:
        self.node.fp(fp).lift(nozzle, self.clock())
        return self.tick(0)

    def hang(self, fp: int, nozzle: int) -> list[Message]:
        self.node.fp(fp).hang(nozzle, self.clock())
        return self.tick(0)

    def open(self, fp: int = 1) -> list[Message]:
        return self.write(FuellingPointAddress(fp), (DataItem(FpId.OPEN_FP),))


def states(messages: list[Message]) -> list[FpState]:
    out = []
    for m in messages:
        if isinstance(m, Unsolicited) and m.message_id == FpId.FP_STATUS_MESSAGE:
            state = FpStatus.from_items(m.items).state
            assert state is not None
            out.append(state)
    return out


def node(**options: object) -> SimulatedNode:
    return SimulatedNode(1, {1: {1: 92, 2: 95}, 2: {1: 92}}, {92: Decimal("7.50"),
                         95: Decimal("8.00")}, ramp_seconds=Decimal(0), **options)  # type: ignore[arg-type]


@pytest.fixture
def peer(clock: FakeClock) -> Peer:
    p = Peer(node(), clock)
    p.node.controller_heard(US)
    return p


def test_closed_until_opened_and_configuration_needed(peer: Peer) -> None:
    assert peer.node.configuration_needed
    refused = peer.write(FuellingPointAddress(1), release_items(US, {1}, amount=Decimal(100)))
    assert isinstance(refused[0], Ack) and refused[0].refused()[FpId.RELEASE_FP] == 3
    out = peer.open(1)
    assert out[0] == Ack(US, NODE, peer.token, FuellingPointAddress(1))
    assert states(out[1:]) == [FpState.IDLE]
    assert peer.node.configuration_needed  # FP 2 not opened yet
    peer.open(2)
    assert not peer.node.configuration_needed


def test_the_sale_from_the_notes(peer: Peer, clock: FakeClock) -> None:
    peer.open(1)
    out = peer.write(FuellingPointAddress(1),
                     release_items(US, {1}, amount=Decimal("15.00")))
    assert isinstance(out[0], Ack) and out[0].accepted  # the ack before the status
    assert states(out[1:]) == [FpState.AUTHORISED]
    out = peer.lift(1, 1)
    assert states(out) == [FpState.STARTED]
    peer.node.fp(1).set_flow(Decimal("60"), clock())
    out = peer.tick(0.5)
    assert states(out) == [FpState.FUELLING]
    running = [m for m in out if isinstance(m, Unsolicited)
               and m.message_id == FpId.RUNNING_TRANSACTION_MESSAGE]
    figures = RunningTransaction.from_items(running[0].items, NozzleForm.NUMBER)
    assert figures.nozzle == 1 and figures.volume == Decimal("0.50")
    out = peer.tick(5.0)  # 15.00 at 7.50 is 2 L: the preset is reached
    buffers = [BufferStatus.from_items(m.items) for m in out
               if isinstance(m, Unsolicited) and isinstance(m.address, TransactionAddress)]
    assert buffers and buffers[0].state is TrState.PAYABLE and buffers[0].sequence == 1
    assert buffers[0].amount == Decimal("15.00") and buffers[0].volume == Decimal("2.00")
    assert states(out)[-1] is FpState.IDLE
    # The controller reads the transaction, records it, clears it.
    out = peer.read(TransactionAddress(1, 0), TR_IDS)
    assert isinstance(out[0], Answer) and isinstance(out[-1], Ack)
    assert out[-1].address == TransactionAddress(1, 0, marker=0x20)
    sale = Transaction.from_items(out[0].items, NozzleForm.NUMBER)
    assert (sale.sequence, sale.amount, sale.volume, sale.price) == (
        1, Decimal("15.00"), Decimal("2.00"), Decimal("7.50"))
    assert (sale.nozzle, sale.product, sale.controller) == (1, 92, US)
    assert sale.extra[0xC9] == encode_number(Decimal("2.00"), 7, 2)
    out = peer.write(TransactionAddress(1, 1), (DataItem(TrId.CLEAR_TRANSACTION),))
    assert isinstance(out[0], Ack) and out[0].accepted
    assert BufferStatus.from_items(out[1].items).state is TrState.CLEARED  # type: ignore[union-attr]
    out = peer.read(TransactionAddress(1, 0), TR_IDS)
    assert len(out) == 1 and isinstance(out[0], Ack)  # nothing unpaid: the ack alone
    # Clearing it again: the transaction is gone, an unknown address.
    out = peer.write(TransactionAddress(1, 1), (DataItem(TrId.CLEAR_TRANSACTION),))
    assert isinstance(out[0], Ack) and out[0].status == MessageStatus.UNKNOWN_ADDRESS


def test_a_release_without_a_preset_needs_the_nozzle_up(peer: Peer, clock: FakeClock) -> None:
    peer.open(1)
    out = peer.write(FuellingPointAddress(1), release_items(US, {1, 2}))
    assert isinstance(out[0], Ack) and out[0].refused() == {FpId.RELEASE_FP: 6}
    peer.lift(1, 2)
    out = peer.write(FuellingPointAddress(1), release_items(US, {1, 2}))
    assert isinstance(out[0], Ack) and out[0].accepted
    assert states(out[1:]) == [FpState.STARTED]


def test_at_most_two_unpaid_then_release_refused_with_code_6(peer: Peer,
                                                            clock: FakeClock) -> None:
    peer.open(1)
    for _ in range(2):
        peer.write(FuellingPointAddress(1), release_items(US, {1}, volume=Decimal("1")))
        peer.lift(1, 1)
        peer.tick(10.0)
        peer.hang(1, 1)
    assert len(peer.node.fp(1).unpaid) == 2
    out = peer.write(FuellingPointAddress(1), release_items(US, {1}, volume=Decimal("1")))
    assert isinstance(out[0], Ack) and out[0].refused() == {FpId.RELEASE_FP: 6}
    out = peer.read(FuellingPointAddress(1), (FpId.NB_TRAN_BUFFER_NOT_PAID,))
    assert out[0].value(FpId.NB_TRAN_BUFFER_NOT_PAID) == b"\x02"  # type: ignore[union-attr]


def test_transaction_numbers_have_4_digits_and_wrap(clock: FakeClock) -> None:
    peer = Peer(node(first_sequence=9999), clock)
    peer.node.controller_heard(US)
    peer.open(1)
    seen = []
    for _ in range(2):
        peer.write(FuellingPointAddress(1), release_items(US, {1}, volume=Decimal("1")))
        peer.lift(1, 1)
        peer.tick(10.0)
        peer.hang(1, 1)
        seen.append(peer.node.fp(1).history[-1].sequence)
    assert seen == [9999, 1]
    out = peer.read(TransactionAddress(1, 9999), (1,))
    assert out[0].value(1) == b"\x99\x99"  # type: ignore[union-attr]


def test_prices_wait_until_every_fp_is_idle(peer: Peer, clock: FakeClock) -> None:
    peer.open(1)
    peer.open(2)
    peer.lift(2, 1)  # FP 2 is Calling: not idle
    price = ProductModeAddress(92, 1)
    out = peer.write(price, (DataItem(2, encode_number(Decimal("7.62"), 4, 2)),))
    assert isinstance(out[0], Ack) and out[0].accepted  # at once
    assert not any(isinstance(m.address, ErrorAddress) for m in peer.tick(1.0))
    assert peer.node.prices[92] == 750
    out = peer.hang(2, 1)
    reports = [m for m in out if isinstance(m, Unsolicited) and isinstance(m.address,
                                                                           ErrorAddress)]
    assert [r.address for r in reports] == [ErrorAddress(1, 0x99), ErrorAddress(2, 0x99)]
    out = peer.read(price, (2,))
    assert out[0].value(2) == bytes.fromhex("04 00 07 62")  # type: ignore[union-attr]


def test_a_price_refused_with_0x37_makes_the_fp_inoperative(peer: Peer) -> None:
    peer.open(1)
    peer.open(2)
    peer.node.faults.price_result = {2: 0x37}
    peer.write(ProductModeAddress(92, 1), (DataItem(2, encode_number(Decimal("7.62"), 4, 2)),))
    out = peer.tick(0.1)
    reports = {m.address.fp: ErrorReport.from_items(m.address.error, m.items)  # type: ignore[union-attr]
               for m in out if isinstance(m, Unsolicited) and isinstance(m.address,
                                                                          ErrorAddress)}
    assert reports[1].error_type == 0x99 and reports[2].error_type == 0x37
    assert reports[2].state is FpState.INOPERATIVE
    assert peer.node.fp(2).state is FpState.INOPERATIVE
    assert peer.node.prices[92] == 750  # not taken
    peer.open(2)
    assert peer.node.fp(2).state is FpState.IDLE


def test_a_price_for_a_product_the_node_has_not(peer: Peer) -> None:
    peer.open(1)
    out = peer.write(ProductModeAddress(1234, 1),
                     (DataItem(2, encode_number(Decimal("7.62"), 4, 2)),))
    assert isinstance(out[0], Ack) and out[0].accepted
    out = peer.tick(0.1)
    assert {m.address.error for m in out  # type: ignore[union-attr]
            if isinstance(m.address, ErrorAddress)} == {0x35}


def test_nozzle_as_bitmask_variant(clock: FakeClock) -> None:
    peer = Peer(SimulatedNode(1, {1: {n: 92 for n in range(1, 5)}}, {92: Decimal("7.50")},
                              nozzle_form=NozzleForm.BITMASK, ramp_seconds=Decimal(0)), clock)
    peer.node.controller_heard(US)
    peer.open(1)
    peer.lift(1, 3)
    peer.write(FuellingPointAddress(1), release_items(US, {3}))
    out = peer.tick(1.0)
    running = next(m for m in out if isinstance(m, Unsolicited)
                   and m.message_id == FpId.RUNNING_TRANSACTION_MESSAGE)
    assert running.value(FpId.CURRENT_LOG_NOZ) == b"\x04"
    assert RunningTransaction.from_items(running.items, NozzleForm.BITMASK).nozzle == 3


def test_stand_alone_sale_appears_unasked(peer: Peer, clock: FakeClock) -> None:
    peer.open(1)
    peer.node.fp(1).stand_alone = True
    peer.lift(1, 1)
    peer.tick(3.0)
    peer.hang(1, 1)
    out = peer.read(TransactionAddress(1, 0), TR_IDS)
    sale = Transaction.from_items(out[0].items, NozzleForm.NUMBER)
    assert sale.controller is None and sale.volume == Decimal("2.00")


def test_commands_refused_on_purpose_and_state_rules(peer: Peer) -> None:
    peer.open(1)
    peer.node.faults.refuse = {FpId.RELEASE_FP: 6}
    out = peer.write(FuellingPointAddress(1), release_items(US, {1}, amount=Decimal(10)))
    assert isinstance(out[0], Ack)
    assert out[0].codes == ((27, 0), (25, 0), (30, 0), (62, 6))
    out = peer.write(FuellingPointAddress(1), (DataItem(FpId.SUSPEND_FP),))
    assert isinstance(out[0], Ack) and out[0].refused() == {FpId.SUSPEND_FP: 3}


def test_reads_of_every_fp_nozzle_totals_and_unknown_addresses(peer: Peer) -> None:
    peer.open(1)
    out = peer.read(AllFuellingPoints(), (FpId.FP_STATE, 250))
    assert [m.address for m in out] == [FuellingPointAddress(1), FuellingPointAddress(2),
                                        AllFuellingPoints()]
    assert out[0].items == (DataItem(20, b"\x03"), DataItem(250, b""))  # type: ignore[union-attr]
    out = peer.read(NozzleAddress(1, 2), (1, 20, 21))
    assert out[0].items[1] == DataItem(20, encode_number(Decimal(0), 7, 2))  # type: ignore[union-attr]
    out = peer.read(FuellingPointAddress(4), (20,))
    assert isinstance(out[0], Ack) and out[0].status == MessageStatus.UNKNOWN_ADDRESS


def test_lenient_command_with_a_length_of_one(peer: Peer) -> None:
    out = peer.write(FuellingPointAddress(1), (DataItem(FpId.OPEN_FP, b"\x00"),))
    assert isinstance(out[0], Ack) and out[0].accepted


def test_customer_mistakes_are_refused(peer: Peer, clock: FakeClock) -> None:
    with pytest.raises(SimulationError):
        peer.lift(1, 7)
    peer.lift(1, 1)
    with pytest.raises(SimulationError):
        peer.lift(1, 2)
    with pytest.raises(SimulationError):
        peer.hang(1, 2)


def test_power_cycle_keeps_the_buffer(peer: Peer, clock: FakeClock) -> None:
    peer.open(1)
    peer.write(FuellingPointAddress(1), release_items(US, {1}, volume=Decimal("5")))
    peer.lift(1, 1)
    peer.tick(2.0)
    peer.node.power_cycle(clock())
    fp = peer.node.fp(1)
    assert fp.state is FpState.CLOSED and peer.node.configuration_needed
    assert len(fp.unpaid) == 1 and fp.unpaid[0].end.value == "power_failure"
