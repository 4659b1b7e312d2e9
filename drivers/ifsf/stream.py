"""Cutting a TCP stream into IFSF messages (PROTOCOLS.md, IFSF "Message").

TCP has no framing and IFSF over TCP/IP has no start byte and no checksum: a message is its
8-byte header and the M_Lg bytes it announces. ``MessageSplitter`` buffers bytes as they come
(whole messages, halves, one byte at a time, several at once) and hands out each message as
soon as its last byte is in.

Lenient where the notes say to be: IFSF_MC is not checked (0, or 2 from one controller), and a
message that is well framed but does not decode is reported and skipped without losing the
stream. Strict where a wrong guess would swallow the next messages: a header must name the
expected destination and come from an expected subnet (when the splitter is given them), have
a known message type, and a length that is plausible (at least an address, at most
``max_body``); bytes that do not start such a header are skipped up to the next place that
does, and reported once as garbage.
"""

from __future__ import annotations

from .address import Lna
from .codec import HEADER_SIZE, Message, decode_message
from .errors import IfsfProtocolError
from .ids import MessageType

__all__ = ["MAX_STREAM_BODY", "MessageSplitter"]

MAX_STREAM_BODY = 4096
"""Longest message body (M_Lg) accepted from a stream. Real messages stay below 300 bytes
(an answer with every FP data id); the bound keeps a garbage header from stalling the stream."""

_TYPES = frozenset(t.value for t in MessageType)


class MessageSplitter:
    """Streaming decoder of one TCP connection; ``feed`` returns messages and errors in order."""

    def __init__(
        self,
        destination: Lna | None = None,
        source_subnets: frozenset[int] | None = None,
        max_body: int = MAX_STREAM_BODY,
    ) -> None:
        if max_body < 2:
            raise ValueError("max_body must hold at least an address")
        self._destination = None if destination is None else destination.to_bytes()
        self._sources = source_subnets
        self._max = max_body
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes held while a message is incomplete (at most 8 + ``max_body``)."""
        return len(self._buffer)

    def reset(self) -> None:
        """Forget any partial message (a new connection)."""
        self._buffer.clear()

    def feed(self, data: bytes) -> list[Message | IfsfProtocolError]:
        out: list[Message | IfsfProtocolError] = []
        buffer = self._buffer
        buffer.extend(data)
        while buffer:
            start = self._find_start()
            if start:
                out.append(IfsfProtocolError("garbage before message", bytes(buffer[:start])))
                del buffer[:start]
            if len(buffer) <= HEADER_SIZE:
                break
            total = HEADER_SIZE + int.from_bytes(buffer[6:8], "big")
            if len(buffer) < total:
                break
            piece = bytes(buffer[:total])
            del buffer[:total]
            try:
                out.append(decode_message(piece))
            except IfsfProtocolError as error:
                out.append(error)
        return out

    def _find_start(self) -> int:
        """Where the first plausible header starts; a tail that may still become one is kept."""
        buffer = self._buffer
        for start in range(len(buffer)):
            verdict = self._plausible(start)
            if verdict is not False:
                return start
        return len(buffer)

    def _plausible(self, start: int) -> bool | None:
        """True: a header starts here; False: none can; None: not enough bytes to tell yet."""
        buffer = self._buffer
        end = len(buffer)
        want = self._destination
        if want is not None:
            for i in range(2):
                if start + i < end and buffer[start + i] != want[i]:
                    return False
        if (
            self._sources is not None
            and start + 2 < end
            and buffer[start + 2] not in self._sources
        ):
            return False
        if start + 5 < end and buffer[start + 5] >> 5 not in _TYPES:
            return False
        if start + 7 < end:
            length = int.from_bytes(buffer[start + 6 : start + 8], "big")
            if not 2 <= length <= self._max:
                return False
        if start + 8 < end:
            ad_lg = buffer[start + 8]
            length = int.from_bytes(buffer[start + 6 : start + 8], "big")
            return 0 < ad_lg < length
        return None
