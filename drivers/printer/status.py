"""What a printer says about itself, and what the station makes of it: pure, no I/O.

Status bytes are the answers to DLE EOT n (ESC/POS "Transmit real-time status"). Each answer is
one byte whose bit 1 and bit 4 are always 1 and bits 0 and 7 always 0; anything else is not a
status byte (a printer that does not implement the command, or line noise).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag, StrEnum

from domain.retry import PRINTER_RETRY, RetryPolicy

from .commands import StatusRequest

__all__ = [
    "Backoff",
    "ConditionTracker",
    "OfflineCause",
    "PaperLevel",
    "PrinterAlarm",
    "PrinterCondition",
    "StatusByteError",
    "decode_offline_cause",
    "decode_online",
    "decode_paper",
]

_FIXED_MASK = 0x93  # bits 0, 1, 4, 7
_FIXED_VALUE = 0x12  # bits 1 and 4 set


class StatusByteError(ValueError):
    """A reply that is not a DLE EOT status byte."""


def _check(request: StatusRequest, reply: bytes) -> int:
    if not reply:
        raise StatusByteError(f"no answer to DLE EOT {int(request)}")
    value = reply[-1]  # the newest byte: a late answer to an earlier request comes first
    if value & _FIXED_MASK != _FIXED_VALUE:
        raise StatusByteError(f"0x{value:02X} is not an answer to DLE EOT {int(request)}")
    return value


def decode_online(reply: bytes) -> bool:
    """DLE EOT 1 (printer status): bit 3 set means offline."""
    return not _check(StatusRequest.PRINTER, reply) & 0x08


class OfflineCause(IntFlag):
    """DLE EOT 2 (offline cause)."""

    COVER_OPEN = 0x04
    FEED_BUTTON = 0x08  # paper is being fed by the feed button
    PAPER_END_STOP = 0x20  # printing stopped because the paper ran out
    ERROR = 0x40


def decode_offline_cause(reply: bytes) -> OfflineCause:
    return OfflineCause(_check(StatusRequest.OFFLINE_CAUSE, reply) & 0x6C)


class PaperLevel(IntEnum):
    """DLE EOT 4 (roll paper sensor); the values match python-escpos's paper_status()."""

    OUT = 0
    LOW = 1
    ADEQUATE = 2


def decode_paper(reply: bytes) -> PaperLevel:
    value = _check(StatusRequest.PAPER, reply)
    if value & 0x60:  # bits 5-6: roll paper end sensor
        return PaperLevel.OUT
    if value & 0x0C:  # bits 2-3: roll paper near-end sensor
        return PaperLevel.LOW
    return PaperLevel.ADEQUATE


class PrinterCondition(StrEnum):
    """The printer as the station sees it; anything but READY and PAPER_LOW holds the queue."""

    READY = "ready"
    PAPER_LOW = "paper_low"  # still prints; the roll needs changing soon
    PAPER_OUT = "paper_out"
    OFFLINE = "offline"  # unreachable, switched off, cover open, not answering
    FAILED = "failed"  # a fault no retry will cure by itself (no USB support, permission)

    @property
    def prints(self) -> bool:
        return self in (PrinterCondition.READY, PrinterCondition.PAPER_LOW)


@dataclass(frozen=True)
class PrinterAlarm:
    """A change of the printer's condition; `condition` READY after a problem is a recovery."""

    printer: str  # e.g. "network 192.168.1.50:9100"
    condition: PrinterCondition
    previous: PrinterCondition
    message: str
    pending_jobs: int

    @property
    def recovered(self) -> bool:
        return self.condition is PrinterCondition.READY

    def event_data(self) -> dict[str, object]:
        """The `printer.alarm` event's data."""
        return {
            "printer": self.printer,
            "alarm": "recovered" if self.recovered else self.condition.value,
            "previous": self.previous.value,
            "message": self.message,
            "pending_jobs": self.pending_jobs,
        }


class ConditionTracker:
    """Turns each attempt's outcome into at most one alarm per change of condition, so a
    printer that stays off for an hour raises one alarm, not one per retry."""

    def __init__(self, printer: str) -> None:
        self.printer = printer
        self.condition = PrinterCondition.READY
        self.message = ""
        self.failures = 0  # consecutive attempts that did not print

    def observe(self, condition: PrinterCondition, message: str,
                pending_jobs: int) -> PrinterAlarm | None:
        previous = self.condition
        self.condition, self.message = condition, message
        self.failures = 0 if condition.prints else self.failures + 1
        if condition is previous:
            return None
        return PrinterAlarm(self.printer, condition, previous, message, pending_jobs)


@dataclass(frozen=True)
class Backoff:
    """The printer's retry policy (`domain.retry.PRINTER_RETRY`) with its numbers: waits from
    `first` doubling up to `cap` (`[printer] retry_max_seconds`), spread by +-`jitter` so that
    printers on one switch do not retry in step."""

    first: float = PRINTER_RETRY.first
    cap: float = PRINTER_RETRY.cap
    jitter: float = 0.2

    def policy(self) -> RetryPolicy:
        return PRINTER_RETRY.but(first=self.first, cap=self.cap,
                                 spread=(1 - self.jitter, 1 + self.jitter))

    def delay(self, failures: int, rand: float) -> float:
        """The wait before retry number `failures` (1, 2, ...); `rand` in [0, 1) comes from the
        caller, so tests pick it."""
        return self.policy().wait().delay(failures, rand)
