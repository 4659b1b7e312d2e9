"""The values a simulated node answers for each data id (PROTOCOLS.md, IFSF "FP data ids",
"Transaction data ids", "Logical nozzle data ids", "Numbers").

An id the node does not know comes back with length 0 (an empty value), as the notes say.
Volumes and amounts are 5-byte numbers, prices 4, totals 7, with the node's decimals in the
control byte; sequence and product numbers plain BCD.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal

from drivers.ifsf.codec import DataItem
from drivers.ifsf.ids import FpId, NozzleId, ProductId, TrId
from drivers.ifsf.messages import NozzleForm, encode_nozzle_mask
from drivers.ifsf.numbers import (
    AMOUNT_SIZE,
    PRICE_SIZE,
    TOTAL_SIZE,
    VOLUME_SIZE,
    encode_bcd,
    encode_number,
)
from simulator.metering import Decimals, raw_to_decimal

from .fuelling_point import BufferedTransaction, SimulatedFp

__all__ = [
    "VENDOR_END_TOTAL",
    "VENDOR_START_TOTAL",
    "fp_value",
    "nozzle_value",
    "price_raw",
    "price_value",
    "product_value",
    "transaction_items",
]

VENDOR_START_TOTAL = 0xC8  # the nozzle's volume total before the filling (a vendor extension)
VENDOR_END_TOTAL = 0xC9


def price_raw(value: Decimal, places: int) -> int:
    """``value`` in units of ``places`` decimals; ValueError when it does not fit exactly."""
    scaled = value.scaleb(places)
    if value < 0 or scaled != scaled.to_integral_value():
        raise ValueError(f"{value} is not a multiple of 10^-{places}")
    return int(scaled)


def number(raw: int, places: int, size: int) -> bytes:
    return encode_number(raw_to_decimal(raw, places), size, places)


def nozzle_byte(nozzle: int, form: NozzleForm) -> bytes:
    if nozzle == 0:
        return b"\x00"
    return bytes((nozzle,)) if form is NozzleForm.NUMBER else encode_nozzle_mask((nozzle,))


def fp_value(fp: SimulatedFp, item_id: int, form: NozzleForm) -> bytes:
    d = fp.decimals
    volume, amount, nozzle, price = fp.current()
    values: dict[int, Callable[[], bytes]] = {
        FpId.NB_TRAN_BUFFER_NOT_PAID: lambda: bytes((len(fp.unpaid),)),
        FpId.NB_LOGICAL_NOZZLE: lambda: bytes((len(fp.nozzles),)),
        FpId.FP_STATE: lambda: bytes((fp.state,)),
        FpId.LOG_NOZ_STATE: lambda: encode_nozzle_mask(() if fp.lifted is None else (fp.lifted,)),
        FpId.ASSIGN_CONTR_ID: lambda: b"\x00\x00" if fp.owner is None else fp.owner.to_bytes(),
        FpId.LOG_NOZ_MASK: lambda: encode_nozzle_mask(fp.nozzles if fp.mask is None
                                                      else fp.mask),
        FpId.REMOTE_AMOUNT_PREPAY: lambda: b"" if fp.preset_amount is None
        else number(fp.preset_amount, d.amount, AMOUNT_SIZE),
        FpId.REMOTE_VOLUME_PRESET: lambda: b"" if fp.preset_volume is None
        else number(fp.preset_volume, d.volume, VOLUME_SIZE),
        FpId.CURRENT_TR_SEQ_NB: lambda: encode_bcd(
            fp.next_sequence if fp.filling is not None
            else (fp.history[-1].sequence if fp.history else 0), 2),
        FpId.RELEASE_CONTR_ID: lambda: b"\x00\x00" if fp.release_owner is None
        else fp.release_owner.to_bytes(),
        FpId.CURRENT_AMOUNT: lambda: number(amount, d.amount, AMOUNT_SIZE),
        FpId.CURRENT_VOLUME: lambda: number(volume, d.volume, VOLUME_SIZE),
        FpId.CURRENT_UNIT_PRICE: lambda: number(price, d.price, PRICE_SIZE),
        FpId.CURRENT_LOG_NOZ: lambda: nozzle_byte(nozzle, form),
        FpId.CURRENT_TR_ERROR_CODE: lambda: b"\x00",
        FpId.RUNNING_TRANSACTION_FREQUENCY: lambda: bytes((min(255, round(
            fp.running_interval * 10)),)),
    }
    found = values.get(item_id)
    return b"" if found is None else found()


def nozzle_value(fp: SimulatedFp, nozzle: int, item_id: int, slot_of: Callable[[int], int],
                 silent_zero_totals: bool) -> bytes:
    d = fp.decimals
    volume, amount = fp.totals[nozzle]
    if item_id == NozzleId.PROD_SLOT:
        return bytes((slot_of(fp.nozzles[nozzle]),))
    if item_id == NozzleId.PHYSICAL_NOZZLE_ID:
        return bytes((nozzle,))
    if item_id in (NozzleId.LOG_NOZ_VOL_TOTAL, NozzleId.LOG_NOZ_AMOUNT_TOTAL):
        if silent_zero_totals and volume == 0 and amount == 0:
            return b""  # some dispensers answer nothing while the totals are zero
        if item_id == NozzleId.LOG_NOZ_VOL_TOTAL:
            return number(volume, d.volume, TOTAL_SIZE)
        return number(amount, d.amount, TOTAL_SIZE)
    return b""


def product_value(product: int, item_id: int) -> bytes:
    if item_id == ProductId.PROD_NB:
        return encode_bcd(product, 4)
    if item_id == ProductId.PROD_DESCRIPTION:
        return f"{product:08d}".encode("ascii")
    return b""


def price_value(price: int, item_id: int, decimals: Decimals) -> bytes:
    if item_id == 2:  # ProductModeId.PRICE
        return number(price, decimals.price, PRICE_SIZE)
    return b""


def transaction_items(record: BufferedTransaction, ids: Iterable[int], decimals: Decimals,
                      form: NozzleForm) -> tuple[DataItem, ...]:
    d = decimals
    values: dict[int, Callable[[], bytes]] = {
        TrId.TR_SEQ_NB: lambda: encode_bcd(record.sequence, 2),
        TrId.TR_AMOUNT: lambda: number(record.amount, d.amount, AMOUNT_SIZE),
        TrId.TR_VOLUME: lambda: number(record.volume, d.volume, VOLUME_SIZE),
        TrId.TR_UNIT_PRICE: lambda: number(record.price, d.price, PRICE_SIZE),
        TrId.TR_LOG_NOZ: lambda: nozzle_byte(record.nozzle, form),
        TrId.TR_PROD_NB: lambda: encode_bcd(record.product, 4),
        TrId.TR_BUFF_CONTR_ID: lambda: b"\x00\x00" if record.controller is None
        else record.controller.to_bytes(),
        TrId.TRANS_STATE: lambda: bytes((record.state,)),
        VENDOR_START_TOTAL: lambda: number(record.volume_total_before, d.volume, TOTAL_SIZE),
        VENDOR_END_TOTAL: lambda: number(record.volume_total_after, d.volume, TOTAL_SIZE),
    }
    items = []
    for item_id in ids:
        found = values.get(item_id)
        items.append(DataItem(item_id, b"" if found is None else found()))
    return tuple(items)
