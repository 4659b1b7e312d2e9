"""Requests of one station pump to its nodes, with IFSF's answers turned into the station's
errors (``domain.fuelling``): no answer is ``PointUnreachable``, a refusal ``PointRefused``
carrying the data ids and item codes (``"62=6"``), and what the driver must not send
``InvalidValue``.
"""

from __future__ import annotations

from collections.abc import Mapping

from domain.fuelling import PointRefused, PointUnreachable

from .address import Address, Lna
from .codec import Ack, Answer, DataItem
from .errors import IfsfCommandError
from .ids import FpId, ItemCode, MessageStatus, TrId
from .network import IfsfNetwork

__all__ = ["Talk", "refusal_text"]

_STATUS_TEXT: Mapping[int, str] = {
    MessageStatus.NODE_UNREACHABLE: "node unreachable",
    MessageStatus.APPLICATION_OUT_OF_ORDER: "application out of order",
    MessageStatus.BLOCK_MISSING: "block missing",
    MessageStatus.UNKNOWN_ADDRESS: "unknown address",
    MessageStatus.BUSY: "busy",
    MessageStatus.UNEXPECTED: "unexpected",
    MessageStatus.LOCKED: "locked",
}
_CODE_TEXT: Mapping[int, str] = {
    ItemCode.BAD_VALUE: "bad value or length",
    ItemCode.NOT_WRITABLE: "not writable",
    ItemCode.REFUSED_IN_STATE: "refused in this state",
    ItemCode.DOES_NOT_EXIST: "does not exist",
    ItemCode.NOT_UNDERSTOOD: "not understood",
    ItemCode.NOT_ACCEPTED: "not accepted (no preset outside Calling, buffer full, pump failure)",
}


def _id_name(item_id: int) -> str:
    for enum in (FpId, TrId):
        try:
            return enum(item_id).name
        except ValueError:
            continue
    return f"id {item_id}"


def refusal_text(ack: Ack) -> tuple[str, str]:
    """What a refusing acknowledge says, for people, and its codes (``"62=6"``)."""
    refused = ack.refused()
    if refused:
        text = "; ".join(f"{_id_name(i)}: {_CODE_TEXT.get(c, f'code {c}')}"
                         for i, c in refused.items())
        return text, ",".join(f"{i}={c}" for i, c in refused.items())
    return (f"message status {ack.status} ({_STATUS_TEXT.get(ack.status, 'refused')})",
            f"status={ack.status}")


class Talk:
    """The station pump ``pump``'s requests to its nodes."""

    def __init__(self, network: IfsfNetwork, pump: int) -> None:
        self.network = network
        self.pump = pump

    async def read(self, node: Lna, address: Address, ids: tuple[int, ...],
                   what: str) -> tuple[Answer | Ack, ...]:
        try:
            return await self.network.read(node, address, ids)
        except IfsfCommandError as exc:
            raise PointUnreachable(self.pump, f"pump {self.pump}: {what}: node {node} "
                                              f"{exc.reason}") from None

    async def answer(self, node: Lna, address: Address, ids: tuple[int, ...],
                     what: str) -> Answer:
        """The one answer to a read of one address; an acknowledge instead is a refusal."""
        for message in await self.read(node, address, ids, what):
            if isinstance(message, Answer):
                return message
            if not message.accepted:
                text, code = refusal_text(message)
                raise PointRefused(self.pump, f"pump {self.pump}: {what}: {text}", code)
        raise PointUnreachable(self.pump, f"pump {self.pump}: {what}: no answer from {node}")

    async def write(self, node: Lna, address: Address, items: tuple[DataItem, ...],
                    what: str) -> Ack:
        """Write; the acknowledge when accepted, else ``PointRefused``."""
        ack = await self.write_ack(node, address, items, what)
        if not ack.accepted:
            text, code = refusal_text(ack)
            raise PointRefused(self.pump, f"pump {self.pump}: {what} refused: {text}", code)
        return ack

    async def write_ack(self, node: Lna, address: Address, items: tuple[DataItem, ...],
                        what: str) -> Ack:
        """Write; the acknowledge whatever it says."""
        try:
            return await self.network.write(node, address, items)
        except IfsfCommandError as exc:
            raise PointUnreachable(self.pump, f"pump {self.pump}: {what}: node {node} "
                                              f"{exc.reason}") from None
