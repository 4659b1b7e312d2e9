"""The I/O shell: one Modbus connection to a gauge bus, through pymodbus's asyncio clients.

One owner per connection: gauges that share a serial port (probes on one RS-485 run, each its
own device id) or a TCP endpoint share one `ModbusLink`, whose lock keeps one request in flight.
pymodbus's own retries and reconnect loop are switched off (retries=0, reconnect_delay=0):
the poller decides when to try again and when a gauge is offline, so a dead gauge costs one
bounded request per poll and never a hang. Every library error leaves as a `GaugeError`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .registers import MAX_READ, Block, RegisterKind
from .url import GaugeUrl, Transport

log = logging.getLogger(__name__)

# Beyond the request timeout, how long a read may take before it is abandoned anyway: a
# safety net against a library that never returns, which must not stall the poller.
_GUARD = 1.0


class GaugeError(Exception):
    """A gauge read that failed; `reason` is a short code for logs and alerts."""

    reason = "error"


class GaugeUnreachable(GaugeError):
    """No connection: the port cannot be opened, the host refuses or the link dropped."""

    reason = "unreachable"


class GaugeTimeout(GaugeError):
    """The request went out and no answer came in time."""

    reason = "timeout"


class GaugeRefused(GaugeError):
    """The gauge answered with a Modbus exception (Modbus Application Protocol section 7)."""

    reason = "refused"

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


# Section 7, the exception codes a gauge can answer with.
EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    6: "device busy",
    10: "gateway path unavailable",
    11: "gateway target did not respond",
}


class ModbusLink:
    """A connection to one endpoint; opened on the first read and after any failure."""

    def __init__(self, url: GaugeUrl, *, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self._client: Any = None  # a pymodbus asyncio client, made on the first read
        self._lock = asyncio.Lock()

    def _new_client(self) -> Any:
        # pymodbus is loaded by a station with gauges only (about 10 MB a daemon otherwise
        # carries for nothing).
        from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
        from pymodbus.framer import FramerType

        url = self.url
        common: dict[str, Any] = {"timeout": self.timeout, "retries": 0, "reconnect_delay": 0}
        if url.transport is Transport.RTU:
            return AsyncModbusSerialClient(
                url.device, framer=FramerType.RTU, baudrate=url.baudrate, parity=url.parity,
                bytesize=url.bytesize, stopbits=url.stopbits, **common,
            )  # fmt: skip
        framer = FramerType.SOCKET if url.transport is Transport.TCP else FramerType.RTU
        return AsyncModbusTcpClient(url.host, port=url.port, framer=framer, **common)

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    async def read(self, kind: RegisterKind, device_id: int, block: Block) -> list[int]:
        """`block.count` registers from `block.start` of the gauge at `device_id`."""
        if not 1 <= block.count <= MAX_READ:
            raise ValueError(f"a read covers 1..{MAX_READ} registers, not {block.count}")
        async with self._lock:
            try:
                async with asyncio.timeout(self.timeout * 2 + _GUARD):
                    return await self._read(kind, device_id, block)
            except TimeoutError:
                self._drop()
                raise GaugeTimeout(f"{self.url}: no answer in {self.timeout:g} s") from None
            except GaugeRefused:
                raise
            except GaugeError:
                self._drop()
                raise

    async def _read(self, kind: RegisterKind, device_id: int, block: Block) -> list[int]:
        from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

        if self._client is None:
            self._client = self._new_client()
        client = self._client
        if not client.connected and not await client.connect():
            raise GaugeUnreachable(f"{self.url}: cannot connect")
        read = (
            client.read_holding_registers
            if kind is RegisterKind.HOLDING
            else client.read_input_registers
        )
        try:
            response = await read(block.start, count=block.count, device_id=device_id)
        except ConnectionException as exc:
            raise GaugeUnreachable(f"{self.url}: connection lost ({exc})") from None
        except ModbusIOException:
            # pymodbus raises this when the answer did not come in time (or came garbled).
            raise GaugeTimeout(f"{self.url}: device {device_id} did not answer") from None
        except ModbusException as exc:
            raise GaugeError(f"{self.url}: {exc}") from None
        if response.isError():
            code = int(getattr(response, "exception_code", 0))
            name = EXCEPTION_NAMES.get(code, f"exception {code}")
            raise GaugeRefused(
                code, f"{self.url}: device {device_id} refused to read {kind} registers "
                f"{block.start}..{block.start + block.count - 1}: {name}",
            )  # fmt: skip
        registers = list(response.registers)
        if len(registers) < block.count:
            raise GaugeError(f"{self.url}: asked for {block.count} registers, got {len(registers)}")
        return registers[: block.count]

    def _drop(self) -> None:
        # After a timeout a late answer could be taken for the next request's: start afresh.
        if self._client is not None:
            self._client.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
