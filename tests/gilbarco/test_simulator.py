"""The Gilbarco pump simulator, sans I/O: the master's bytes in, the pump's bytes out.

What the simulator says is checked against the notes' frames (the captured transaction's layout)
and read with the driver's decoders: two readings of the notes written apart must agree.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.gilbarco import (
    Block,
    DigitsMode,
    HexRecord,
    NozzleReport,
    PresetBlock,
    PriceChangeBlock,
    PumpConfiguration,
    PumpTotals,
    SpecialFunctionAnswer,
    SpecialFunctionRequest,
    Transaction,
)
from simulator.gilbarco import EndProfile, GilbarcoFaultPlan, GilbarcoPump, GilbarcoSlave, Status
from simulator.metering import Decimals
from simulator.records import FillEnd, SimulationError

from .test_codec import SPECIAL_010, TRANSACTION

FAST = Decimal("600")  # litres per minute: ten litres a second


def pump(number: int = 1, **settings: object) -> GilbarcoPump:
    options: dict[str, object] = {"flow_lpm": FAST, "ramp_seconds": Decimal(0), "start_delay": 0.0}
    options.update(settings)
    return GilbarcoPump(number, {1: 92, 2: 95, 3: 98}, **options)  # type: ignore[arg-type]


class Line:
    """A slave and a clock; ``send`` returns what the line carries back at once."""

    def __init__(self, *pumps: GilbarcoPump, echo: bool = False, seed: int = 1) -> None:
        self.plan = GilbarcoFaultPlan(seed)
        self.slave = GilbarcoSlave(pumps, faults=self.plan, echo=echo)
        self.now = 100.0

    def send(self, data: bytes) -> bytes:
        self.slave.receive_data(data, self.now)
        return self.slave.data_to_send(self.now)

    def later(self, seconds: float) -> None:
        self.now += seconds
        for p in self.slave.pumps.values():
            p.tick(self.now)

    def status(self, number: int) -> int:
        answer = self.send(bytes((number & 0x0F,)))
        assert len(answer) == 1 and answer[0] & 0x0F == number & 0x0F
        return answer[0] >> 4

    def block(self, number: int, block: bytes) -> bytes:
        ready = self.send(bytes((0x20 | (number & 0x0F),)))
        assert ready == bytes((0xD0 | (number & 0x0F),)), ready.hex()
        return self.send(block)


def test_status_polls_and_pump_sixteen() -> None:
    line = Line(pump(1), pump(16))
    assert line.send(b"\x01") == b"\x61"
    assert line.send(b"\x00") == b"\x60"
    assert line.send(b"\x05") == b""  # nobody at 5
    assert line.send(b"\x77\x88") == b""  # noise
    assert line.slave.stats.line_errors == 2


def test_the_converter_echoes_first() -> None:
    line = Line(pump(2), echo=True)
    assert line.send(b"\x02") == b"\x02\x62"
    assert line.send(b"\x12") == b"\x12"  # authorize: the echo and nothing else


def test_special_function_010_from_the_notes_capture() -> None:
    p = pump(2)
    line = Line(p)
    p.lift(3, line.now)
    answer = line.block(2, SPECIAL_010)
    record = HexRecord.from_bytes(answer)
    report = NozzleReport.from_answer(SpecialFunctionAnswer((record,)))
    assert (record.pump, record.function, report.hose) == (2, 10, 3)


def test_a_sale_with_a_money_preset_in_the_notes_layout() -> None:
    p = pump(2, prices={3: 1070}, decimals=Decimals(volume=3, amount=2, price=2))
    line = Line(p)
    p.lift(3, line.now)
    assert line.status(2) == Status.CALLING
    assert line.block(2, PresetBlock("money", 25000).to_block().to_bytes()) == b""
    assert line.send(b"\x12") == b""
    assert line.status(2) == Status.FUELLING
    line.later(1.0)
    running = line.send(b"\x62")
    assert len(running) == 6 and all(w >> 4 == 0xE for w in running)
    line.later(60)
    assert line.status(2) == Status.END_A  # the preset was reached, nozzle still up
    wire = line.send(b"\x42")
    # The captured transaction: pump 2, third hose, price 1070, volume 023360, money 025000.
    # The simulator writes the words of unknown meaning (5-7) as E0; its meter truncates 250.00
    # at 10.70 to 23.364 L where the captured pump showed 23.360: so its own volume digits
    # (17-22) and checksum (31); every other word is the capture's.
    assert len(wire) == 33
    known = [i for i in range(33) if i not in (5, 6, 7, 31, *range(17, 23))]
    assert [wire[i] for i in known] == [TRANSACTION[i] for i in known]
    tx = Transaction.from_block(Block.from_bytes(wire))
    assert (tx.pump, tx.hose, tx.price, tx.volume, tx.money) == (2, 3, 1070, 23364, 25000)
    assert line.status(2) == Status.END_A  # read, but the nozzle is still up
    p.hang(3, line.now)
    assert line.status(2) == Status.IDLE
    fill = p.fills[0]
    assert (fill.nozzle, fill.amount, fill.end) == (3, 25000, FillEnd.PRESET)
    totals = PumpTotals.from_block(Block.from_bytes(line.send(b"\x52")))
    assert totals.hose(3) is not None and totals.hose(3).money == 25000  # type: ignore[union-attr]
    # The transaction stays until the next authorization.
    assert Transaction.from_block(Block.from_bytes(line.send(b"\x42"))).money == 25000
    line.send(b"\x12")
    assert Transaction.from_block(Block.from_bytes(line.send(b"\x42"))).money == 0


def test_prepaid_before_the_lift_and_hang_up_ends_in_b() -> None:
    p = pump(1)
    line = Line(p)
    line.block(1, PresetBlock("volume", 500, hose=1).to_block().to_bytes())
    line.send(b"\x11")
    assert line.status(1) == Status.AUTHORIZED
    p.lift(2, line.now)  # not the preset's hose: nothing flows
    line.later(1)
    assert line.status(1) == Status.AUTHORIZED
    p.hang(2, line.now)
    p.lift(1, line.now)
    assert line.status(1) == Status.FUELLING
    line.later(0.2)
    p.hang(1, line.now)
    assert line.status(1) == Status.END_B
    line.send(b"\x41")
    assert line.status(1) == Status.IDLE
    assert p.fills[0].end is FillEnd.NOZZLE_IN and 0 < p.fills[0].volume < 500


def test_stop_from_authorized_and_from_fuelling_and_resume() -> None:
    p = pump(1, start_delay=0.5)
    line = Line(p)
    p.lift(1, line.now)
    line.send(b"\x11")
    assert line.status(1) == Status.AUTHORIZED  # the motor starts in half a second
    line.send(b"\x31")
    assert line.status(1) == Status.CALLING  # 8 -> 6, and the nozzle is still up
    line.send(b"\x11")
    line.later(0.5)
    assert line.status(1) == Status.FUELLING
    line.send(b"\x31")
    assert line.status(1) == Status.STOPPED
    volume = p.sale.volume
    line.later(1)
    assert p.sale.volume == volume  # no flow while stopped
    line.send(b"\x11")
    assert line.status(1) == Status.FUELLING
    line.send(b"\xfc")  # all-stop
    assert line.status(1) == Status.STOPPED
    p.hang(1, line.now)
    assert line.status(1) == Status.END_B
    assert p.fills[0].end is FillEnd.STOP


def test_price_change_only_when_idle_and_seen_in_the_totals() -> None:
    p = pump(1)
    line = Line(p)
    p.lift(1, line.now)
    line.block(1, PriceChangeBlock(1, 812).to_block().to_bytes())
    assert p.prices[1] == 750 and "price change in CALLING" in p.refused
    p.hang(1, line.now)
    line.block(1, PriceChangeBlock(1, 812).to_block().to_bytes())
    totals = PumpTotals.from_block(Block.from_bytes(line.send(b"\x51")))
    assert [h.price_1 for h in totals.hoses] == [812, 750, 750]


def test_a_bad_block_is_a_data_error_that_a_totals_read_clears() -> None:
    p = pump(1)
    line = Line(p)
    bad = bytearray(PresetBlock("money", 100).to_block().to_bytes())
    bad[-2] ^= 1
    line.block(1, bytes(bad))
    assert line.status(1) == Status.DATA_ERROR
    assert line.send(b"\x21") == b"\x01"  # not ready for data
    line.send(b"\x11")
    assert p.status is Status.IDLE  # no authorization during a data error
    line.send(b"\x51")
    assert line.status(1) == Status.IDLE


def test_wrong_length_word_is_checked_unless_told_not_to() -> None:
    body = bytearray(PresetBlock("money", 100).to_block().body)
    body[0] = 0xE1
    wrong = Block(bytes(body)).to_bytes()
    strict, lenient = pump(1), pump(2, check_length=False)
    line = Line(strict, lenient)
    line.block(1, wrong)
    line.block(2, wrong)
    assert strict.data_error and strict.preset is None
    assert not lenient.data_error and lenient.preset == ("money", 100, None)


def test_configuration_special_function_answers_or_not() -> None:
    p = pump(1, decimals=Decimals(volume=3, amount=2, price=3), eight_digits=True)
    line = Line(p)
    answer = line.block(1, SpecialFunctionRequest(1).to_block().to_bytes())
    config = PumpConfiguration.from_answer(SpecialFunctionAnswer((HexRecord.from_bytes(answer),)))
    assert config == PumpConfiguration(3, 2, 3, 8)
    p.answers_config = False
    assert line.block(1, SpecialFunctionRequest(1).to_block().to_bytes()) == b""
    assert line.block(1, SpecialFunctionRequest(999).to_block().to_bytes()) == b""


def test_eight_digit_mode_answers() -> None:
    p = pump(1, eight_digits=True, totals={1: (10**11, 5)})
    line = Line(p)
    assert len(line.send(b"\x41")) == 39
    totals = PumpTotals.from_block(Block.from_bytes(line.send(b"\x51")), DigitsMode.EIGHT)
    assert totals.hoses[0].volume == 10**11 and len(totals.hoses) == 3
    assert len(line.send(b"\x61")) == 8


def test_end_profiles() -> None:
    timed = pump(1, end=EndProfile(needs_read=False, hold=2.0))
    no_hangup = pump(2, end=EndProfile(needs_hangup=False))
    line = Line(timed, no_hangup)
    for p in (timed, no_hangup):
        p.lift(1, line.now)
        line.send(bytes((0x10 | p.number,)))
        line.later(0.1)
        p.hang(1, line.now) if p is timed else p.stop(line.now)
    assert line.status(1) == Status.END_B
    line.later(2.5)
    assert line.status(1) == Status.IDLE  # no read needed
    assert line.status(2) == Status.STOPPED
    line.send(b"\x32")
    no_hangup.set_flow(Decimal(0), line.now)
    # A preset-limited fill ending with the nozzle up: idle after the read, nozzle still up.
    second = pump(3, end=EndProfile(needs_hangup=False))
    line = Line(second)
    second.lift(1, line.now)
    line.block(3, PresetBlock("money", 100).to_block().to_bytes())
    line.send(b"\x13")
    line.later(5)
    assert line.status(3) == Status.END_A
    line.send(b"\x43")
    assert line.status(3) == Status.IDLE
    second.hang(1, line.now)
    assert line.status(3) == Status.IDLE
    second.lift(1, line.now)
    assert line.status(3) == Status.CALLING


def test_faults_break_checksums_and_silence() -> None:
    p = pump(1)
    line = Line(p)
    line.plan.set(1, bad_checksum=1.0)
    wire = line.send(b"\x41")
    with pytest.raises(Exception, match="bad checksum"):
        Block.from_bytes(wire)
    line.plan.set(1, silent=True)
    assert line.send(b"\x01") == b""
    line.plan.clear()
    assert line.send(b"\x01") == b"\x61"


def test_the_customer_cannot_do_the_impossible() -> None:
    p = pump(1)
    p.lift(1, 0.0)
    with pytest.raises(SimulationError):
        p.lift(2, 0.0)
    with pytest.raises(SimulationError):
        p.hang(2, 0.0)
    with pytest.raises(SimulationError):
        p.lift(9, 0.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=30), max_size=20), st.booleans())
def test_any_bytes_from_a_master_are_survived(chunks: list[bytes], echo: bool) -> None:
    line = Line(pump(1), pump(16), echo=echo)
    for chunk in chunks:
        line.send(chunk)
        line.later(0.05)
