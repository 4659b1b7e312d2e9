"""The finished sales, totals and prices of a station pump on IFSF fuelling points
(PROTOCOLS.md, IFSF "Transaction data ids", "Logical nozzle data ids", "Price change").

A finished sale's key is the pump's own: node, fuelling point, transaction number, amount and
volume (``"1.1/1/1621/15.00/2.00"``). The number has 4 digits, wraps and may restart with the
dispenser, so amount and volume belong to the key, and a clear first reads the transaction at
that number and clears it only if it is the same sale.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal

from domain.fuelling import (
    FinishedSale,
    InvalidValue,
    PointRefused,
    PointUnreachable,
    PriceMismatch,
    Totals,
)

from .address import Lna, NozzleAddress, TransactionAddress
from .codec import Answer, DataItem
from .config import Member
from .errors import IfsfCommandError, IfsfLocalError, IfsfProtocolError
from .follow import FpFollower
from .ids import ErrorCode, MessageStatus, NozzleId, TrId
from .messages import NozzleForm, Transaction
from .numbers import PRICE_SIZE, decode_number, encode_number
from .prices import NodePrices, PriceWriteRefused
from .talk import Talk, refusal_text

__all__ = ["TR_IDS", "clear_sale", "program_prices", "read_sales", "read_totals", "sale_key"]

log = logging.getLogger("drivers.ifsf")

TR_IDS = (TrId.TR_SEQ_NB, TrId.TR_AMOUNT, TrId.TR_VOLUME, TrId.TR_UNIT_PRICE, TrId.TR_LOG_NOZ,
          TrId.TR_PROD_NB, TrId.TR_BUFF_CONTR_ID, TrId.TRANS_STATE)


def sale_key(node: Lna, fp: int, transaction: Transaction) -> str:
    return (f"{node}/{fp}/{transaction.sequence:04d}/{transaction.amount}/"
            f"{transaction.volume}")


def _parse_key(key: str) -> tuple[Lna, int, int, str, str] | None:
    parts = key.split("/")
    if len(parts) != 5:
        return None
    subnet, _, node = parts[0].partition(".")
    try:
        return Lna(int(subnet), int(node)), int(parts[1]), int(parts[2]), parts[3], parts[4]
    except ValueError:
        return None


async def _transactions(talk: Talk, member: Member, form: NozzleForm) -> list[Transaction]:
    found: list[Transaction] = []
    what = f"reading the transactions of node {member.node} FP {member.fp}"
    for message in await talk.read(member.node, TransactionAddress(member.fp, 0), TR_IDS, what):
        if not isinstance(message, Answer) or not isinstance(message.address,
                                                             TransactionAddress):
            continue
        try:
            transaction = Transaction.from_items(message.items, form, message.address.sequence)
        except IfsfProtocolError as exc:
            log.error("pump %d: node %s FP %d transaction %04d not understood (%s); left in "
                      "the dispenser's buffer", talk.pump, member.node, member.fp,
                      message.address.sequence, exc)
            continue
        if transaction.amount is None or transaction.volume is None:
            log.error("pump %d: node %s FP %d transaction %04d has no amount or volume; left "
                      "in the dispenser's buffer", talk.pump, member.node, member.fp,
                      transaction.sequence)
            continue
        found.append(transaction)
    return found


def finished(member: Member, follower: FpFollower, transaction: Transaction,
             controller: Lna) -> FinishedSale:
    assert transaction.amount is not None and transaction.volume is not None
    released_by = transaction.controller
    return FinishedSale(
        logical=follower.station_logical(transaction.nozzle),
        volume=transaction.volume,
        amount=transaction.amount,
        price=transaction.price,
        key=sale_key(member.node, member.fp, transaction),
        authorized=released_by == controller,
        details={"node": str(member.node), "fuelling_point": str(member.fp),
                 "transaction": f"{transaction.sequence:04d}",
                 "released_by": str(released_by) if released_by else "nobody",
                 **({"product": str(transaction.product)} if transaction.product else {})})


async def read_sales(talk: Talk, followers: Sequence[FpFollower],
                     controller: Lna) -> list[FinishedSale]:
    """Every unpaid transaction of the pump's fuelling points, in the order the nodes list."""
    sales = []
    for follower in followers:
        for transaction in await _transactions(talk, follower.member, follower.form):
            sales.append(finished(follower.member, follower, transaction, controller))
    return sales


async def read_one(talk: Talk, follower: FpFollower, sequence: int,
                   controller: Lna) -> FinishedSale | None:
    member = follower.member
    messages = await talk.read(member.node, TransactionAddress(member.fp, sequence), TR_IDS,
                               f"reading transaction {sequence:04d}")
    for message in messages:
        if isinstance(message, Answer):
            try:
                transaction = Transaction.from_items(message.items, follower.form, sequence)
            except IfsfProtocolError as exc:
                raise PointUnreachable(talk.pump, f"pump {talk.pump}: transaction "
                                                  f"{sequence:04d} not understood: {exc}"
                                       ) from None
            if transaction.amount is not None and transaction.volume is not None:
                return finished(member, follower, transaction, controller)
    return None


async def clear_sale(talk: Talk, members: Sequence[Member], sale: FinishedSale,
                     form: NozzleForm) -> None:
    """Clear_Transaction, once the transaction at that number is still this sale."""
    parsed = None if sale.key is None else _parse_key(sale.key)
    if parsed is None:
        raise InvalidValue(talk.pump, f"not a sale of this pump: {sale.key}")
    node, fp, sequence, amount, volume = parsed
    if not any(m.node == node and m.fp == fp for m in members):
        raise InvalidValue(talk.pump, f"sale {sale.key} is not on pump {talk.pump}")
    address = TransactionAddress(fp, sequence)
    messages = await talk.read(node, address, TR_IDS, f"reading transaction {sequence:04d}")
    answer = next((m for m in messages if isinstance(m, Answer)), None)
    if answer is None:
        return  # not in the buffer any more: cleared already
    try:
        there = Transaction.from_items(answer.items, form, sequence)
    except IfsfProtocolError as exc:
        raise PointUnreachable(talk.pump, f"pump {talk.pump}: transaction {sequence:04d} not "
                                          f"understood, not cleared: {exc}") from None
    if (str(there.amount), str(there.volume)) != (amount, volume):
        log.warning("pump %d: transaction %04d of node %s FP %d is now %s / %s, not the sale "
                    "%s: not cleared", talk.pump, sequence, node, fp, there.amount,
                    there.volume, sale.key)
        return
    ack = await talk.write_ack(node, address, (DataItem(TrId.CLEAR_TRANSACTION),),
                               f"clearing transaction {sequence:04d}")
    if ack.accepted or ack.status == MessageStatus.UNKNOWN_ADDRESS:
        return
    text, code = refusal_text(ack)
    raise PointRefused(talk.pump, f"pump {talk.pump}: clearing transaction {sequence:04d} "
                                  f"refused: {text}", code)


async def read_totals(talk: Talk, follower: FpFollower, logical: int, ifsf: int,
                      volume_places: int, amount_places: int) -> Totals:
    member = follower.member
    answer = await talk.answer(member.node, NozzleAddress(member.fp, ifsf),
                               (NozzleId.LOG_NOZ_VOL_TOTAL, NozzleId.LOG_NOZ_AMOUNT_TOTAL),
                               f"reading the totals of nozzle {logical}")
    volume = answer.value(NozzleId.LOG_NOZ_VOL_TOTAL)
    amount = answer.value(NozzleId.LOG_NOZ_AMOUNT_TOTAL)
    try:
        # Some dispensers answer nothing while the totals are still zero.
        return Totals(
            logical=logical,
            volume=decode_number(volume) if volume else Decimal(0).scaleb(-volume_places),
            amount=decode_number(amount) if amount else Decimal(0).scaleb(-amount_places))
    except IfsfProtocolError as exc:
        raise PointUnreachable(talk.pump, f"pump {talk.pump}: totals of nozzle {logical} not "
                                          f"understood: {exc}") from None


async def program_prices(talk: Talk, follower: FpFollower, node_prices: NodePrices,
                         products: Mapping[int, Decimal], logicals: Mapping[int, Sequence[int]],
                         places: int, within: float) -> None:
    """Each product's price on the follower's node, with the node's result for its fuelling
    point, then read back; ``logicals`` names the station's nozzles drawing each product."""
    member = follower.member
    for product, price in products.items():
        try:
            encode_number(price, PRICE_SIZE, places)
        except IfsfLocalError as exc:
            raise InvalidValue(talk.pump, f"price {price}: {exc}") from None
        try:
            code = await node_prices.change(product, price, places, member.fp, within)
        except TimeoutError:
            raise PointUnreachable(
                talk.pump, f"pump {talk.pump}: the price of product {product} waits until "
                           f"every fuelling point of node {member.node} is idle") from None
        except PriceWriteRefused as exc:
            raise PointRefused(talk.pump, f"pump {talk.pump}: node {member.node} refused the "
                               f"price of product {product}: {exc}", f"status={exc.status}"
                               ) from None
        except IfsfCommandError as exc:
            raise PointUnreachable(talk.pump, f"pump {talk.pump}: prices: node "
                                              f"{member.node} {exc.reason}") from None
        except IfsfProtocolError as exc:
            raise PointUnreachable(talk.pump, f"pump {talk.pump}: the price of product "
                                              f"{product} not understood: {exc}") from None
        if code is not None and code != ErrorCode.PRICE_CHANGED:
            _refused(talk, member, product, code)
        try:
            shown = await node_prices.read(product)
        except IfsfCommandError as exc:
            raise PointUnreachable(talk.pump, f"pump {talk.pump}: prices: node "
                                              f"{member.node} {exc.reason}") from None
        except IfsfProtocolError as exc:
            raise PointUnreachable(talk.pump, f"pump {talk.pump}: the price of product "
                                              f"{product} not understood: {exc}") from None
        if shown != price:
            nozzles = logicals.get(product, ())
            raise PriceMismatch(talk.pump, dict.fromkeys(nozzles, price),
                                dict.fromkeys(nozzles, shown if shown is not None
                                              else Decimal(0)))


def _refused(talk: Talk, member: Member, product: int, code: int) -> None:
    where = f"node {member.node} FP {member.fp}"
    if code == ErrorCode.BOARD_NO_ANSWER:
        raise PointUnreachable(talk.pump, f"pump {talk.pump}: {where}: the pump's board did "
                                          f"not answer the price of product {product} (0x36)")
    if code == ErrorCode.UNKNOWN_PRODUCT:
        raise PointRefused(talk.pump, f"pump {talk.pump}: {where} does not know product "
                                      f"{product} (0x35): check [[lines.products]]", "0x35")
    if code == ErrorCode.PRICE_REFUSED:
        raise PointRefused(talk.pump, f"pump {talk.pump}: {where} refused the price of product "
                                      f"{product} (0x37) and is out of service until it is "
                                      "opened again", "0x37")
    raise PointRefused(talk.pump, f"pump {talk.pump}: {where}: price of product {product}: "
                                  f"result 0x{code:02X}", f"0x{code:02X}")
