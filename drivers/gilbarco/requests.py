"""What the master asks of a pump (PROTOCOLS.md, "Gilbarco two-wire": "Commands").

Each request is one exchange on the line, in the bus core's words: the bytes it writes and the
answer it waits for. ``SendBlock`` and ``ReadSpecialFunction`` are two steps: ``DATA_FOLLOWS``,
the pump's ``READY_FOR_DATA``, then the block.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .answers import PumpTotals, RunningMoney, Transaction
from .blocks import PresetBlock, PriceChangeBlock, SpecialFunctionRequest
from .commands import Command, PumpStatus
from .special import SpecialFunctionAnswer

__all__ = [
    "AllStop",
    "Answer",
    "AnswerKind",
    "Authorize",
    "ReadRunningMoney",
    "ReadSpecialFunction",
    "ReadStatus",
    "ReadTotals",
    "ReadTransaction",
    "Request",
    "SendBlock",
    "Stop",
]


class AnswerKind(Enum):
    NONE = "none"  # nothing comes back: a pause follows
    STATUS = "status"
    TRANSACTION = "transaction"
    TOTALS = "totals"
    RUNNING_MONEY = "running money"
    SPECIAL_FUNCTION = "special function"


@dataclass(frozen=True)
class ReadStatus:
    command = Command.STATUS
    kind = AnswerKind.STATUS


@dataclass(frozen=True)
class Authorize:
    """Release the pump (also resumes a stopped one); no answer."""

    command = Command.AUTHORIZE
    kind = AnswerKind.NONE


@dataclass(frozen=True)
class Stop:
    command = Command.STOP
    kind = AnswerKind.NONE


@dataclass(frozen=True)
class ReadTransaction:
    command = Command.TRANSACTION
    kind = AnswerKind.TRANSACTION


@dataclass(frozen=True)
class ReadTotals:
    command = Command.TOTALS
    kind = AnswerKind.TOTALS


@dataclass(frozen=True)
class ReadRunningMoney:
    command = Command.RUNNING_MONEY
    kind = AnswerKind.RUNNING_MONEY


@dataclass(frozen=True)
class SendBlock:
    """A preset or a price change, after the pump said it is ready for data; no answer."""

    block: PresetBlock | PriceChangeBlock
    command = Command.DATA_FOLLOWS
    kind = AnswerKind.NONE


@dataclass(frozen=True)
class ReadSpecialFunction:
    """Special function ``function``, after the pump said it is ready for data."""

    function: int
    command = Command.DATA_FOLLOWS
    kind = AnswerKind.SPECIAL_FUNCTION

    def __post_init__(self) -> None:
        SpecialFunctionRequest(self.function)  # range check

    @property
    def block(self) -> SpecialFunctionRequest:
        return SpecialFunctionRequest(self.function)


@dataclass(frozen=True)
class AllStop:
    """Stop every pump of the line (0xFC); no answer."""

    kind = AnswerKind.NONE


Request = (
    ReadStatus
    | Authorize
    | Stop
    | ReadTransaction
    | ReadTotals
    | ReadRunningMoney
    | SendBlock
    | ReadSpecialFunction
)

Answer = PumpStatus | Transaction | PumpTotals | RunningMoney | SpecialFunctionAnswer | None
