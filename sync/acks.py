"""What the cloud sends on `fcc/v1/{sid}/acks`, parsed and bounded (CONTRACT.md section 4,
docs/cloud.md "Acks" and "Epochs").

- an ack, `{"upto_seq": N, "epoch": E}`: the cloud committed every event of epoch E up to seq N
  (`epoch` absent: 1, what a cloud that predates epochs means);
- a conflict, `{"conflict": {"epoch": E, "seq": N, "cloud_epoch": H}}`: the cloud holds another
  event under (E, N), and H is the highest epoch it knows for the station.

Either may also come as the `data` of a message envelope. Nothing here decides whether a
well-formed ack is genuine: the publisher checks it against the ledger (sync/outbox.py).
"""

from __future__ import annotations

import json
from typing import NamedTuple

from domain.bounds import SEQ

__all__ = ["EPOCH_MAX", "SEQ_MAX", "Ack", "Conflict", "Position", "parse_ack"]

#: A seq is stored as SQLite's INTEGER (signed 64 bits): a larger one cannot even be compared.
SEQ_MAX = SEQ.high
#: A ledger epoch: 1 for every ledger at first, one more at each restore or reported conflict.
EPOCH_MAX = 2**31 - 1


class Position(NamedTuple):
    """Where the ledger stands: its current epoch and the highest seq it has assigned."""

    epoch: int
    seq: int


class Ack(NamedTuple):
    """`{"upto_seq": N, "epoch": E}`: the cloud committed every event of epoch E up to seq N."""

    upto_seq: int
    epoch: int = 1


class Conflict(NamedTuple):
    """`{"conflict": {"epoch", "seq", "cloud_epoch"}}`: the cloud holds another event under
    (epoch, seq); `cloud_epoch` is the highest epoch it knows for the station."""

    epoch: int
    seq: int
    cloud_epoch: int


def _int(value: object, low: int, high: int) -> int | None:
    """`value` when it is an integer from `low` to `high` (JSON `true` is not 1), else None."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return None
    return value


def parse_ack(payload: bytes) -> Ack | Conflict | None:
    """An `acks` message, or None when the payload is neither an ack nor a conflict.

    Accepts the bare object and the same object as the `data` of an envelope (the contract wraps
    every message body in one). An ack is `{"upto_seq": N}` with N >= 0 and an optional
    `"epoch": E` >= 1 (1 when absent: a cloud that predates epochs never acks a later epoch's
    events); a conflict is `{"conflict": {"epoch": E, "seq": N >= 1, "cloud_epoch": H >= 0}}`.
    JSON `true` is not 1, and no number is larger than SQLite's integers.
    """
    try:
        message = json.loads(payload)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if isinstance(message, dict) and "upto_seq" not in message and "conflict" not in message:
        message = message.get("data")
    if not isinstance(message, dict):
        return None
    if "conflict" in message:
        body = message["conflict"]
        if not isinstance(body, dict):
            return None
        epoch = _int(body.get("epoch"), 1, EPOCH_MAX)
        seq = _int(body.get("seq"), 1, SEQ_MAX)
        cloud = _int(body.get("cloud_epoch", 0), 0, EPOCH_MAX)
        if epoch is None or seq is None or cloud is None:
            return None
        return Conflict(epoch, seq, cloud)
    upto = _int(message.get("upto_seq"), 0, SEQ_MAX)
    epoch = _int(message.get("epoch", 1), 1, EPOCH_MAX)
    if upto is None or epoch is None:
        return None
    return Ack(upto, epoch)
