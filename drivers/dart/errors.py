"""Error tree of the Wayne DART driver (PROTOCOLS.md, "Wayne DART pump interface").

``DartProtocolError`` means the bytes on the wire were wrong (the peer's fault or line noise);
``DartCommandError`` means a command block did not reach the pump (NAKed, pump offline, line
down, timeout). Both carry data so that higher layers can translate them without parsing text.
"""

from __future__ import annotations


class DartError(Exception):
    """Base class of every error raised by the DART driver."""


class DartProtocolError(DartError):
    """Malformed bytes from the wire: bad CRC, bad length, bad BCD, unknown control byte."""

    def __init__(self, reason: str, data: bytes = b"") -> None:
        self.reason = reason
        self.data = bytes(data)
        super().__init__(f"{reason}: {self.data.hex(' ')}" if self.data else reason)


class DartCommandError(DartError):
    """A command block was not acknowledged by the pump at ``address``."""

    def __init__(self, address: int, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(f"pump 0x{address:02X}: {reason}")
