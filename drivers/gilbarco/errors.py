"""Error tree of the Gilbarco two-wire driver (PROTOCOLS.md, "Gilbarco two-wire").

``GilbarcoProtocolError`` means the words on the wire were wrong (the pump's fault or line
noise): a bad checksum, a block of the wrong length, a digit word that is not a digit.
``GilbarcoCommandError`` means a request did not get the answer it needed (no answer, pump
offline, not ready for data, line down). Both carry data so that higher layers translate them
without parsing text.
"""

from __future__ import annotations

__all__ = ["GilbarcoCommandError", "GilbarcoError", "GilbarcoProtocolError"]


class GilbarcoError(Exception):
    """Base class of every error raised by the Gilbarco driver."""


class GilbarcoProtocolError(GilbarcoError):
    """Malformed words from the wire; ``reason`` is a short stable phrase, ``data`` the bytes."""

    def __init__(self, reason: str, data: bytes = b"") -> None:
        self.reason = reason
        self.data = bytes(data)
        super().__init__(f"{reason}: {self.data.hex(' ')}" if self.data else reason)


class GilbarcoCommandError(GilbarcoError):
    """A request to ``pump`` (None: the whole line) did not get what it needed."""

    def __init__(self, pump: int | None, reason: str) -> None:
        self.pump = pump
        self.reason = reason
        where = "line" if pump is None else f"pump {pump}"
        super().__init__(f"{where}: {reason}")
