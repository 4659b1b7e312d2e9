"""DART line shell over real transports: a TCP pump server (``socket://``) and a pty."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from drivers.dart import (
    CD1,
    CD3,
    DC1,
    DartCommandError,
    DartLine,
    PumpCommand,
    PumpOffline,
    PumpOnline,
    PumpReplied,
    PumpStatus,
)
from drivers.dart.events import BusEvent

from .fake_pump import FakePump
from .pump_server import PtyPump, PumpServer


def make_line(url: str, addresses: list[int], **options: Any) -> DartLine:
    # A generous reply window for threads on a loaded CI machine, and quick reconnects.
    return DartLine(
        url, addresses, reply_timeout=0.2, reconnect_delay=0.05, reconnect_delay_max=0.2, **options
    )


WAIT = 5.0  # generous bound for a real thread and socket; the tests finish far sooner


async def wait_for(events: AsyncIterator[BusEvent], match: Callable[[BusEvent], bool]) -> BusEvent:
    async with asyncio.timeout(WAIT):
        async for event in events:
            if match(event):
                return event
    raise AssertionError("the line closed first")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_command_is_acked_and_replies_arrive() -> None:
    pump = FakePump(0x50)
    server = PumpServer(pump)
    try:
        async with make_line(server.url, [0x50], name="t1") as line:
            events = line.events()
            await wait_for(events, lambda e: e == PumpOnline(0x50))
            assert line.online == {0x50: True}
            await line.command(0x50, [CD3(2000), CD1(PumpCommand.AUTHORIZE)])
            with server.lock:
                assert pump.applied == [(CD3(2000), CD1(PumpCommand.AUTHORIZE))]
                pump.say(DC1(PumpStatus.AUTHORIZED))
            event = await wait_for(events, lambda e: isinstance(e, PumpReplied))
            assert event == PumpReplied(0x50, (DC1(PumpStatus.AUTHORIZED),))
            stats = line.stats
            assert stats.connected and stats.bus.exchanges > 2 and stats.port_failures == 0
        assert not any(t.name == "dart-t1" for t in threading.enumerate())
    finally:
        server.close()


async def test_server_gone_then_back() -> None:
    pump = FakePump(0x51)
    server = PumpServer(pump)
    port = server.port
    try:
        async with make_line(server.url, [0x51]) as line:
            events = line.events()
            await wait_for(events, lambda e: e == PumpOnline(0x51))
            server.close()
            await wait_for(events, lambda e: e == PumpOffline(0x51))
            assert line.online == {0x51: False}
            with pytest.raises(DartCommandError) as info:
                await line.command(0x51, [CD1(PumpCommand.STOP)])
            assert (info.value.address, info.value.reason) == (0x51, "offline")
            server = PumpServer(pump, port=port)
            await wait_for(events, lambda e: e == PumpOnline(0x51))
            await line.command(0x51, [CD1(PumpCommand.STOP)])
            assert line.stats.port_failures >= 1
    finally:
        server.close()


async def test_port_that_cannot_be_opened_is_retried_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="drivers.dart.line")
    url = f"socket://127.0.0.1:{free_port()}"
    async with make_line(url, [0x50, 0x51]) as line:
        events = line.events()
        await wait_for(events, lambda e: e == PumpOffline(0x51))
        with pytest.raises(DartCommandError, match="offline"):
            await line.command(0x50, [CD1(PumpCommand.RETURN_STATUS)])
        async with asyncio.timeout(WAIT):
            # A counter of the line's own thread, polled: there is no event for a retry.
            while line.stats.port_failures < 3:
                await asyncio.sleep(0.02)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1  # the first failure; repeats are at debug
    assert any(r.levelno == logging.DEBUG and "cannot open" in r.message for r in caplog.records)


async def test_closing_cuts_a_long_reconnect_wait_short() -> None:
    # LINE_RECONNECT sleeps on the line's stop flag: a minute's backoff does not hold up a stop.
    url = f"socket://127.0.0.1:{free_port()}"
    line = DartLine(url, [0x50], reconnect_delay=60.0, reconnect_delay_max=60.0)
    async with asyncio.timeout(WAIT):
        async with line:
            while line.stats.port_failures < 1:
                await asyncio.sleep(0.02)


async def test_command_timeout_and_events_end_on_close() -> None:
    pump = FakePump(0x50)
    server = PumpServer(pump)
    try:
        line = make_line(server.url, [0x50])
        async with line:
            events = line.events()
            await wait_for(events, lambda e: e == PumpOnline(0x50))
            with server.lock:
                pump.mute = True
            with pytest.raises(DartCommandError, match="timeout"):
                await line.command(0x50, [CD1(PumpCommand.RESET)], timeout=0.01)
        rest = [e async for e in events]  # the iterator ends once the line is closed
        assert all(not isinstance(e, PumpReplied) for e in rest)
        with pytest.raises(DartCommandError, match="not running"):
            await line.command(0x50, [CD1(PumpCommand.RESET)])
    finally:
        server.close()


async def test_pty_with_odd_parity() -> None:
    pump = PtyPump(FakePump(0x52))
    try:
        async with make_line(pump.path, [0x52], parity="O") as line:
            events = line.events()
            await wait_for(events, lambda e: e == PumpOnline(0x52))
            await line.command(0x52, [CD1(PumpCommand.AUTHORIZE)])
            with pump.lock:
                assert pump.pump.applied == [(CD1(PumpCommand.AUTHORIZE),)]
            assert line.stats.port_failures == 0
    finally:
        pump.close()
