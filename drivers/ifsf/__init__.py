"""IFSF dispenser application over TCP/IP (PROTOCOLS.md, "IFSF dispenser application over
TCP/IP"): PetroChina's dispensers (Censtar TQC and DIT, Furen DIT, adapter boards).

``numbers`` and ``address`` encode BCD numbers and database addresses, ``codec`` the messages,
``stream`` cuts a TCP stream into messages, ``heartbeat`` the UDP heartbeat, ``messages`` says
what the dispenser application's messages mean and ``states`` is the fuelling point's state
table. ``link`` (one node) and ``lan`` (every node of a LAN) are the sans-I/O cores, and
``network`` the asyncio shell that owns the sockets.
"""

from .address import (
    Address,
    AllFuellingPoints,
    Calculator,
    CommunicationService,
    ErrorAddress,
    FuellingPointAddress,
    Lna,
    Meter,
    NozzleAddress,
    ProductModeAddress,
    ProductSlot,
    TransactionAddress,
    UnknownAddress,
    decode_address,
)
from .codec import Ack, Answer, DataItem, Header, Message, Read, Unsolicited, Write, decode_message
from .errors import IfsfCommandError, IfsfError, IfsfLocalError, IfsfProtocolError
from .events import (
    ConfigurationNeeded,
    LanEvent,
    LinkNoise,
    NodeOffline,
    NodeOnline,
    Polled,
    Received,
    Replied,
    RequestFailed,
    UnknownNode,
)
from .heartbeat import DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_UDP_PORT, Heartbeat
from .ids import (
    ErrorCode,
    ErrorId,
    FpId,
    FpState,
    ItemCode,
    MessageStatus,
    MessageType,
    NozzleId,
    ProductId,
    ProductModeId,
    TrId,
    TrState,
)
from .lan import LanCore, NodeSettings
from .link import NodeLink
from .messages import (
    BufferStatus,
    ErrorReport,
    FpStatus,
    NozzleForm,
    RunningTransaction,
    Transaction,
)
from .network import IfsfNetwork
from .numbers import decode_bcd, decode_number, encode_bcd, encode_number
from .states import FpEvent
from .stream import MessageSplitter

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL",
    "DEFAULT_UDP_PORT",
    "Ack",
    "Address",
    "AllFuellingPoints",
    "Answer",
    "BufferStatus",
    "Calculator",
    "CommunicationService",
    "ConfigurationNeeded",
    "DataItem",
    "ErrorAddress",
    "ErrorCode",
    "ErrorId",
    "ErrorReport",
    "FpEvent",
    "FpId",
    "FpState",
    "FpStatus",
    "FuellingPointAddress",
    "Header",
    "Heartbeat",
    "IfsfCommandError",
    "IfsfError",
    "IfsfLocalError",
    "IfsfNetwork",
    "IfsfProtocolError",
    "ItemCode",
    "LanCore",
    "LanEvent",
    "LinkNoise",
    "Lna",
    "Message",
    "MessageSplitter",
    "MessageStatus",
    "MessageType",
    "Meter",
    "NodeLink",
    "NodeOffline",
    "NodeOnline",
    "NodeSettings",
    "NozzleAddress",
    "NozzleForm",
    "NozzleId",
    "Polled",
    "ProductId",
    "ProductModeAddress",
    "ProductModeId",
    "ProductSlot",
    "Read",
    "Received",
    "Replied",
    "RequestFailed",
    "RunningTransaction",
    "TrId",
    "TrState",
    "Transaction",
    "TransactionAddress",
    "UnknownAddress",
    "UnknownNode",
    "Unsolicited",
    "Write",
    "decode_address",
    "decode_bcd",
    "decode_message",
    "decode_number",
    "encode_bcd",
    "encode_number",
]
