"""The IFSF dispenser application's numbers, with the names the notes use.

PROTOCOLS.md, IFSF: "Fuelling point states", "FP data ids", "Transaction data ids",
"Logical nozzle data ids", the product addresses, "Acknowledge" and "Price change". Data ids are
decimal in the notes; a few are shown in hex where messages in the notes show them so.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "CONTROLLER_SUBNET",
    "DISPENSER_SUBNET",
    "FP_COMMANDS",
    "TANK_GAUGE_SUBNET",
    "VENDOR_ID_FIRST",
    "ErrorCode",
    "ErrorId",
    "FpId",
    "FpState",
    "ItemCode",
    "MessageStatus",
    "MessageType",
    "NozzleId",
    "ProductId",
    "ProductModeId",
    "TrId",
    "TrState",
]

DISPENSER_SUBNET = 1
CONTROLLER_SUBNET = 2  # controller devices: us, POS and fuel servers
TANK_GAUGE_SUBNET = 9


class MessageType(IntEnum):
    """The top 3 bits of M_St."""

    READ = 0
    ANSWER = 1
    WRITE = 2
    UNSOLICITED_ACK = 3  # unsolicited, to be acknowledged
    UNSOLICITED = 4  # unsolicited, no acknowledge (what dispensers send)
    ACK = 7


class MessageStatus(IntEnum):
    """The status byte of an acknowledge."""

    ACCEPTED = 0
    NODE_UNREACHABLE = 1
    APPLICATION_OUT_OF_ORDER = 2
    BLOCK_MISSING = 3
    NOT_ALL_ACCEPTED = 5  # (data id, code) pairs follow
    UNKNOWN_ADDRESS = 6
    BUSY = 7
    UNEXPECTED = 8
    LOCKED = 9


class ItemCode(IntEnum):
    """Per-item result in an acknowledge with message status 5."""

    ACCEPTED = 0
    BAD_VALUE = 1  # bad value or length
    NOT_WRITABLE = 2
    REFUSED_IN_STATE = 3  # command refused in this state
    DOES_NOT_EXIST = 4
    NOT_UNDERSTOOD = 5
    NOT_ACCEPTED = 6  # a business rule: no preset outside Calling, buffer full, pump failure


class FpState(IntEnum):
    """IFSF's nine fuelling point states."""

    INOPERATIVE = 1
    CLOSED = 2
    IDLE = 3
    CALLING = 4
    AUTHORISED = 5
    STARTED = 6
    SUSPENDED_STARTED = 7
    FUELLING = 8
    SUSPENDED_FUELLING = 9


class FpId(IntEnum):
    """Data ids on a fuelling point's address (0x21..0x24)."""

    NB_TRAN_BUFFER_NOT_PAID = 2
    NB_LOGICAL_NOZZLE = 4
    FP_STATE = 20
    LOG_NOZ_STATE = 21  # bitmask of lifted nozzles, bit 0 = nozzle 1
    ASSIGN_CONTR_ID = 22
    LOG_NOZ_MASK = 25  # bitmask of allowed nozzles
    REMOTE_AMOUNT_PREPAY = 27
    REMOTE_VOLUME_PRESET = 28
    CURRENT_TR_SEQ_NB = 29
    RELEASE_CONTR_ID = 30
    CURRENT_AMOUNT = 34
    CURRENT_VOLUME = 35
    CURRENT_UNIT_PRICE = 36
    CURRENT_LOG_NOZ = 37
    CURRENT_TR_ERROR_CODE = 39
    RUNNING_TRANSACTION_FREQUENCY = 59
    OPEN_FP = 60
    CLOSE_FP = 61
    RELEASE_FP = 62
    TERMINATE_FP = 63
    SUSPEND_FP = 64
    RESUME_FP = 65
    FP_ALARM = 80  # 8 alarm bytes, sometimes in the status message
    FP_STATUS_MESSAGE = 100
    RUNNING_TRANSACTION_MESSAGE = 102


FP_COMMANDS = frozenset(
    {
        FpId.OPEN_FP,
        FpId.CLOSE_FP,
        FpId.RELEASE_FP,
        FpId.TERMINATE_FP,
        FpId.SUSPEND_FP,
        FpId.RESUME_FP,
    }
)


class TrId(IntEnum):
    """Data ids on a transaction's address (FP, 0x21, sequence number)."""

    TR_SEQ_NB = 1
    TR_AMOUNT = 5
    TR_VOLUME = 6
    TR_UNIT_PRICE = 7
    TR_LOG_NOZ = 8
    TR_PROD_NB = 10
    TR_BUFF_CONTR_ID = 20
    TRANS_STATE = 21
    CLEAR_TRANSACTION = 30
    LOCK_TRANSACTION = 31
    UNLOCK_TRANSACTION = 32
    BUFFER_STATUS_MESSAGE = 100


VENDOR_ID_FIRST = 0xC8
"""Transaction data ids from 0xC8 up are vendor extensions (start and end totals, pressures)."""


class TrState(IntEnum):
    CLEARED = 1
    PAYABLE = 2
    LOCKED = 3


class NozzleId(IntEnum):
    """Data ids on a logical nozzle's address (FP, 0x11..0x18)."""

    PROD_SLOT = 1  # which product slot (1..8) the nozzle draws from
    PHYSICAL_NOZZLE_ID = 5
    LOG_NOZ_VOL_TOTAL = 20  # 7-byte numbers
    LOG_NOZ_AMOUNT_TOTAL = 21


class ProductId(IntEnum):
    """Data ids on a product slot's address (0x41..0x48)."""

    PROD_NB = 2  # 4 BCD bytes, 8 digits
    PROD_DESCRIPTION = 3


class ProductModeId(IntEnum):
    """Data ids on a product's fuelling-mode address (0x61, product number, mode)."""

    PRICE = 2
    MAX_VOLUME = 3
    MAX_FILL_TIME = 4
    MAX_AUTH_TIME = 5


class ErrorId(IntEnum):
    """Data ids on a fuelling point's error address (FP, 0x41, error id)."""

    ERROR_TYPE = 1
    FP_STATE = 5
    ERROR_MESSAGE = 100


class ErrorCode(IntEnum):
    """Error ids a dispenser reports; the price change results are PetroChina's extensions."""

    UNKNOWN_PRODUCT = 0x35  # price change: the product is not on this dispenser
    BOARD_NO_ANSWER = 0x36  # price change: the pump's board did not answer
    PRICE_REFUSED = 0x37  # price change refused: the fuelling point goes Inoperative
    PRICE_CHANGED = 0x99  # price change done
