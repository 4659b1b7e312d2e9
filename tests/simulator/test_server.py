"""The line served for real: TCP and pty, paced and unpaced."""

from __future__ import annotations

import asyncio
import os
import time
import tty

import pytest

from drivers.dart.codec import Control, ControlFrame, DataFrame, FrameDecoder
from drivers.dart.transactions import CD1, DC1, PumpCommand, PumpStatus, decode_replies
from simulator.control import run_simulator
from simulator.pump import SimulatedPump
from simulator.server import LineEngine, wire_time
from simulator.slave import DartSlave

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")

CD1_STATUS_TO_51 = bytes.fromhex("51 35 01 01 00 A2 50 03 FA")  # real capture, TX# 5


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes, frames: int = 1
) -> list[object]:
    writer.write(data)
    await writer.drain()
    decoder = FrameDecoder()
    got: list[object] = []
    while len(got) < frames:
        chunk = await asyncio.wait_for(reader.read(256), 2.0)
        assert chunk, "connection closed"
        got.extend(decoder.feed(chunk))
    return got


async def test_status_over_a_real_tcp_connection() -> None:
    async with run_simulator(2) as sim:
        assert sim.url == f"socket://127.0.0.1:{sim.port}"
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
        try:
            assert await exchange(reader, writer, CD1_STATUS_TO_51) == [
                ControlFrame(0x51, Control.ACK, 5)
            ]
            (reply,) = await exchange(reader, writer, bytes.fromhex("51 20 FA"))
            assert isinstance(reply, DataFrame) and reply.address == 0x51
            assert decode_replies(reply.transactions) == (DC1(PumpStatus.NOT_PROGRAMMED),)
            # And a command that changes something, through the codec this time.
            await exchange(
                reader,
                writer,
                ControlFrame(0x51, Control.ACK, reply.txn).to_bytes()
                + DataFrame(0x51, 6, (CD1(PumpCommand.RESET).to_raw(),)).to_bytes(),
            )
        finally:
            writer.close()
            await writer.wait_closed()
        # RESET is refused before prices: the pump ACKed the block but stays not programmed.
        assert sim.pumps[0x51].status == PumpStatus.NOT_PROGRAMMED
        assert sim.pumps[0x51].refused


async def test_new_connection_replaces_the_old_one() -> None:
    async with run_simulator(1) as sim:
        old_reader, old_writer = await asyncio.open_connection("127.0.0.1", sim.port)
        await exchange(old_reader, old_writer, bytes.fromhex("50 20 FA"))
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
        assert await asyncio.wait_for(old_reader.read(10), 2.0) == b""  # closed by the server
        (reply,) = await exchange(reader, writer, bytes.fromhex("50 20 FA"))
        assert isinstance(reply, DataFrame) and reply.txn == 0  # never ACKed: sent again
        for w in (old_writer, writer):
            w.close()
            await w.wait_closed()


async def test_silent_pump_over_tcp() -> None:
    async with run_simulator(1) as sim:
        sim.set_fault(0x50, silent=True)
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
        writer.write(bytes.fromhex("50 20 FA"))
        await writer.drain()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(10), 0.2)
        writer.close()
        await writer.wait_closed()


class _Sink:
    def __init__(self) -> None:
        self.chunks: list[tuple[float, bytes]] = []

    def write(self, data: bytes) -> None:
        self.chunks.append((time.monotonic(), data))

    async def drain(self) -> None:
        return None


async def test_line_faithful_pacing_takes_the_wire_time() -> None:
    engine = LineEngine(DartSlave([]), baudrate=9600, line_faithful=True)
    sink = _Sink()
    data = bytes(range(20))
    start = time.monotonic()
    await engine.write_paced(sink, data)
    took = sink.chunks[-1][0] - start
    assert wire_time(20, 9600) == pytest.approx(0.0229, abs=1e-4)
    assert took >= 0.022  # 20 bytes x 11 bits at 9600 baud
    assert took < 1.0  # generous: a loaded CI machine may oversleep
    assert b"".join(c for _, c in sink.chunks) == data
    assert len(sink.chunks) > 1  # it trickled out, not in one write


async def test_unpaced_answers_in_one_write() -> None:
    engine = LineEngine(DartSlave([SimulatedPump(0x50, {1: 92})]))
    sink = _Sink()
    engine.received(bytes.fromhex("50 20 FA"))
    task = asyncio.create_task(engine.run(sink), name="engine-under-test")
    for _ in range(100):
        await asyncio.sleep(0)
        if sink.chunks:
            break
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    (chunk,) = [c for _, c in sink.chunks]
    (frame,) = FrameDecoder().feed(chunk)
    assert isinstance(frame, DataFrame) and frame.address == 0x50


async def test_line_over_a_pty() -> None:
    async with run_simulator(1, pty=True) as sim:
        assert sim.url.startswith("/dev/")
        fd = os.open(sim.url, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            tty.setraw(fd)
            os.write(fd, bytes.fromhex("50 20 FA"))
            decoder = FrameDecoder()
            frames: list[object] = []
            for _ in range(200):
                await asyncio.sleep(0.01)
                try:
                    frames.extend(decoder.feed(os.read(fd, 256)))
                except BlockingIOError:
                    continue
                if frames:
                    break
            (reply,) = frames
            assert isinstance(reply, DataFrame)
            assert decode_replies(reply.transactions) == (DC1(PumpStatus.NOT_PROGRAMMED),)
        finally:
            os.close(fd)
