"""What the pump controller knows of the station's books: the gate every authorization passes
and the recorder of fills that are no sale (docs/books.md).

The controller (edge/pump.py) stays free of the books: it asks a gate, when one is set, before
it authorizes (a nozzle paused for a delivery, a credit account and its limits), and hands a
fill whose authorization the non-sale recorder claims to that recorder instead of recording a
sale. Both are protocols there; the books service (edge/books/) provides them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from domain.errors import StationError

__all__ = ["AccountRefused", "AccountUse", "NozzlePaused"]

@dataclass(frozen=True)
class AccountUse:
    """A sale on a credit account (挂账): which card or plate, and who signs for it."""

    kind: Literal["card", "plate"]
    value: str
    signer: str


class AccountRefused(StationError):
    """A credit account may not fuel now. ``code`` names the reason (English, for programs);
    the message is Chinese first, for the attendant who reads it at the console."""

    code = "account_refused"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class NozzlePaused(StationError):
    """The nozzle's tank is receiving a delivery (卸油中): it sells nothing until received."""

    code = "nozzle_paused"
