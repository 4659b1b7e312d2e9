"""Gilbarco two-wire (PROTOCOLS.md, "Gilbarco two-wire"): one-byte commands, status nibbles,
digit-word blocks with a 4-bit checksum, pumps 1..16 on a current loop.

``words`` is the word codec (digits, blocks, checksum), ``commands`` the command bytes and status
nibbles, ``answers`` the transaction, totals and running money, ``blocks`` what the master sends
(presets, price changes, special-function requests), ``special`` the hex-record answers of
special functions, ``bus`` the sans-I/O line core and ``line`` the thread-backed shell that owns
the port.
"""

from .answers import CAPTURED_HEADER, HoseTotals, PumpTotals, RunningMoney, Transaction
from .blocks import (
    MasterBlock,
    PresetBlock,
    PriceChangeBlock,
    SpecialFunctionRequest,
    decode_master_block,
)
from .bus import BusStats, GilbarcoBus
from .commands import (
    ALL_STOP,
    LAYOUTS,
    MAX_PUMP,
    MIN_PUMP,
    Command,
    DigitsMode,
    Layout,
    PumpStatus,
    command_byte,
    decode_status,
    status_byte,
)
from .errors import GilbarcoCommandError, GilbarcoError, GilbarcoProtocolError
from .events import (
    BusEvent,
    CommandDone,
    CommandFailed,
    LineNoise,
    PumpOffline,
    PumpOnline,
    StatusChanged,
)
from .line import GilbarcoLine, LineStats
from .requests import (
    AllStop,
    Answer,
    AnswerKind,
    Authorize,
    ReadRunningMoney,
    ReadSpecialFunction,
    ReadStatus,
    ReadTotals,
    ReadTransaction,
    Request,
    SendBlock,
    Stop,
)
from .special import (
    NOZZLE_FUNCTION,
    HexRecord,
    HexRecordDecoder,
    NozzleReport,
    PumpConfiguration,
    SpecialFunctionAnswer,
)
from .timing import DEFAULT_BAUDRATE, Timing, wire_time
from .words import Block, BlockDecoder, Word, decode_digits, encode_digits, length_word, lrc

__all__ = [
    "ALL_STOP",
    "CAPTURED_HEADER",
    "DEFAULT_BAUDRATE",
    "LAYOUTS",
    "MAX_PUMP",
    "MIN_PUMP",
    "NOZZLE_FUNCTION",
    "AllStop",
    "Answer",
    "AnswerKind",
    "Authorize",
    "Block",
    "BlockDecoder",
    "BusEvent",
    "BusStats",
    "Command",
    "CommandDone",
    "CommandFailed",
    "DigitsMode",
    "GilbarcoBus",
    "GilbarcoCommandError",
    "GilbarcoError",
    "GilbarcoLine",
    "GilbarcoProtocolError",
    "HexRecord",
    "HexRecordDecoder",
    "HoseTotals",
    "Layout",
    "LineNoise",
    "LineStats",
    "MasterBlock",
    "NozzleReport",
    "PresetBlock",
    "PriceChangeBlock",
    "PumpConfiguration",
    "PumpOffline",
    "PumpOnline",
    "PumpStatus",
    "PumpTotals",
    "ReadRunningMoney",
    "ReadSpecialFunction",
    "ReadStatus",
    "ReadTotals",
    "ReadTransaction",
    "Request",
    "RunningMoney",
    "SendBlock",
    "SpecialFunctionAnswer",
    "SpecialFunctionRequest",
    "StatusChanged",
    "Stop",
    "Timing",
    "Transaction",
    "Word",
    "command_byte",
    "decode_digits",
    "decode_master_block",
    "decode_status",
    "encode_digits",
    "length_word",
    "lrc",
    "status_byte",
    "wire_time",
]
