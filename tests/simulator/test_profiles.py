"""Firmware profiles over a real TCP line, driven frame by frame through the station's codec.

Each test is a master written here on purpose, without the station's bus core: it sends what the
notes say a controller sends (ACK then POLL, one command per block), or what they warn about
(ACKPOLL), and checks the bytes the simulated pumps give back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import pytest

from drivers.dart.codec import Control, ControlFrame, DataFrame, Frame, FrameDecoder
from drivers.dart.errors import DartProtocolError
from drivers.dart.transactions import (
    CD1,
    CD3,
    CD5,
    CD101,
    DC1,
    DC2,
    DC3,
    DC7,
    DC101,
    DC103,
    Command,
    PumpCommand,
    PumpStatus,
    Reply,
    UnknownTransaction,
    decode_replies,
)
from simulator.control import Simulator, run_simulator
from simulator.firmware import FirmwarePlan

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")

C = PumpCommand
S = PumpStatus
ANSWER_WITHIN = 2.0  # a bound on waiting for bytes that must come, not a timing assertion


class Master:
    """One TCP connection to the simulated line, speaking DART through the codec."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = FrameDecoder()
        self.pending: list[Frame] = []
        self.txn: dict[int, int] = {}  # our next TX# per pump: 0 first (we just started)

    async def send(self, *frames: Frame) -> None:
        self.writer.write(b"".join(f.to_bytes() for f in frames))
        await self.writer.drain()

    async def receive(self) -> Frame:
        while not self.pending:
            chunk = await asyncio.wait_for(self.reader.read(512), ANSWER_WITHIN)
            assert chunk, "the simulator closed the line"
            for item in self.decoder.feed(chunk):
                assert not isinstance(item, DartProtocolError), item
                self.pending.append(item)
        return self.pending.pop(0)

    async def ask(self, frame: Frame) -> Frame:
        await self.send(frame)
        return await self.receive()

    async def poll(self, address: int) -> Frame:
        return await self.ask(ControlFrame(address, Control.POLL))

    async def command(self, address: int, *commands: Command) -> None:
        """One block, ACKed by the pump with its TX#."""
        txn = self.txn.get(address, 0)
        self.txn[address] = txn % 15 + 1
        block = DataFrame(address, txn, tuple(c.to_raw() for c in commands))
        assert await self.ask(block) == ControlFrame(address, Control.ACK, txn)

    async def replies(self, address: int) -> list[Reply]:
        """POLL, and ACK then POLL again, until the pump says EOT: everything it had to say."""
        said: list[Reply] = []
        while isinstance(frame := await self.poll(address), DataFrame):
            for reply in decode_replies(frame.transactions):
                assert not isinstance(reply, UnknownTransaction), reply
                said.append(reply)
            await self.send(ControlFrame(address, Control.ACK, frame.txn))
        assert frame == ControlFrame(address, Control.EOT, frame.txn)
        return said

    async def until_status(self, address: int, status: PumpStatus) -> list[Reply]:
        """Read the pump until it reports `status` (bounded: a wait on a condition)."""
        said: list[Reply] = []
        deadline = time.monotonic() + 10 * ANSWER_WITHIN
        while DC1(status) not in said:
            assert time.monotonic() < deadline, f"no {status.name} in {said}"
            said.extend(await self.replies(address))
            await asyncio.sleep(0.01)
        return said


@asynccontextmanager
async def line(firmware: FirmwarePlan, pumps: int = 1) -> AsyncIterator[tuple[Simulator, Master]]:
    async with run_simulator(pumps, firmware=firmware) as sim:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
        try:
            yield sim, Master(reader, writer)
        finally:
            writer.close()
            await writer.wait_closed()


def plan(*specs: str) -> FirmwarePlan:
    return FirmwarePlan.parse(specs)


async def program(master: Master, address: int, prices: tuple[int, ...]) -> None:
    """Prices, then RESET: one command per block, as the working controllers send."""
    await master.command(address, CD5(prices))
    await master.until_status(address, S.FILLING_COMPLETED)
    await master.command(address, CD1(C.RESET))
    await master.until_status(address, S.RESET)


# ----------------------------------------------------------------------------- ACKPOLL


async def test_legacy_resends_its_block_forever_after_ackpoll() -> None:
    """A pump that ignores ACKPOLL (as one open-source model does) sends the same block again at
    every ACKPOLL, so a master that only ACKPOLLs never gets past it; ACK then POLL does."""
    async with line(plan("legacy")) as (sim, master):
        first = await master.poll(0x50)
        assert isinstance(first, DataFrame)
        for _ in range(30):
            again = await master.ask(ControlFrame(0x50, Control.ACKPOLL, first.txn))
            assert again == first
        assert sim.slave.stats.ackpolls_ignored == 30
        await master.send(ControlFrame(0x50, Control.ACK, first.txn))
        assert await master.poll(0x50) == ControlFrame(0x50, Control.EOT, first.txn)


async def test_one_line_mixes_profiles() -> None:
    """rev 2.11 at 0x50 takes the ACKPOLL; legacy at 0x51, on the same line, does not."""
    async with line(plan("0x51=legacy"), pumps=2) as (sim, master):
        for address in (0x50, 0x51):
            first = await master.poll(address)
            assert isinstance(first, DataFrame)
            answered = await master.ask(ControlFrame(address, Control.ACKPOLL, first.txn))
            if address == 0x50:
                assert answered == ControlFrame(0x50, Control.EOT, first.txn)
            else:
                assert answered == first
        assert [p["firmware"] for p in sim.state()["pumps"]] == ["rev211", "legacy"]


# ----------------------------------------------------------------------------- a sale per profile


async def sale(sim: Simulator, master: Master, volume: int) -> list[Reply]:
    """Preset `volume`, authorize, lift nozzle 1, fill to the preset: what the pump said."""
    await master.command(0x50, CD3(volume))
    await master.command(0x50, CD1(C.AUTHORIZE))
    await master.until_status(0x50, S.AUTHORIZED)
    sim.set_flow(0x50, Decimal(600))
    sim.lift(0x50, 1)
    said = await master.until_status(0x50, S.MAX_REACHED)
    sim.hang(0x50, 1)
    return said + await master.replies(0x50)


async def test_legacy_sells_and_answers_what_it_knows() -> None:
    async with line(plan("legacy")) as (sim, master):
        await program(master, 0x50, (750, 800))
        # No price read-back: CD1 0F is ACKed and answered with the status only.
        await master.command(0x50, CD1(C.RETURN_PRICES))
        assert await master.replies(0x50) == [DC1(S.RESET)]
        said = await sale(sim, master, 200)
        assert DC2(200, 1500) in said
        assert DC3(750, 1, True) in said  # the price the pump shows at the lift
        # Totals in 6 bytes: the counter and one total.
        await master.command(0x50, CD101(0x01))
        assert await master.replies(0x50) == [DC101(0x01, 200, None, None)]
        (fill,) = sim.fills()
        assert (fill.volume, fill.amount) == (200, 1500)


async def test_legacy_has_no_suspend() -> None:
    async with line(plan("legacy")) as (sim, master):
        await program(master, 0x50, (750, 800))
        await master.command(0x50, CD1(C.AUTHORIZE))
        sim.set_flow(0x50, Decimal(1))
        sim.lift(0x50, 1)
        await master.until_status(0x50, S.FILLING)
        await master.command(0x50, CD1(C.SUSPEND))
        said = await master.replies(0x50)
        assert DC1(S.FILLING) in said and DC1(S.SUSPENDED) not in said
        assert sim.pumps[0x50].status == S.FILLING


async def test_rev211_suspends_and_reads_prices_back() -> None:
    async with line(plan("rev211")) as (sim, master):
        await program(master, 0x50, (750, 800))
        await master.command(0x50, CD1(C.RETURN_PRICES))
        assert await master.replies(0x50) == [DC103((750, 800))]
        await master.command(0x50, CD1(C.AUTHORIZE))
        sim.set_flow(0x50, Decimal(1))
        sim.lift(0x50, 1)
        await master.until_status(0x50, S.FILLING)
        await master.command(0x50, CD1(C.SUSPEND))
        await master.until_status(0x50, S.SUSPENDED)
        await master.command(0x50, CD1(C.RESUME))
        await master.until_status(0x50, S.FILLING)


async def test_milli_reports_three_decimals_and_sells_in_millilitres() -> None:
    """1.211 L at 1.539 = 1.86 (PROTOCOLS.md): the pump's DC7 says 3/2/3, whatever was set."""
    async with line(plan("milli")) as (sim, master):
        await master.command(0x50, CD1(C.RETURN_PARAMETERS))
        (dc1, dc7) = await master.replies(0x50)
        assert dc1 == DC1(S.NOT_PROGRAMMED)
        assert isinstance(dc7, DC7) and (dc7.volume_decimals, dc7.amount_decimals,
                                         dc7.price_decimals) == (3, 2, 3)
        await program(master, 0x50, (1539, 1600))
        said = await sale(sim, master, 1211)
        assert DC2(1211, 186) in said
        (fill,) = sim.fills()
        assert (fill.volume_decimal, fill.amount_decimal, fill.price_decimal) == (
            Decimal("1.211"),
            Decimal("1.86"),
            Decimal("1.539"),
        )
        await master.command(0x50, CD101(0x01))
        assert await master.replies(0x50) == [DC101(0x01, 1211, 1, 0)]


async def test_bare_answers_only_what_a_sale_needs() -> None:
    async with line(plan("bare")) as (sim, master):
        await master.replies(0x50)
        for command in (C.RETURN_PARAMETERS, C.RETURN_IDENTITY, C.RETURN_PRICES, C.SUSPEND):
            await master.command(0x50, CD1(command))
            assert await master.replies(0x50) == [], command  # ACKed, then nothing to say
        await program(master, 0x50, (750, 800))
        said = await sale(sim, master, 100)
        assert DC2(100, 750) in said


async def test_pump_wide_counter_moves_every_nozzle() -> None:
    """The counter of nozzle 2 answers the pump's sum: a totals jump on a nozzle that never
    filled, which is why a jump alone is never a sale."""
    async with line(plan("rev211+pump-wide-totals")) as (sim, master):
        await program(master, 0x50, (750, 800))
        await sale(sim, master, 200)
        await master.command(0x50, CD101(0x02))
        assert await master.replies(0x50) == [DC101(0x02, 200, 1, 0)]
        assert sim.fills()[0].nozzle == 1


async def test_first_command_only_takes_the_first_of_a_block() -> None:
    async with line(plan("rev211+first-command-only")) as (sim, master):
        await program(master, 0x50, (750, 800))
        await master.command(0x50, CD3(200), CD1(C.AUTHORIZE))  # ACKed...
        assert await master.replies(0x50) == []  # ...and not authorized
        assert sim.pumps[0x50].preset_volume == 200 and sim.pumps[0x50].status == S.RESET
        await master.command(0x50, CD1(C.AUTHORIZE))
        assert await master.replies(0x50) == [DC1(S.AUTHORIZED)]
