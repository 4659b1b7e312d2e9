"""The fuelling point's state table and the follower that reads a point's messages."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.fuelling import PointState
from drivers.ifsf import DataItem, FpId, FpState, IfsfLocalError, Lna, NozzleForm, TrId
from drivers.ifsf.config import Member
from drivers.ifsf.follow import (
    AlarmsSeen,
    Ended,
    ErrorSeen,
    FpFollower,
    Lifted,
    Running,
    StandAlone,
    StateSeen,
)
from drivers.ifsf.numbers import encode_bcd, encode_number
from drivers.ifsf.point import busiest
from drivers.ifsf.states import NEUTRAL, TRANSITIONS, FpEvent, check_command, explain, mermaid

US = Lna(2, 1)


def test_every_state_is_in_the_table_and_mapped() -> None:
    sources = {state for state, _ in TRANSITIONS} | set(TRANSITIONS.values())
    assert sources == set(FpState)
    assert set(NEUTRAL) == set(FpState)
    assert NEUTRAL[FpState.SUSPENDED_STARTED] is NEUTRAL[FpState.SUSPENDED_FUELLING] is (
        PointState.SUSPENDED)
    assert "IDLE --> AUTHORISED: Release_FP" in mermaid()


def test_commands_the_table_allows_and_refuses() -> None:
    assert check_command(FpState.IDLE, FpEvent.RELEASE_FP) is FpState.AUTHORISED
    assert check_command(FpState.CALLING, FpEvent.RELEASE_FP) is FpState.STARTED
    assert check_command(None, FpEvent.OPEN_FP) is None
    for state, event in [(FpState.FUELLING, FpEvent.RELEASE_FP),
                         (FpState.CLOSED, FpEvent.RELEASE_FP),
                         (FpState.IDLE, FpEvent.SUSPEND_FP),
                         (FpState.INOPERATIVE, FpEvent.RELEASE_FP)]:
        with pytest.raises(IfsfLocalError):
            check_command(state, event)
    with pytest.raises(IfsfLocalError):
        check_command(None, FpEvent.RELEASE_FP)
    with pytest.raises(IfsfLocalError):
        check_command(FpState.IDLE, FpEvent.NOZZLE_UP)  # not a command


def test_explain() -> None:
    assert explain(FpState.AUTHORISED, FpState.STARTED) is FpEvent.NOZZLE_UP
    assert explain(FpState.FUELLING, FpState.IDLE) is not None
    assert explain(FpState.IDLE, FpState.FUELLING) is None  # two steps: an anomaly
    assert explain(None, FpState.IDLE) is None


def test_busiest_state_of_a_dit_pump() -> None:
    assert busiest([FpState.IDLE, FpState.FUELLING]) is PointState.FUELLING
    assert busiest([FpState.AUTHORISED, FpState.CALLING]) is PointState.AUTHORIZED
    assert busiest([FpState.IDLE, None]) is None
    assert busiest([FpState.INOPERATIVE, FpState.IDLE]) is PointState.IDLE


# ------------------------------------------------------------------ the follower


def status(state: FpState, lifted: int = 0) -> tuple[DataItem, ...]:
    return (DataItem(FpId.FP_STATUS_MESSAGE), DataItem(FpId.FP_STATE, bytes((state,))),
            DataItem(FpId.LOG_NOZ_STATE, bytes((lifted,))),
            DataItem(FpId.ASSIGN_CONTR_ID, US.to_bytes()))


def buffer(sequence: int, controller: Lna | None, state: int = 2) -> tuple[DataItem, ...]:
    return (DataItem(TrId.BUFFER_STATUS_MESSAGE), DataItem(TrId.TR_SEQ_NB,
                                                           encode_bcd(sequence, 2)),
            DataItem(TrId.TRANS_STATE, bytes((state,))),
            DataItem(TrId.TR_BUFF_CONTR_ID, b"\x00\x00" if controller is None
                     else controller.to_bytes()))


def running(nozzle: int, volume: str) -> tuple[DataItem, ...]:
    return (DataItem(FpId.RUNNING_TRANSACTION_MESSAGE),
            DataItem(FpId.CURRENT_LOG_NOZ, bytes((nozzle,))),
            DataItem(FpId.CURRENT_AMOUNT, encode_number(Decimal(volume) * 7, 5, 2)),
            DataItem(FpId.CURRENT_VOLUME, encode_number(Decimal(volume), 5, 2)))


def follower() -> FpFollower:
    f = FpFollower(Member(Lna(1, 1), 1, {1: 1, 2: 2}), US, NozzleForm.NUMBER)
    assert [type(o) for o in f.status(status(FpState.IDLE))] == [StateSeen]
    return f


def sale(f: FpFollower) -> list[object]:
    out: list[object] = []
    f.released_by_us()
    out += f.status(status(FpState.AUTHORISED))
    out += f.status(status(FpState.STARTED, lifted=0b10))
    out += f.status(status(FpState.FUELLING, lifted=0b10))
    out += f.running(running(2, "1.00"))
    return out


def test_a_sale_ends_with_its_buffer_status_then_idle() -> None:
    f = follower()
    out = sale(f)
    assert Lifted(2, None) in out and Running(Decimal("1.00"), Decimal("7.00"), 2) in out
    out = f.buffer(buffer(7, US)) + f.status(status(FpState.IDLE, lifted=0b10))
    assert out[0] == Ended(2, 7)
    assert [type(o) for o in out] == [Ended, StateSeen]
    assert f.buffer(buffer(7, US)) == []  # told once


def test_idle_before_its_buffer_status_ends_once() -> None:
    f = follower()
    sale(f)
    out = f.status(status(FpState.IDLE))
    assert out[:2] == [Lifted(None, 2), Ended(2, None)]
    assert f.buffer(buffer(8, US)) == []


def test_a_sale_nobody_here_released() -> None:
    f = follower()
    f.status(status(FpState.CALLING, lifted=1))
    f.status(status(FpState.STARTED, lifted=1))
    f.status(status(FpState.FUELLING, lifted=1))
    out = f.buffer(buffer(3, None))
    assert out == [StandAlone(3, None)]
    out = f.status(status(FpState.IDLE))
    assert [type(o) for o in out] == [Lifted, StateSeen]  # no second end
    # Released by another controller on the LAN: not ours either.
    assert f.buffer(buffer(4, Lna(2, 7))) == [StandAlone(4, Lna(2, 7))]


def test_a_cleared_buffer_status_is_no_news_and_errors_and_alarms() -> None:
    f = follower()
    assert f.buffer(buffer(9, US, state=1)) == []
    out = f.error(0x37, (DataItem(100), DataItem(1, b"\x37"), DataItem(5, b"\x01")))
    assert isinstance(out[0], ErrorSeen) and f.price_refused
    assert isinstance(out[1], StateSeen) and out[1].state is FpState.INOPERATIVE
    f.opened()
    assert not f.price_refused
    alarm = (*status(FpState.IDLE), DataItem(FpId.FP_ALARM, bytes(7) + b"\x01"))
    assert AlarmsSeen(bytes(7) + b"\x01") in f.status(alarm)
    cleared = (*status(FpState.IDLE), DataItem(FpId.FP_ALARM, bytes(8)))
    assert f.status(cleared) == [AlarmsSeen(None)]


def test_an_unexplained_change_is_taken_and_counted() -> None:
    f = follower()
    out = f.status(status(FpState.FUELLING))
    assert out[-1] == StateSeen(FpState.FUELLING, FpState.IDLE, expected=False)
    assert f.anomalies == 1 and f.state is FpState.FUELLING


def test_the_docs_show_the_table_as_it_is() -> None:
    from pathlib import Path

    docs = (Path(__file__).parents[2] / "docs" / "ifsf.md").read_text(encoding="utf-8")
    assert f"```mermaid\n{mermaid()}\n```" in docs
