"""The pump model on its own, with time passed in."""

from __future__ import annotations

from decimal import Decimal

import pytest

from drivers.dart.transactions import (
    CD1,
    CD2,
    CD3,
    CD4,
    CD5,
    CD101,
    DC1,
    DC2,
    DC3,
    DC5,
    DC7,
    DC9,
    DC101,
    DC103,
    PumpCommand,
    PumpStatus,
    UnknownTransaction,
)
from simulator.pump import FillEnd, SimulatedPump, SimulationError
from simulator.states import TRANSITIONS, PumpEvent, mermaid

C = PumpCommand
S = PumpStatus
PRICES = CD5((750, 800))  # nozzle 1: 7.50, nozzle 2: 8.00


def status(pump: SimulatedPump) -> PumpStatus:
    """The status now (a call, so that type checkers do not narrow it between steps)."""
    return pump.status


def new_pump(**kwargs: object) -> SimulatedPump:
    return SimulatedPump(0x50, {1: 92, 2: 95}, **kwargs)  # type: ignore[arg-type]


def ready_pump(now: float = 0.0, **kwargs: object) -> SimulatedPump:
    """Programmed and reset: ready for CD2/CD3/CD4 and AUTHORIZE."""
    pump = new_pump(**kwargs)
    pump.apply([PRICES], now)
    pump.apply([CD1(C.RESET)], now)
    pump.take_replies(now)
    return pump


def test_not_programmed_until_it_has_prices() -> None:
    pump = new_pump()
    assert pump.take_replies(0.0) == (DC1(S.NOT_PROGRAMMED),)
    pump.apply([CD1(C.RESET), CD1(C.AUTHORIZE)], 1.0)
    pump.lift(1, 1.5)
    assert status(pump) == S.NOT_PROGRAMMED
    assert pump.take_replies(2.0) == (DC3(0, 1, True),)
    pump.hang(1, 2.0)
    pump.take_replies(2.0)
    pump.apply([CD5((750,))], 3.0)  # one price for two nozzles: the whole CD5 is ignored
    assert status(pump) == S.NOT_PROGRAMMED
    assert pump.take_replies(3.0) == ()
    pump.apply([PRICES], 4.0)
    assert status(pump) == S.FILLING_COMPLETED
    assert pump.take_replies(4.0) == (DC1(S.FILLING_COMPLETED),)
    assert pump.prices == {1: 750, 2: 800}
    assert pump.fills == []


def test_programming_delay() -> None:
    pump = new_pump(programming_delay=2.0)
    pump.take_replies(0.0)
    pump.apply([PRICES], 10.0)
    assert pump.take_replies(11.9) == ()
    assert status(pump) == S.NOT_PROGRAMMED
    assert pump.take_replies(12.0) == (DC1(S.FILLING_COMPLETED),)


def test_full_sale_with_amount_preset() -> None:
    pump = new_pump()
    pump.apply([PRICES], 0.0)
    pump.take_replies(0.0)
    pump.apply([CD1(C.RESET)], 10.0)
    assert pump.take_replies(10.0) == (DC1(S.RESET), DC2(0, 0))
    pump.apply([CD2((1,)), CD4(10000), CD1(C.AUTHORIZE)], 10.5)
    assert pump.take_replies(10.5) == (DC1(S.AUTHORIZED),)

    pump.lift(1, 12.0)
    assert pump.take_replies(12.0) == (DC1(S.FILLING), DC3(750, 1, True), DC2(0, 0))
    # Slow start: 40 L/min reached after 1.5 s; 0.75 s in, 0.125 L have flowed.
    assert pump.take_replies(12.75) == (DC2(12, 90),)
    assert pump.take_replies(13.5) == (DC2(50, 375),)  # end of the ramp: 0.5 L
    assert pump.take_replies(14.5) == (DC2(116, 870),)  # + 0.6667 L at full flow
    assert pump.take_replies(14.5) == ()  # nothing new to say

    volumes = []
    now = 14.5
    while pump.status == S.FILLING:
        now += 0.5
        for reply in pump.take_replies(now):
            if isinstance(reply, DC2):
                volumes.append(reply.volume)
                assert reply.volume <= 1333 and reply.amount <= 10000
    assert volumes == sorted(volumes)
    assert status(pump) == S.MAX_REACHED
    assert pump.filling_info == (1333, 10000)  # 100.00 at 7.50 is 13.33 L

    (fill,) = pump.fills
    assert (fill.pump, fill.nozzle, fill.grade) == (0x50, 1, 92)
    assert (fill.volume, fill.amount, fill.price) == (1333, 10000, 750)
    assert fill.volume_decimal == Decimal("13.33") and fill.amount_decimal == Decimal("100.00")
    assert (fill.volume_total_before, fill.volume_total_after) == (0, 1333)
    assert (fill.amount_total_before, fill.amount_total_after) == (0, 10000)
    assert fill.end is FillEnd.PRESET
    # 13.3333 L: 0.5 L in the 1.5 s ramp, the rest at 2/3 L/s: 20.75 s after the lift.
    assert fill.started_at == 12.0
    assert fill.ended_at == pytest.approx(32.75)
    assert pump.totals(1) == (1333, 10000)
    assert pump.totals(2) == (0, 0)

    pump.apply([CD101(0x01), CD101(0x11), CD101(0x09), CD101(0x19), CD101(0x02)], now)
    pump.hang(1, now + 1)
    replies = pump.take_replies(now + 1)
    assert replies == (
        DC3(750, 1, False),  # nozzle back: the status stays "max reached" until RESET
        # Rev 2.11: the total, then the number of fillings (of the nozzle, or of the pump).
        DC101(0x01, 1333, 1, 0),
        DC101(0x11, 10000, 1, 0),
        DC101(0x09, 1333, 1, 0),
        DC101(0x19, 10000, 1, 0),
        DC101(0x02, 0, 0, 0),
    )
    assert status(pump) == S.MAX_REACHED
    pump.apply([CD1(C.RETURN_FILLING_INFO)], now + 2)
    assert pump.take_replies(now + 2) == (DC1(S.MAX_REACHED), DC2(1333, 10000))
    pump.apply([CD1(C.RESET)], now + 3)
    assert pump.take_replies(now + 3) == (DC1(S.RESET), DC2(0, 0))


def test_volume_preset_stops_at_exactly_the_volume() -> None:
    pump = ready_pump()
    pump.apply([CD3(1000), CD1(C.AUTHORIZE)], 1.0)  # 10.00 L, no CD2: any nozzle
    pump.lift(2, 2.0)
    pump.tick(100.0)
    assert status(pump) == S.MAX_REACHED
    assert pump.filling_info == (1000, 8000)
    assert pump.fills[0].nozzle == 2 and pump.fills[0].end is FillEnd.PRESET


def test_hang_early_gives_a_partial_filling() -> None:
    pump = ready_pump()
    pump.apply([CD4(10000), CD1(C.AUTHORIZE)], 1.0)
    pump.lift(1, 2.0)
    pump.hang(1, 6.5)  # 0.5 L in the ramp + 3 s at 2/3 L/s = 2.50 L
    assert status(pump) == S.FILLING_COMPLETED
    assert pump.take_replies(6.5) == (DC1(S.FILLING_COMPLETED), DC3(750, 1, False), DC2(250, 1875))
    (fill,) = pump.fills
    assert (fill.volume, fill.amount, fill.end) == (250, 1875, FillEnd.NOZZLE_IN)
    assert pump.totals(1) == (250, 1875)
    pump.tick(60.0)
    assert pump.filling_info == (250, 1875)


def test_lift_without_authorization_dispenses_nothing() -> None:
    pump = ready_pump()
    pump.lift(1, 1.0)
    assert pump.take_replies(1.0) == (DC3(750, 1, True),)
    assert pump.take_replies(30.0) == ()
    assert status(pump) == S.RESET and pump.filling_info == (0, 0)
    pump.hang(1, 31.0)
    assert pump.take_replies(31.0) == (DC3(750, 1, False),)
    assert pump.fills == [] and pump.totals(1) == (0, 0)


def test_nozzle_not_allowed_does_not_start() -> None:
    pump = ready_pump()
    pump.apply([CD2((2,)), CD1(C.AUTHORIZE)], 1.0)
    pump.lift(1, 2.0)
    pump.tick(10.0)
    assert status(pump) == S.AUTHORIZED and pump.filling_info == (0, 0)
    pump.hang(1, 11.0)
    pump.lift(2, 12.0)
    assert status(pump) == S.FILLING and pump.filling_nozzle == 2


def test_authorize_with_the_nozzle_already_out_starts_filling() -> None:
    # What an auto-mode controller does: it sees the nozzle out, then authorizes.
    pump = ready_pump()
    pump.lift(1, 1.0)
    pump.apply([CD2((1,)), CD1(C.AUTHORIZE)], 2.0)
    assert status(pump) == S.FILLING
    assert pump.take_replies(2.0)[0] == DC1(S.FILLING)


def test_only_one_nozzle_out_at_a_time() -> None:
    pump = ready_pump()
    pump.lift(1, 1.0)
    with pytest.raises(SimulationError):
        pump.lift(2, 1.0)
    with pytest.raises(SimulationError):
        pump.hang(2, 1.0)
    with pytest.raises(SimulationError):
        pump.lift(3, 1.0)


def test_stop_ends_the_filling() -> None:
    pump = ready_pump()
    pump.apply([CD1(C.AUTHORIZE)], 1.0)
    pump.lift(1, 1.0)
    pump.apply([CD1(C.STOP)], 4.0)  # 0.5 + 1.5 s x 2/3 = 1.5 L
    assert status(pump) == S.FILLING_COMPLETED
    pump.tick(60.0)
    assert pump.filling_info == (150, 1125)
    assert pump.fills[0].end is FillEnd.STOP
    pump.hang(1, 61.0)
    assert len(pump.fills) == 1


def test_stop_while_authorized_withdraws_the_authorization() -> None:
    pump = ready_pump()
    pump.apply([CD4(5000), CD1(C.AUTHORIZE)], 1.0)
    pump.apply([CD1(C.STOP)], 2.0)
    assert status(pump) == S.RESET and pump.preset_amount is None
    pump.lift(1, 3.0)
    assert status(pump) == S.RESET and pump.fills == []


def test_suspend_and_resume() -> None:
    pump = ready_pump()
    pump.apply([CD1(C.AUTHORIZE)], 0.0)
    pump.lift(1, 0.0)
    pump.apply([CD1(C.SUSPEND)], 3.0)  # 0.5 + 1.5 x 2/3 = 1.5 L
    assert status(pump) == S.SUSPENDED
    pump.tick(30.0)
    assert pump.filling_info[0] == 150
    pump.apply([CD1(C.RESUME)], 30.0)
    assert status(pump) == S.FILLING
    pump.tick(31.5)  # the slow start again: +0.5 L
    assert pump.filling_info[0] == 200
    pump.apply([CD1(C.SUSPEND)], 32.0)
    pump.hang(1, 40.0)
    assert status(pump) == S.FILLING_COMPLETED
    assert pump.fills[0].volume == pump.filling_info[0]


def test_switch_off_then_reset() -> None:
    pump = ready_pump()
    pump.apply([CD1(C.AUTHORIZE)], 0.0)
    pump.lift(1, 0.0)
    pump.apply([CD1(C.SWITCH_OFF)], 3.0)
    assert status(pump) == S.SWITCHED_OFF and pump.fills[0].end is FillEnd.SWITCH_OFF
    pump.apply([CD1(C.AUTHORIZE)], 4.0)
    assert status(pump) == S.SWITCHED_OFF
    pump.apply([CD1(C.RESET)], 5.0)
    assert status(pump) == S.RESET


def test_commands_refused_while_fuel_flows() -> None:
    pump = ready_pump()
    pump.apply([CD1(C.AUTHORIZE)], 0.0)
    pump.lift(1, 0.0)
    pump.apply([CD1(C.RESET), CD5((900, 900)), CD4(100), CD2((2,))], 2.0)
    assert status(pump) == S.FILLING
    assert pump.prices == {1: 750, 2: 800}
    assert len(pump.refused) == 4
    pump.hang(1, 5.0)
    assert pump.fills[0].price == 750


def test_prices_locked_for_the_filling_in_progress() -> None:
    pump = ready_pump()
    pump.apply([CD1(C.AUTHORIZE)], 0.0)
    pump.lift(1, 0.0)
    pump.apply([CD1(C.SUSPEND)], 2.0)
    pump.apply([CD5((900, 900))], 3.0)  # refused while suspended too
    assert pump.prices[1] == 750


def test_flow_rate_change() -> None:
    pump = ready_pump(ramp_seconds=Decimal(0))
    pump.apply([CD1(C.AUTHORIZE)], 0.0)
    pump.lift(1, 0.0)
    pump.set_flow(Decimal(20), 3.0)  # 2 L at 40 L/min
    pump.tick(6.0)  # + 1 L at 20 L/min
    assert pump.filling_info[0] == 300
    with pytest.raises(SimulationError):
        pump.set_flow(Decimal(-1), 7.0)


def test_totals_never_go_back() -> None:
    pump = ready_pump(totals={1: (500_000, 3_750_000)})
    for start in (0.0, 100.0):
        pump.apply([CD1(C.RESET), CD3(1000), CD1(C.AUTHORIZE)], start)
        pump.lift(1, start)
        pump.hang(1, start + 60.0)
    first, second = pump.fills
    assert first.volume_total_before == 500_000
    assert second.volume_total_before == first.volume_total_after
    assert second.volume_total_after == 500_000 + 2000
    assert pump.totals(1) == (502_000, 3_750_000 + 15_000)


def test_power_cycle_mid_filling() -> None:
    pump = ready_pump()
    pump.apply([CD1(C.AUTHORIZE)], 0.0)
    pump.lift(1, 0.0)
    pump.take_replies(0.0)
    pump.power_cycle(6.0)  # 0.5 + 4.5 x 2/3 = 3.5 L dispensed before the power went
    assert status(pump) == S.NOT_PROGRAMMED and pump.prices == {}
    (fill,) = pump.fills
    assert (fill.volume, fill.amount, fill.end) == (350, 2625, FillEnd.POWER_FAILURE)
    assert pump.totals(1) == (350, 2625)
    assert pump.take_replies(6.0) == (DC1(S.NOT_PROGRAMMED),)
    pump.tick(60.0)
    assert pump.totals(1) == (350, 2625)  # the valve closed with the power
    # The last filling survives in NVRAM, so a controller can read the sale back.
    pump.apply([CD1(C.RETURN_FILLING_INFO)], 61.0)
    assert pump.take_replies(61.0) == (DC1(S.NOT_PROGRAMMED), DC2(350, 2625))
    pump.apply([PRICES, CD1(C.RESET)], 62.0)
    assert status(pump) == S.RESET


def test_information_replies() -> None:
    pump = new_pump(identity=1234567890)
    pump.take_replies(0.0)
    pump.apply([CD1(C.RETURN_PRICES)], 0.0)
    assert pump.take_replies(0.0) == (DC103((0, 0)),)
    pump.apply([PRICES], 0.0)
    pump.apply([CD1(C.RETURN_IDENTITY), CD1(C.RETURN_PARAMETERS), CD1(C.RETURN_PRICES)], 1.0)
    pump.raise_alarm(0x09, 1.0)
    assert pump.take_replies(1.0) == (
        DC1(S.FILLING_COMPLETED),
        DC9(1234567890),
        DC7(2, 2, 2, 999_999, (92, 95)),
        DC103((750, 800)),
        DC5(0x09),
    )
    assert pump.alarms == [0x09]


def test_unknown_transaction_is_ignored() -> None:
    pump = ready_pump()
    pump.apply([UnknownTransaction(0x0D, b"\x01")], 0.0)
    assert status(pump) == S.RESET and pump.refused


def test_status_table_renders_as_a_diagram() -> None:
    diagram = mermaid()
    assert diagram.splitlines()[0] == "stateDiagram-v2"
    assert "    FILLING --> MAX_REACHED: preset or maximum reached" in diagram
    assert len(diagram.splitlines()) == len(TRANSITIONS) + 1
    # No status is a dead end: every one but "not programmed" has a way back to RESET.
    for status in S:
        if status not in (S.NOT_PROGRAMMED, S.FILLING, S.SUSPENDED):
            assert TRANSITIONS.get((status, PumpEvent.RESET)) == S.RESET, status
