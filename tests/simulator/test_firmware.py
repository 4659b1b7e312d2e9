"""Firmware profiles and quirks, pump and link layer on their own (time passed in, no sockets).

What each quirk must do is what the field notes say real firmware does (PROTOCOLS.md, DART);
tests/simulator/test_profiles.py drives the same profiles over a real TCP line.
"""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from drivers.dart.codec import Control, ControlFrame, DataFrame, FrameDecoder
from drivers.dart.transactions import (
    CD1,
    CD2,
    CD3,
    CD4,
    CD5,
    CD101,
    DC1,
    DC3,
    DC7,
    DC9,
    DC101,
    DC103,
    Command,
    PumpCommand,
    PumpStatus,
)
from simulator.app import create_app
from simulator.cli import main
from simulator.control import Simulator, make_pumps
from simulator.firmware import (
    PROFILES,
    QUIRKS,
    Firmware,
    FirmwarePlan,
    Quirk,
    parse_firmware,
    totals_reply,
)
from simulator.metering import Decimals
from simulator.pump import SimulatedPump
from simulator.records import SimulationError
from simulator.slave import DartSlave

from .conftest import FakeClock

C = PumpCommand
S = PumpStatus


def pump(spec: str = "rev211", **kwargs: object) -> SimulatedPump:
    return SimulatedPump(0x50, {1: 92, 2: 95}, firmware=parse_firmware(spec), **kwargs)  # type: ignore[arg-type]


def programmed(spec: str, now: float = 0.0) -> SimulatedPump:
    p = pump(spec)
    p.apply([CD5((750, 800))], now)
    p.apply([CD1(C.RESET)], now)
    p.take_replies(now)
    return p


def fill(p: SimulatedPump, nozzle: int, volume: int, now: float) -> float:
    """Authorize, lift, fill a preset volume, hang up: returns the time after."""
    p.apply([CD1(C.RESET)], now)
    p.apply([CD3(volume)], now)
    p.apply([CD1(C.AUTHORIZE)], now)
    p.lift(nozzle, now)
    p.tick(now + 120)
    p.hang(nozzle, now + 121)
    p.take_replies(now + 121)
    return now + 122


# ----------------------------------------------------------------------------- the profiles


def test_profiles_and_specs() -> None:
    assert set(PROFILES) >= {"rev211", "legacy", "milli", "bare"}
    assert set(QUIRKS) == set(Quirk)
    legacy = parse_firmware("legacy")
    assert legacy.quirks == {
        Quirk.NO_PRICE_READBACK,
        Quirk.NO_SUSPEND,
        Quirk.SHORT_TOTALS,
        Quirk.NO_ACKPOLL,
    }
    assert parse_firmware("milli").decimals == Decimals(volume=3, amount=2, price=3)
    mixed = parse_firmware(" rev211+pump-wide-totals+amount-in-volume-counter ")
    assert mixed.spec == "rev211+amount-in-volume-counter+pump-wide-totals"
    assert parse_firmware(mixed.spec) == mixed
    assert parse_firmware("legacy+short-totals").spec == "legacy"  # already in the profile
    assert not parse_firmware("rev211").quirks and parse_firmware("rev211").decimals is None


@pytest.mark.parametrize(
    "spec",
    ["", "rev3", "legacy+", "legacy+telepathy", "rev211+first-command-only+ignores-multi-command"],
)
def test_bad_specs(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_firmware(spec)


def test_plans() -> None:
    plan = FirmwarePlan.parse(["legacy", "0x51=milli", "82=rev211+pump-wide-totals"])
    assert plan.for_pump(0x50) == parse_firmware("legacy")
    assert plan.for_pump(0x51) == parse_firmware("milli")
    assert plan.for_pump(0x52).has(Quirk.PUMP_WIDE_TOTALS)
    plan.check([0x50, 0x51, 0x52])
    with pytest.raises(ValueError, match="0x52"):
        plan.check([0x50, 0x51])
    with pytest.raises(ValueError, match="address"):
        FirmwarePlan.parse(["pump1=legacy"])
    pumps = make_pumps(3, firmware=plan)
    assert [p.firmware.spec for p in pumps] == ["legacy", "milli", "rev211+pump-wide-totals"]
    assert pumps[1].decimals == Decimals(3, 2, 3) and pumps[0].decimals == Decimals()
    with pytest.raises(ValueError):
        make_pumps(1, firmware=plan)  # 0x51 and 0x52 do not exist


# ----------------------------------------------------------------------------- what pumps answer


@pytest.mark.parametrize(
    ("spec", "command", "answer"),
    [
        ("rev211", C.RETURN_PRICES, DC103((750, 800))),
        ("rev211", C.RETURN_PARAMETERS, DC7(2, 2, 2, 999_999, (92, 95))),
        ("rev211", C.RETURN_IDENTITY, DC9(1_000_000_080)),
        # Unknown to older firmware: the status only (the first of the notes' two behaviours).
        ("legacy", C.RETURN_PRICES, DC1(S.RESET)),
        ("legacy", C.SUSPEND, DC1(S.RESET)),
        ("legacy", C.RESUME, DC1(S.RESET)),
        ("legacy", C.RETURN_PARAMETERS, DC7(2, 2, 2, 999_999, (92, 95))),
        ("milli", C.RETURN_PARAMETERS, DC7(3, 2, 3, 999_999, (92, 95))),
        # ... or nothing at all.
        ("bare", C.RETURN_PRICES, None),
        ("bare", C.RETURN_PARAMETERS, None),
        ("bare", C.RETURN_IDENTITY, None),
    ],
)
def test_what_each_profile_answers(spec: str, command: PumpCommand, answer: object) -> None:
    p = programmed(spec)
    p.apply([CD1(command)], 1.0)
    assert p.take_replies(1.0) == (() if answer is None else (answer,))
    if answer is None or isinstance(answer, DC1):
        assert any(command.name in r for r in p.refused)


def test_no_status_8_without_suspend() -> None:
    for spec, suspended in (("rev211", S.SUSPENDED), ("legacy", S.FILLING)):
        p = programmed(spec)
        p.apply([CD1(C.AUTHORIZE)], 1.0)
        p.lift(1, 1.0)
        p.apply([CD1(C.SUSPEND)], 5.0)
        assert p.status == suspended, spec
        p.apply([CD1(C.RESUME)], 6.0)
        assert p.status == S.FILLING, spec


def test_totals_in_16_or_6_bytes() -> None:
    for spec in ("rev211", "legacy"):
        p = programmed(spec)
        fill(p, 1, 1000, 1.0)
        p.apply([CD101(0x01), CD101(0x11), CD101(0x19)], 200.0)
        replies = p.take_replies(200.0)
        if spec == "rev211":  # the total, the number of fillings, 0
            assert replies == (DC101(0x01, 1000, 1, 0), DC101(0x11, 7500, 1, 0),
                               DC101(0x19, 7500, 1, 0))
        else:
            assert replies == (DC101(0x01, 1000, None, None), DC101(0x11, 7500, None, None),
                               DC101(0x19, 7500, None, None))
            assert all(len(r.to_raw().data) == 6 for r in replies)


def test_pump_wide_totals_and_amount_in_volume_counter() -> None:
    """The open-source model the notes warn about: nozzle 2's counter moves with nozzle 1's
    filling, and a volume counter reads money."""
    honest = programmed("rev211")
    wide = programmed("rev211+pump-wide-totals")
    money = programmed("rev211+amount-in-volume-counter")
    for p in (honest, wide, money):
        now = fill(p, 1, 200, 1.0)  # 2.00 L on nozzle 1 = 15.00
        p.apply([CD101(0x01), CD101(0x02), CD101(0x12), CD101(0x09)], now)
    totals = [(r.counter, r.total) for r in honest.take_replies(300.0)]  # type: ignore[union-attr]
    assert totals == [(0x01, 200), (0x02, 0), (0x12, 0), (0x09, 200)]
    totals = [(r.counter, r.total) for r in wide.take_replies(300.0)]  # type: ignore[union-attr]
    assert totals == [(0x01, 200), (0x02, 200), (0x12, 1500), (0x09, 200)]
    totals = [(r.counter, r.total) for r in money.take_replies(300.0)]  # type: ignore[union-attr]
    assert totals == [(0x01, 1500), (0x02, 0), (0x12, 0), (0x09, 200)]


def test_totals_reply_without_a_pump() -> None:
    totals = {1: (100, 750), 2: (50, 400)}
    fillings = {1: 2, 2: 1}
    rev211 = Firmware()
    assert totals_reply(rev211, 0x02, totals, fillings) == DC101(0x02, 50, 1, 0)
    assert totals_reply(rev211, 0x19, totals, fillings) == DC101(0x19, 1150, 3, 0)
    assert totals_reply(rev211, 0x05, totals, fillings) == DC101(0x05, 0, 0, 0)  # no nozzle 5
    assert totals_reply(rev211, 0x0A, totals, fillings) is None
    legacy = parse_firmware("legacy+pump-wide-totals")
    assert totals_reply(legacy, 0x02, totals, fillings) == DC101(0x02, 150, None, None)


def test_status_with_nozzle() -> None:
    p = programmed("rev211+status-with-nozzle")
    p.apply([CD1(C.AUTHORIZE)], 1.0)
    assert p.take_replies(1.0) == (DC1(S.AUTHORIZED), DC3(0, 0, False))
    p.lift(2, 2.0)
    assert p.take_replies(2.0)[:2] == (DC1(S.FILLING), DC3(800, 2, True))
    assert programmed("rev211").take_replies(3.0) == ()


# ----------------------------------------------------------------------------- the link layer


def line(spec: str) -> DartSlave:
    return DartSlave([pump(spec)])


def answer(slave: DartSlave, data: bytes) -> bytes:
    slave.receive_data(data, 0.0)
    return slave.data_to_send(0.0)


def frame(data: bytes) -> ControlFrame | DataFrame:
    (decoded,) = FrameDecoder().feed(data)
    assert not isinstance(decoded, Exception)
    return decoded


POLL = ControlFrame(0x50, Control.POLL).to_bytes()


def ackpoll(txn: int) -> bytes:
    return ControlFrame(0x50, Control.ACKPOLL, txn).to_bytes()


def ack(txn: int) -> bytes:
    return ControlFrame(0x50, Control.ACK, txn).to_bytes()


def block(txn: int, *commands: Command) -> bytes:
    return DataFrame(0x50, txn, tuple(c.to_raw() for c in commands)).to_bytes()


def test_no_ackpoll_resends_forever_and_ack_then_poll_satisfies_it() -> None:
    slave = line("legacy")
    first = answer(slave, POLL)
    assert isinstance(frame(first), DataFrame)
    for _ in range(50):
        assert answer(slave, ackpoll(0)) == first  # taken as a POLL: the same block, same TX#
    assert slave.stats.ackpolls_ignored == 50
    assert answer(slave, ack(0)) == b""
    assert answer(slave, POLL) == bytes.fromhex("50 70 FA")  # EOT: nothing more to say


def test_rev211_takes_ackpoll() -> None:
    slave = line("rev211")
    answer(slave, POLL)
    assert answer(slave, ackpoll(0)) == bytes.fromhex("50 70 FA")
    assert slave.stats.ackpolls_ignored == 0


@pytest.mark.parametrize(
    ("spec", "status", "allowed"),
    [
        ("rev211", S.AUTHORIZED, frozenset({2})),
        ("rev211+first-command-only", S.RESET, frozenset({2})),
        ("rev211+ignores-multi-command", S.RESET, None),
    ],
)
def test_multi_command_blocks(spec: str, status: PumpStatus, allowed: object) -> None:
    """CD2 + CD4 + AUTHORIZE in one block: every pump ACKs it; not every pump carries it out."""
    slave = DartSlave([programmed(spec)])
    p = slave.pumps[0x50]
    assert answer(slave, block(1, CD2((2,)), CD4(10000), CD1(C.AUTHORIZE))) == ack(1)
    assert p.status == status and p.allowed == allowed
    # One command per block, as the working controllers send, works on all of them.
    for txn, command in enumerate((CD2((2,)), CD4(10000), CD1(C.AUTHORIZE)), start=2):
        assert answer(slave, block(txn, command)) == ack(txn)
    assert p.status == S.AUTHORIZED and p.preset_amount == 10000


@pytest.mark.parametrize(("spec", "after_f"), [("rev211", 1), ("rev211+tx-wraps-to-zero", 0)])
def test_txn_wrap(spec: str, after_f: int) -> None:
    slave = line(spec)
    txns = []
    for _ in range(17):
        slave.pumps[0x50].raise_alarm(1, 0.0)
        sent = frame(answer(slave, POLL))
        assert isinstance(sent, DataFrame)
        txns.append(sent.txn)
        answer(slave, ack(sent.txn))
    assert txns[:16] == list(range(16))
    assert txns[16] == after_f


# ----------------------------------------------------------------------------- changing firmware


def test_set_firmware_restarts_the_pump_and_keeps_its_litres(clock: FakeClock) -> None:
    sim = Simulator(make_pumps(1), clock=clock)
    p = sim.pumps[0x50]
    clock.now = fill(programmed_in(sim), 1, 1333, clock.now)
    assert p.totals(1) == (1333, 9998)
    firmware = sim.set_firmware(0x50, "milli")
    assert firmware == parse_firmware("milli") and p.firmware == firmware
    assert p.status == S.NOT_PROGRAMMED and not p.prices  # restarted
    assert p.decimals == Decimals(3, 2, 3)
    assert p.totals(1) == (13330, 9998)  # 13.33 L kept, now counted in millilitres
    assert p.fills[0].volume_decimal == Decimal("13.33")
    sim.set_firmware(0x50, "legacy")
    assert p.decimals == Decimals() and p.totals(1) == (1333, 9998)
    with pytest.raises(SimulationError):
        sim.set_firmware(0x50, "rev9")


def programmed_in(sim: Simulator) -> SimulatedPump:
    p = sim.pumps[0x50]
    p.apply([CD5((750, 800))], sim.clock())
    p.take_replies(sim.clock())
    return p


async def test_firmware_over_the_control_api(clock: FakeClock) -> None:
    sim = Simulator(make_pumps(2, firmware=FirmwarePlan.parse(["0x51=legacy"])), clock=clock)
    transport = httpx.ASGITransport(app=create_app(sim))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        listed = (await client.get("/firmware")).json()
        names = [p["name"] for p in listed["profiles"]]
        assert names[:4] == ["rev211", "legacy", "milli", "bare"]
        milli = listed["profiles"][2]
        assert milli["decimals"] == {"volume": 3, "amount": 2, "price": 3}
        assert {q["name"] for q in listed["quirks"]} == {q.value for q in Quirk}
        state = (await client.get("/state")).json()["pumps"]
        assert [p["firmware"] for p in state] == ["rev211", "legacy"]
        assert "no-ackpoll" in state[1]["quirks"]
        changed = await client.post("/pumps/0x50/firmware",
                                    json={"firmware": "milli+pump-wide-totals"})
        assert changed.status_code == 200
        assert changed.json()["firmware"] == "milli+pump-wide-totals"
        assert changed.json()["decimals"] == {"volume": 3, "amount": 2, "price": 3}
        for body in ({"firmware": "rev9"}, {"firmware": ""}, {"profile": "legacy"}):
            refused = await client.post("/pumps/0x50/firmware", json=body)
            assert refused.status_code == 400, body
            assert refused.json()["error"]["code"] == "invalid_request"
        missing = await client.post("/pumps/0x5F/firmware", json={"firmware": "legacy"})
        assert missing.status_code == 404
    assert sim.pumps[0x50].firmware.spec == "milli+pump-wide-totals"


@pytest.mark.parametrize(
    "argv",
    [
        ["--firmware", "rev9"],
        ["--firmware", "legacy+telepathy"],
        ["--firmware", "0x55=legacy"],  # no pump there
        ["--firmware", "pump=legacy"],
    ],
)
def test_bad_firmware_options_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--pumps", "2", *argv]) == 2
    error = capsys.readouterr().err
    assert error.startswith("forecourt simulate:") and ("firmware" in error or "address" in error)
