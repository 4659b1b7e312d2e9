"""The 10-byte UDP heartbeat (PROTOCOLS.md, IFSF "Heartbeat").

Every node broadcasts one every heartbeat interval (10 s at PetroChina sites) to UDP port 3486
by default (PetroChina's own boards use 3485)::

    IPv4 address (4) | TCP port it listens on (2, big-endian) | subnet (1) | node (1)
    | message code 0x01 (1) | status (1, non-zero: "configuration needed")
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from .address import Lna
from .errors import IfsfLocalError, IfsfProtocolError

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL",
    "DEFAULT_UDP_PORT",
    "HEARTBEAT_CODE",
    "HEARTBEAT_SIZE",
    "MISSED_HEARTBEATS",
    "Heartbeat",
]

HEARTBEAT_SIZE = 10
HEARTBEAT_CODE = 0x01
DEFAULT_UDP_PORT = 3486
DEFAULT_HEARTBEAT_INTERVAL = 10.0
MISSED_HEARTBEATS = 3
"""A node is offline after this many heartbeat intervals without one."""


@dataclass(frozen=True)
class Heartbeat:
    ip: IPv4Address
    port: int  # the TCP port the node listens on
    node: Lna
    status: int = 0  # non-zero: the node needs configuration (Open_FP)
    code: int = HEARTBEAT_CODE

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 0xFFFF:
            raise IfsfLocalError(f"a TCP port is 0..65535, not {self.port}")
        if not 0 <= self.status <= 0xFF or not 0 <= self.code <= 0xFF:
            raise IfsfLocalError("status and code are one byte each")

    @property
    def configuration_needed(self) -> bool:
        return self.status != 0

    def to_bytes(self) -> bytes:
        return (
            self.ip.packed
            + self.port.to_bytes(2, "big")
            + self.node.to_bytes()
            + bytes((self.code, self.status))
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Heartbeat:
        if len(data) != HEARTBEAT_SIZE:
            raise IfsfProtocolError(f"a heartbeat is {HEARTBEAT_SIZE} bytes, not {len(data)}",
                                    data)
        if data[8] != HEARTBEAT_CODE:
            raise IfsfProtocolError(f"heartbeat message code {data[8]:#04x}, not 0x01", data)
        return cls(
            IPv4Address(bytes(data[0:4])),
            int.from_bytes(data[4:6], "big"),
            Lna(data[6], data[7]),
            data[9],
            data[8],
        )
