"""Helpers shared by the integration tests: free ports, station configs, waiting on real things."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PumpSpec:
    number: int
    address: int
    nozzles: Sequence[tuple[int, int, str]]  # (station nozzle number, logical, grade)
    authorize: str = "attendant"


@dataclass
class StationSpec:
    port_url: str
    db: Path
    api_port: int
    pumps: Sequence[PumpSpec] = field(default_factory=lambda: [
        PumpSpec(1, 0x50, [(1, 1, "92"), (2, 2, "95")]),
        PumpSpec(2, 0x51, [(3, 1, "92"), (4, 2, "0")], authorize="auto"),
    ])
    # The simulator shares the test's event loop on a 2-core machine: more slack than the wire.
    reply_timeout_ms: int = 100
    broker: str | None = None  # [sync] when set
    cloud_public_key: Path | None = None
    lift_timeout_seconds: int | None = None
    max_flow_lpm: int = 1000

    def toml(self) -> str:
        out = [
            '[station]\nid = "XJ-TEST-0001"\nname = "测试加油站"\ntimezone = "Asia/Shanghai"\n',
            f'[storage]\npath = "{self.db}"\n',
            f'[api]\nlisten = "127.0.0.1:{self.api_port}"\n',
            '[[grades]]\ncode = "92"\nname = "92号汽油"\nprice = "7.50"\n',
            '[[grades]]\ncode = "95"\nname = "95号汽油"\nprice = "8.02"\n',
            '[[grades]]\ncode = "0"\nname = "0号柴油"\nprice = "7.16"\n',
            f'[[lines]]\nid = "line1"\nport = "{self.port_url}"\nprotocol = "dart"\n'
            f'baudrate = 9600\nparity = "O"\nreply_timeout_ms = {self.reply_timeout_ms}\n',
        ]
        # The simulators fill at 600 L/min to keep tests short: faster than any real pump,
        # so the impossible-figures check is told so.
        controller = ['[controller]', f'max_flow_litres_per_minute = "{self.max_flow_lpm}"']
        if self.lift_timeout_seconds is not None:
            controller.append(f'lift_timeout_seconds = {self.lift_timeout_seconds}')
        out.append("\n".join(controller) + "\n")
        if self.broker is not None:
            out.append(f'[sync]\nbroker = "{self.broker}"\n'
                       f'cloud_public_key = "{self.cloud_public_key}"\n')
        for pump in self.pumps:
            out.append(f'[[pumps]]\nnumber = {pump.number}\nline = "line1"\n'
                       f'address = {pump.address:#x}\nauthorize = "{pump.authorize}"\n')
            for number, logical, grade in pump.nozzles:
                out.append(f'[[pumps.nozzles]]\nnumber = {number}\nlogical = {logical}\n'
                           f'grade = "{grade}"\n')
        return "\n".join(out)


async def wait_until(predicate: Callable[[], Awaitable[T | None] | T | None], *,
                     timeout: float = 10.0, interval: float = 0.05, what: str = "condition") -> T:
    """Poll a real system until ``predicate`` returns something truthy; fail with ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        result = predicate()
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        last = result
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
