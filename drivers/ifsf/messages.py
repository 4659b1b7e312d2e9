"""What the dispenser application's messages mean (PROTOCOLS.md, IFSF "Unsolicited messages",
"A sale as PetroChina's controller runs it", "Transaction data ids").

Typed views of the messages a controller reads (fuelling point status, running transaction,
buffer status, error report, a buffered transaction) and the items it writes (release, presets,
commands). Each ``from_items`` walks the items by id and takes what is there: optional items
come and go, unknown ones are kept in ``extra`` and never refused. Values keep the decimals the
dispenser sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from .address import MAX_NOZZLES, Lna
from .codec import DataItem
from .errors import IfsfLocalError, IfsfProtocolError
from .ids import ErrorId, FpId, FpState, TrId, TrState
from .numbers import AMOUNT_SIZE, VOLUME_SIZE, decode_bcd, decode_number, encode_number

__all__ = [
    "BufferStatus",
    "ErrorReport",
    "FpStatus",
    "NozzleForm",
    "RunningTransaction",
    "Transaction",
    "command",
    "controller_id",
    "decode_nozzle",
    "encode_nozzle_mask",
    "nozzles_of_mask",
    "release_items",
]


class NozzleForm(StrEnum):
    """How Current_Log_Noz and a transaction's nozzle are sent: implementations differ."""

    NUMBER = "number"  # 3 is nozzle 3
    BITMASK = "bitmask"  # 4 (bit 2) is nozzle 3


def decode_nozzle(raw: bytes, form: NozzleForm) -> int | None:
    """The logical nozzle in ``raw`` (one byte, or more in BCD-less binary), or None for 0."""
    if not raw:
        return None
    value = int.from_bytes(raw, "big")
    if value == 0:
        return None
    if form is NozzleForm.NUMBER:
        if value > MAX_NOZZLES:
            raise IfsfProtocolError(f"logical nozzle {value} out of range 1..8", raw)
        return value
    if value & (value - 1) or value >= 1 << MAX_NOZZLES:
        raise IfsfProtocolError(f"nozzle bitmask {value:#x} names no single nozzle 1..8", raw)
    return value.bit_length()


def nozzles_of_mask(raw: bytes) -> frozenset[int]:
    """Log_Noz_State and Log_Noz_Mask: bit 0 is nozzle 1."""
    value = int.from_bytes(raw, "big") if raw else 0
    return frozenset(n for n in range(1, MAX_NOZZLES + 1) if value >> (n - 1) & 1)


def encode_nozzle_mask(nozzles: Iterable[int]) -> bytes:
    mask = 0
    for nozzle in nozzles:
        if not 1 <= nozzle <= MAX_NOZZLES:
            raise IfsfLocalError(f"logical nozzle {nozzle} out of range 1..8")
        mask |= 1 << (nozzle - 1)
    return bytes((mask,))


def controller_id(raw: bytes) -> Lna | None:
    """Assign_Contr_Id, Release_Contr_Id, a buffer's controller id: a node address, 0.0 none."""
    if len(raw) != 2 or raw == b"\x00\x00":
        return None
    return Lna(raw[0], raw[1])


def command(command_id: int) -> DataItem:
    """A command is an item of length 0."""
    return DataItem(command_id)


def release_items(
    controller: Lna,
    nozzles: Iterable[int],
    *,
    amount: Decimal | None = None,
    volume: Decimal | None = None,
    amount_places: int = 2,
    volume_places: int = 2,
) -> tuple[DataItem, ...]:
    """One write that releases a fuelling point, as PetroChina's controller sends it:
    the prepay (27) or volume preset (28), the nozzle mask (25), Release_Contr_Id (30) and
    Release_FP (62), in that order."""
    if amount is not None and volume is not None:
        raise IfsfLocalError("a release takes an amount or a volume, not both")
    items: list[DataItem] = []
    if amount is not None:
        items.append(DataItem(FpId.REMOTE_AMOUNT_PREPAY,
                              encode_number(amount, AMOUNT_SIZE, amount_places)))
    if volume is not None:
        items.append(DataItem(FpId.REMOTE_VOLUME_PRESET,
                              encode_number(volume, VOLUME_SIZE, volume_places)))
    items.append(DataItem(FpId.LOG_NOZ_MASK, encode_nozzle_mask(nozzles)))
    items.append(DataItem(FpId.RELEASE_CONTR_ID, controller.to_bytes()))
    items.append(command(FpId.RELEASE_FP))
    return tuple(items)


def _number(value: bytes | None) -> Decimal | None:
    return None if not value else decode_number(value)


def _byte(value: bytes | None) -> int | None:
    return None if not value else value[-1]


def _split(items: Iterable[DataItem], known: set[int]) -> tuple[dict[int, bytes], dict[int, bytes]]:
    found: dict[int, bytes] = {}
    extra: dict[int, bytes] = {}
    for item in items:
        (found if item.id in known else extra).setdefault(item.id, item.value)
    return found, extra


def _state(value: bytes | None) -> FpState | None:
    raw = _byte(value)
    if raw is None:
        return None
    try:
        return FpState(raw)
    except ValueError:
        raise IfsfProtocolError(f"unknown fuelling point state {raw}", value or b"") from None


@dataclass(frozen=True)
class FpStatus:
    """FP status message (100) or an answer with FP_State: state, lifted nozzles, owner."""

    state: FpState | None
    lifted: frozenset[int] | None = None
    controller: Lna | None = None
    alarms: bytes | None = None
    extra: Mapping[int, bytes] = field(default_factory=dict)

    @classmethod
    def from_items(cls, items: Iterable[DataItem]) -> FpStatus:
        known = {FpId.FP_STATE, FpId.LOG_NOZ_STATE, FpId.ASSIGN_CONTR_ID, FpId.FP_ALARM,
                 FpId.FP_STATUS_MESSAGE}
        found, extra = _split(items, {int(k) for k in known})
        lifted = found.get(FpId.LOG_NOZ_STATE)
        owner = found.get(FpId.ASSIGN_CONTR_ID)
        return cls(
            _state(found.get(FpId.FP_STATE)),
            None if lifted is None else nozzles_of_mask(lifted),
            None if owner is None else controller_id(owner),
            found.get(FpId.FP_ALARM) or None,
            extra,
        )


@dataclass(frozen=True)
class RunningTransaction:
    """Running transaction message (102): the figures while fuel flows."""

    amount: Decimal | None
    volume: Decimal | None
    nozzle: int | None = None
    extra: Mapping[int, bytes] = field(default_factory=dict)

    @classmethod
    def from_items(cls, items: Iterable[DataItem], form: NozzleForm) -> RunningTransaction:
        known = {FpId.CURRENT_AMOUNT, FpId.CURRENT_VOLUME, FpId.CURRENT_LOG_NOZ,
                 FpId.RUNNING_TRANSACTION_MESSAGE}
        found, extra = _split(items, {int(k) for k in known})
        nozzle = found.get(FpId.CURRENT_LOG_NOZ)
        return cls(
            _number(found.get(FpId.CURRENT_AMOUNT)),
            _number(found.get(FpId.CURRENT_VOLUME)),
            None if nozzle is None else decode_nozzle(nozzle, form),
            extra,
        )


def _tr_state(value: bytes | None) -> TrState | int | None:
    raw = _byte(value)
    if raw is None:
        return None
    try:
        return TrState(raw)
    except ValueError:
        return raw


@dataclass(frozen=True)
class BufferStatus:
    """Buffer status message (100 on a transaction's address)."""

    sequence: int | None
    state: TrState | int | None
    controller: Lna | None = None
    amount: Decimal | None = None
    volume: Decimal | None = None
    extra: Mapping[int, bytes] = field(default_factory=dict)

    @classmethod
    def from_items(cls, items: Iterable[DataItem]) -> BufferStatus:
        known = {TrId.TR_SEQ_NB, TrId.TRANS_STATE, TrId.TR_BUFF_CONTR_ID, TrId.TR_AMOUNT,
                 TrId.TR_VOLUME, TrId.BUFFER_STATUS_MESSAGE}
        found, extra = _split(items, {int(k) for k in known})
        sequence = found.get(TrId.TR_SEQ_NB)
        owner = found.get(TrId.TR_BUFF_CONTR_ID)
        return cls(
            None if not sequence else decode_bcd(sequence),
            _tr_state(found.get(TrId.TRANS_STATE)),
            None if owner is None else controller_id(owner),
            _number(found.get(TrId.TR_AMOUNT)),
            _number(found.get(TrId.TR_VOLUME)),
            extra,
        )


@dataclass(frozen=True)
class Transaction:
    """A transaction read from a fuelling point's buffer (the answer to a transaction read)."""

    sequence: int
    amount: Decimal | None
    volume: Decimal | None
    price: Decimal | None = None
    nozzle: int | None = None
    product: int | None = None
    state: TrState | int | None = None
    controller: Lna | None = None
    extra: Mapping[int, bytes] = field(default_factory=dict)  # vendor items (0xC8..) and more

    @classmethod
    def from_items(cls, items: Iterable[DataItem], form: NozzleForm,
                   sequence: int | None = None) -> Transaction:
        known = {TrId.TR_SEQ_NB, TrId.TR_AMOUNT, TrId.TR_VOLUME, TrId.TR_UNIT_PRICE,
                 TrId.TR_LOG_NOZ, TrId.TR_PROD_NB, TrId.TRANS_STATE, TrId.TR_BUFF_CONTR_ID}
        found, extra = _split(items, {int(k) for k in known})
        raw_seq = found.get(TrId.TR_SEQ_NB)
        if raw_seq:
            sequence = decode_bcd(raw_seq)
        if sequence is None:
            raise IfsfProtocolError("a transaction without a sequence number")
        nozzle = found.get(TrId.TR_LOG_NOZ)
        product = found.get(TrId.TR_PROD_NB)
        owner = found.get(TrId.TR_BUFF_CONTR_ID)
        return cls(
            sequence,
            _number(found.get(TrId.TR_AMOUNT)),
            _number(found.get(TrId.TR_VOLUME)),
            _number(found.get(TrId.TR_UNIT_PRICE)),
            None if nozzle is None else decode_nozzle(nozzle, form),
            None if not product else decode_bcd(product),
            _tr_state(found.get(TrId.TRANS_STATE)),
            None if owner is None else controller_id(owner),
            extra,
        )


@dataclass(frozen=True)
class ErrorReport:
    """Error message (100 on an error address): an error id, and the FP's state after it."""

    error: int
    error_type: int | None
    state: FpState | None
    extra: Mapping[int, bytes] = field(default_factory=dict)

    @classmethod
    def from_items(cls, error: int, items: Iterable[DataItem]) -> ErrorReport:
        known = {ErrorId.ERROR_TYPE, ErrorId.FP_STATE, ErrorId.ERROR_MESSAGE}
        found, extra = _split(items, {int(k) for k in known})
        return cls(error, _byte(found.get(ErrorId.ERROR_TYPE)),
                   _state(found.get(ErrorId.FP_STATE)), extra)
