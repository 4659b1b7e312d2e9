"""The pump side of the line, fed with frames from the spec and from the codec."""

from __future__ import annotations

import pytest

from drivers.dart.codec import Control, ControlFrame, DataFrame, FrameDecoder, RawTransaction
from drivers.dart.errors import DartProtocolError
from drivers.dart.transactions import (
    CD1,
    CD5,
    CD101,
    DC1,
    DC101,
    PumpCommand,
    PumpStatus,
    decode_replies,
)
from simulator.faults import FaultPlan
from simulator.pump import SimulatedPump
from simulator.slave import DartSlave

# Real frames (PROTOCOLS.md): CD1 "return status" to pump 0x51 with TX# 5.
CD1_STATUS_TO_51 = bytes.fromhex("51 35 01 01 00 A2 50 03 FA")
POLL_50 = bytes.fromhex("50 20 FA")
POLL_51 = bytes.fromhex("51 20 FA")


def line(*, seed: int = 1) -> DartSlave:
    pumps = [SimulatedPump(a, {1: 92, 2: 95}) for a in (0x50, 0x51)]
    return DartSlave(pumps, faults=FaultPlan(seed))


def answer(slave: DartSlave, data: bytes, now: float = 0.0) -> bytes:
    slave.receive_data(data, now)
    return slave.data_to_send(now)


def block(data: bytes) -> DataFrame:
    (frame,) = FrameDecoder().feed(data)
    assert isinstance(frame, DataFrame)
    return frame


def ack(address: int, txn: int) -> bytes:
    return bytes((address, 0xC0 | txn, 0xFA))


def command(address: int, txn: int, *commands: CD1 | CD5 | CD101) -> bytes:
    return DataFrame(address, txn, tuple(c.to_raw() for c in commands)).to_bytes()


def quiet(slave: DartSlave, address: int = 0x50) -> None:
    """Poll and ACK until the pump has nothing more to say."""
    while (reply := answer(slave, bytes((address, 0x20, 0xFA))))[1] & 0xF0 == 0x30:
        answer(slave, ack(address, reply[1] & 0x0F))


def test_poll_answered_by_eot_when_nothing_to_say() -> None:
    slave = line()
    quiet(slave)
    assert answer(slave, POLL_50) == bytes.fromhex("50 70 FA")  # EOT, TX# of the last block


def test_status_change_sent_as_data_with_dc1() -> None:
    slave = line()
    first = block(answer(slave, POLL_50))
    # A pump that just started reports its status, in its first block: TX# 0.
    assert first.address == 0x50 and first.txn == 0
    assert decode_replies(first.transactions) == (DC1(PumpStatus.NOT_PROGRAMMED),)
    answer(slave, ack(0x50, 0))
    assert answer(slave, command(0x50, 1, CD5((750, 800)))) == bytes.fromhex("50 C1 FA")
    reply = answer(slave, POLL_50)
    # ADR, DATA|TX# 1, DC1 (TRANS 01, LNG 01, status 05), CRC, ETX, SF
    assert reply[:5] == bytes.fromhex("50 31 01 01 05") and reply[-2:] == bytes.fromhex("03 FA")
    assert decode_replies(block(reply).transactions) == (DC1(PumpStatus.FILLING_COMPLETED),)


def test_real_command_frame_is_acked_and_answered() -> None:
    slave = line()
    quiet(slave, 0x51)
    assert answer(slave, CD1_STATUS_TO_51) == bytes.fromhex("51 C5 FA")
    reply = block(answer(slave, POLL_51))
    assert decode_replies(reply.transactions) == (DC1(PumpStatus.NOT_PROGRAMMED),)


def test_block_not_acked_is_resent_with_the_same_txn() -> None:
    slave = line()
    first = answer(slave, POLL_50)
    assert answer(slave, POLL_50) == first  # no ACK: the same block again
    assert answer(slave, bytes.fromhex("50 50 FA")) == first  # NAK: the same block again
    assert answer(slave, ack(0x50, 7)) == b""  # an ACK for another block changes nothing
    assert answer(slave, POLL_50) == first
    assert slave.stats.resent == 3
    answer(slave, ack(0x50, 0))
    slave.pumps[0x50].raise_alarm(1, 0.0)
    assert block(answer(slave, POLL_50)).txn == 1


def test_ackpoll_acknowledges_and_polls() -> None:
    slave = line()
    answer(slave, POLL_50)
    slave.pumps[0x50].raise_alarm(1, 0.0)
    second = block(answer(slave, bytes.fromhex("50 E0 FA")))  # ACKPOLL TX# 0
    assert second.txn == 1
    assert answer(slave, bytes.fromhex("50 E1 FA")) == bytes.fromhex("50 71 FA")


def test_retransmitted_command_block_is_acked_not_applied_again() -> None:
    slave = line()
    quiet(slave, 0x51)
    assert answer(slave, CD1_STATUS_TO_51) == bytes.fromhex("51 C5 FA")
    assert answer(slave, CD1_STATUS_TO_51) == bytes.fromhex("51 C5 FA")  # our ACK was lost
    assert slave.stats.retransmissions == 1
    totals = command(0x51, 6, CD101(0x01))
    assert answer(slave, totals) == bytes.fromhex("51 C6 FA")
    assert answer(slave, totals) == bytes.fromhex("51 C6 FA")
    replies = decode_replies(block(answer(slave, POLL_51)).transactions)
    assert replies == (DC1(PumpStatus.NOT_PROGRAMMED), DC101(0x01, 0))  # one DC101, not two


def test_master_txn_zero_is_always_a_new_block() -> None:
    slave = line()
    quiet(slave)
    answer(slave, command(0x50, 0, CD101(0x01)))
    answer(slave, command(0x50, 0, CD101(0x01)))  # the master restarted: TX# 0 again
    replies = decode_replies(block(answer(slave, POLL_50)).transactions)
    assert replies == (DC101(0x01, 0), DC101(0x01, 0))


def test_bad_crc_is_not_answered() -> None:
    slave = line()
    damaged = bytearray(CD1_STATUS_TO_51)
    damaged[5] ^= 0x01  # CRC low byte
    assert answer(slave, bytes(damaged)) == b""
    assert slave.stats.line_errors == 1
    assert answer(slave, CD1_STATUS_TO_51) == bytes.fromhex("51 C5 FA")


def test_frames_for_other_addresses_are_not_answered() -> None:
    slave = line()
    assert answer(slave, bytes.fromhex("52 20 FA")) == b""
    assert answer(slave, b"\x00\x13garbage") == b""
    assert slave.stats.frames == 0


def test_byte_at_a_time_and_two_frames_at_once() -> None:
    slave = line()
    quiet(slave)
    quiet(slave, 0x51)
    for byte in CD1_STATUS_TO_51[:-1]:
        assert answer(slave, bytes((byte,))) == b""
    assert answer(slave, CD1_STATUS_TO_51[-1:]) == bytes.fromhex("51 C5 FA")
    two = POLL_50 + bytes.fromhex("51 E5 FA")  # POLL to 0x50, ACKPOLL to 0x51
    eot, status = FrameDecoder().feed(answer(slave, two))
    assert eot == ControlFrame(0x50, Control.EOT, 0)
    assert status == DataFrame(0x51, 1, (DC1(PumpStatus.NOT_PROGRAMMED).to_raw(),))


def test_pump_txn_runs_to_f_then_wraps_to_1() -> None:
    slave = line()
    pump = slave.pumps[0x50]
    seen = []
    for _ in range(18):
        pump.raise_alarm(1, 0.0)
        txn = block(answer(slave, POLL_50)).txn
        seen.append(txn)
        answer(slave, ack(0x50, txn))
    assert seen == [*range(16), 1, 2]


def test_power_cycle_restarts_txn_at_zero() -> None:
    slave = line()
    for _ in range(3):
        slave.pumps[0x50].raise_alarm(1, 0.0)
        answer(slave, ack(0x50, block(answer(slave, POLL_50)).txn))
    slave.power_cycle(0x50, 1.0)
    restarted = block(answer(slave, POLL_50, 1.0))
    assert restarted.txn == 0
    assert decode_replies(restarted.transactions) == (DC1(PumpStatus.NOT_PROGRAMMED),)


def test_undecodable_transaction_in_a_good_block_is_skipped() -> None:
    slave = line()
    quiet(slave)
    bad = RawTransaction(0x01, b"\x77")  # CD1 with a command byte the spec does not have
    frame = DataFrame(0x50, 1, (bad, CD101(0x09).to_raw())).to_bytes()
    assert answer(slave, frame) == bytes.fromhex("50 C1 FA")
    assert decode_replies(block(answer(slave, POLL_50)).transactions) == (DC101(0x09, 0),)
    assert slave.pumps[0x50].refused


def test_silent_pump_hears_nothing() -> None:
    slave = line()
    slave.faults.set(0x50, silent=True)
    assert answer(slave, command(0x50, 1, CD1(PumpCommand.RESET))) == b""
    assert answer(slave, POLL_50) == b""
    assert slave.stats.ignored == 2
    assert answer(slave, POLL_51) != b""  # the other pump is fine
    slave.faults.clear(0x50)
    reply = block(answer(slave, POLL_50))
    assert reply.txn == 0  # its first block: nothing was lost or skipped


def test_late_reply_is_held_until_due() -> None:
    slave = line()
    slave.turnaround = 0.002
    slave.faults.set(0x50, delay=0.2)
    slave.receive_data(POLL_50 + POLL_51, 10.0)
    early = slave.data_to_send(10.002)
    assert block(early).address == 0x51
    assert slave.next_timeout() == pytest.approx(10.202)
    assert slave.data_to_send(10.1) == b""
    assert block(slave.data_to_send(10.202)).address == 0x50
    assert slave.next_timeout() is None


def test_line_wide_corruption_damages_answers() -> None:
    slave = line(seed=7)
    slave.faults.set(None, corrupt=1.0)
    outcomes = []
    for _ in range(20):
        reply = answer(slave, POLL_50)
        assert reply != b""
        outcomes.append(FrameDecoder().feed(reply))
    # Every answer is damaged: never the clean DC1 block the pump sends.
    clean = DataFrame(0x50, 0, (DC1(PumpStatus.NOT_PROGRAMMED).to_raw(),))
    assert all(clean not in items for items in outcomes)
    assert any(isinstance(i, DartProtocolError) for items in outcomes for i in items)
    slave.faults.clear()
    assert block(answer(slave, POLL_50)) == clean  # and it was kept for resending


def test_two_pumps_at_one_address_refused() -> None:
    with pytest.raises(ValueError):
        DartSlave([SimulatedPump(0x50, {1: 92}), SimulatedPump(0x50, {1: 95})])
