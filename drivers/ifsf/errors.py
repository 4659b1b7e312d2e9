"""Error tree of the IFSF driver (PROTOCOLS.md, "IFSF dispenser application over TCP/IP").

``IfsfProtocolError`` means bytes from the network were wrong (the peer's fault, or garbage);
``IfsfLocalError`` means we were asked to build or send something the protocol does not allow
(our bug, or a command the fuelling point's state table refuses); ``IfsfCommandError`` means a
request did not get the answer it needed: no answer, the node offline, or an acknowledge that
refused it, with the message status and the per-item codes as data.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["IfsfCommandError", "IfsfError", "IfsfLocalError", "IfsfProtocolError"]


class IfsfError(Exception):
    """Base class of every error raised by the IFSF driver."""


class IfsfProtocolError(IfsfError):
    """Malformed bytes from the network: bad header, bad length, bad BCD, unknown type."""

    def __init__(self, reason: str, data: bytes = b"") -> None:
        self.reason = reason
        self.data = bytes(data)
        shown = self.data[:64].hex(" ")
        more = " ..." if len(self.data) > 64 else ""
        super().__init__(f"{reason}: {shown}{more}" if self.data else reason)


class IfsfLocalError(IfsfError):
    """Something we must not send: a value out of range, a command refused in this state."""


class IfsfCommandError(IfsfError):
    """A request to node ``node`` ("1.3") was not carried out.

    ``reason`` is ``"timeout"``, ``"offline"``, ``"link down"``, ``"closed"`` or ``"refused"``;
    for a refusal ``status`` is the acknowledge's message status and ``codes`` the per-item
    codes by data id (only the items the node named, message status 5).
    """

    def __init__(
        self,
        node: str,
        reason: str,
        *,
        status: int | None = None,
        codes: Mapping[int, int] | None = None,
    ) -> None:
        self.node = node
        self.reason = reason
        self.status = status
        self.codes = dict(codes or {})
        detail = ""
        if status is not None:
            detail = f" (message status {status}"
            if self.codes:
                detail += ", " + ", ".join(f"id {i}: code {c}" for i, c in self.codes.items())
            detail += ")"
        super().__init__(f"node {node}: {reason}{detail}")
