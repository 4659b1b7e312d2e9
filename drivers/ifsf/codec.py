"""The IFSF message codec over TCP/IP (PROTOCOLS.md, IFSF "Message", "Read", "Write",
"Acknowledge", "Unsolicited messages").

No I/O and no clock: bytes in, messages out, and back.

Every message is an 8-byte header and a body of M_Lg bytes (no checksum on TCP)::

    dst subnet, node | src subnet, node | IFSF_MC | M_St | M_Lg (2, big-endian)
    Ad_Lg | Ad (Ad_Lg bytes) | data

M_St's top 3 bits are the ``MessageType``, its low 5 bits a token that answers and acks echo.
The data depends on the type: a read lists data ids; answers, writes and unsolicited messages
carry ``id, length, value`` items (a length of 255 is followed by a 2-byte length); an
acknowledge carries a message status and, only for status 5, ``(id, code)`` pairs.

Each message type is a frozen dataclass with ``to_bytes``; ``decode_message`` is the one
dispatcher and ``MessageSplitter`` cuts a TCP stream into messages by M_Lg.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .address import Address, Lna, decode_address
from .errors import IfsfLocalError, IfsfProtocolError
from .ids import ItemCode, MessageStatus, MessageType

__all__ = [
    "HEADER_SIZE",
    "LONG_LENGTH",
    "MAX_TOKEN",
    "Ack",
    "Answer",
    "DataItem",
    "Header",
    "Message",
    "Read",
    "Unsolicited",
    "Write",
    "decode_items",
    "decode_message",
    "encode_items",
]

HEADER_SIZE = 8
LONG_LENGTH = 255  # an item length byte of 255 is followed by a 2-byte big-endian length
MAX_TOKEN = 0x1F
MAX_BODY = 0xFFFF
_TYPES = {t.value: t for t in MessageType}


@dataclass(frozen=True)
class Header:
    """The 8 bytes before every message body."""

    destination: Lna
    source: Lna
    mc: int  # IFSF_MC: 0; one PetroChina controller sends 2 to the communication service
    type: MessageType
    token: int
    length: int  # M_Lg: the bytes after the header

    def to_bytes(self) -> bytes:
        status = (self.type << 5) | self.token
        return (
            self.destination.to_bytes()
            + self.source.to_bytes()
            + bytes((self.mc, status))
            + self.length.to_bytes(2, "big")
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Header:
        if len(data) < HEADER_SIZE:
            raise IfsfProtocolError("header too short", data)
        kind = _TYPES.get(data[5] >> 5)
        if kind is None:
            raise IfsfProtocolError(f"unknown message type {data[5] >> 5}", data[:HEADER_SIZE])
        return cls(
            Lna(data[0], data[1]),
            Lna(data[2], data[3]),
            data[4],
            kind,
            data[5] & MAX_TOKEN,
            int.from_bytes(data[6:8], "big"),
        )


@dataclass(frozen=True)
class DataItem:
    """``id, length, value``; a command is an item of length 0."""

    id: int
    value: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.id <= 0xFF:
            raise IfsfLocalError(f"a data id is one byte, not {self.id}")
        if len(self.value) > MAX_BODY:
            raise IfsfLocalError(f"an item value is at most {MAX_BODY} bytes")

    def to_bytes(self) -> bytes:
        size = len(self.value)
        if size < LONG_LENGTH:
            return bytes((self.id, size)) + self.value
        return bytes((self.id, LONG_LENGTH)) + size.to_bytes(2, "big") + self.value


def encode_items(items: Iterable[DataItem]) -> bytes:
    return b"".join(item.to_bytes() for item in items)


def decode_items(data: bytes) -> tuple[DataItem, ...]:
    """Walk ``id, length, value`` items by their lengths (optional items come and go)."""
    items = []
    i = 0
    while i < len(data):
        if i + 2 > len(data):
            raise IfsfProtocolError("item header cut short", data[i:])
        item_id, size = data[i], data[i + 1]
        i += 2
        if size == LONG_LENGTH:
            if i + 2 > len(data):
                raise IfsfProtocolError("long item length cut short", data)
            size = int.from_bytes(data[i : i + 2], "big")
            i += 2
        if i + size > len(data):
            raise IfsfProtocolError(f"item {item_id} overruns the message", data)
        items.append(DataItem(item_id, bytes(data[i : i + size])))
        i += size
    return tuple(items)


@dataclass(frozen=True)
class _Envelope:
    destination: Lna
    source: Lna
    token: int
    address: Address

    def __post_init__(self) -> None:
        if not 0 <= self.token <= MAX_TOKEN:
            raise IfsfLocalError(f"a token is 0..31, not {self.token}")

    TYPE = MessageType.READ
    mc: int = field(default=0, kw_only=True)

    @property
    def type(self) -> MessageType:
        return self.TYPE

    def _data(self) -> bytes:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        ad = self.address.to_bytes()
        body = bytes((len(ad),)) + ad + self._data()
        if len(body) > MAX_BODY:
            raise IfsfLocalError(f"a message body is at most {MAX_BODY} bytes")
        header = Header(self.destination, self.source, self.mc, self.type, self.token, len(body))
        return header.to_bytes() + body


@dataclass(frozen=True)
class Read(_Envelope):
    """Type 0: a plain list of data ids (no lengths)."""

    ids: tuple[int, ...] = ()
    TYPE = MessageType.READ

    def _data(self) -> bytes:
        return bytes(self.ids)


@dataclass(frozen=True)
class _WithItems(_Envelope):
    items: tuple[DataItem, ...] = ()

    def _data(self) -> bytes:
        return encode_items(self.items)

    def item(self, item_id: int) -> DataItem | None:
        """The first item with ``item_id``, or None."""
        return next((i for i in self.items if i.id == item_id), None)

    def value(self, item_id: int) -> bytes | None:
        found = self.item(item_id)
        return None if found is None else found.value


@dataclass(frozen=True)
class Answer(_WithItems):
    """Type 1: the answer to a read; an unknown id comes back with length 0."""

    TYPE = MessageType.ANSWER


@dataclass(frozen=True)
class Write(_WithItems):
    """Type 2: items to set; commands are items of length 0."""

    TYPE = MessageType.WRITE


@dataclass(frozen=True)
class Unsolicited(_WithItems):
    """Type 4 (no acknowledge, what dispensers send) or 3 (to be acknowledged).

    The first item is the message id (length 0): FP status 100, running transaction 102...
    """

    ack_required: bool = False

    @property
    def type(self) -> MessageType:
        return MessageType.UNSOLICITED_ACK if self.ack_required else MessageType.UNSOLICITED

    @property
    def message_id(self) -> int | None:
        return self.items[0].id if self.items else None


@dataclass(frozen=True)
class Ack(_Envelope):
    """Type 7: a message status; ``(id, code)`` pairs only with status 5."""

    status: int = MessageStatus.ACCEPTED
    codes: tuple[tuple[int, int], ...] = ()
    TYPE = MessageType.ACK

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.status <= 0xFF:
            raise IfsfLocalError(f"a message status is one byte, not {self.status}")
        if self.codes and self.status != MessageStatus.NOT_ALL_ACCEPTED:
            raise IfsfLocalError("item codes go only with message status 5")

    @property
    def accepted(self) -> bool:
        return self.status == MessageStatus.ACCEPTED

    def refused(self) -> dict[int, int]:
        """The items refused, by data id (code 0 items left out)."""
        return {i: c for i, c in self.codes if c != ItemCode.ACCEPTED}

    def _data(self) -> bytes:
        return bytes((self.status,)) + b"".join(bytes(pair) for pair in self.codes)


Message = Read | Answer | Write | Unsolicited | Ack


def decode_message(data: bytes) -> Message:
    """One whole message: header and exactly M_Lg bytes of body."""
    header = Header.from_bytes(data)
    body = data[HEADER_SIZE:]
    if len(body) != header.length:
        raise IfsfProtocolError(f"M_Lg says {header.length}, body has {len(body)}", data)
    if not body:
        raise IfsfProtocolError("message without a database address", data)
    ad_lg = body[0]
    if ad_lg == 0 or 1 + ad_lg > len(body):
        raise IfsfProtocolError(f"Ad_Lg {ad_lg} does not fit in M_Lg {header.length}", data)
    address = decode_address(body[1 : 1 + ad_lg])
    rest = body[1 + ad_lg :]
    envelope = (header.destination, header.source, header.token, address)
    kind, mc = header.type, header.mc
    try:
        if kind is MessageType.READ:
            return Read(*envelope, tuple(rest), mc=mc)
        if kind is MessageType.ANSWER:
            return Answer(*envelope, decode_items(rest), mc=mc)
        if kind is MessageType.WRITE:
            return Write(*envelope, decode_items(rest), mc=mc)
        if kind in (MessageType.UNSOLICITED, MessageType.UNSOLICITED_ACK):
            ack = kind is MessageType.UNSOLICITED_ACK
            return Unsolicited(*envelope, decode_items(rest), ack, mc=mc)
        return _decode_ack(envelope, rest, mc, data)
    except IfsfProtocolError as error:
        raise IfsfProtocolError(error.reason, data) from None


def _decode_ack(envelope: tuple[Lna, Lna, int, Address], rest: bytes, mc: int,
                data: bytes) -> Ack:
    if not rest:
        raise IfsfProtocolError("acknowledge without a message status", data)
    status, pairs = rest[0], rest[1:]
    if status != MessageStatus.NOT_ALL_ACCEPTED:
        # Anything after another status is not defined; it is ignored, not refused.
        return Ack(*envelope, status, mc=mc)
    if len(pairs) % 2:
        raise IfsfProtocolError("acknowledge with an odd number of code bytes", data)
    codes = tuple((pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2))
    return Ack(*envelope, status, codes, mc=mc)
