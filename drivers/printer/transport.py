"""Getting bytes to a printer through python-escpos's connection classes, and what can go wrong.

One attempt opens the connection, asks the printer how it is (where it can answer), sends the
job raw and closes again: a network printer on port 9100 serves one client at a time, and a
connection held open between receipts would lock out the shop's own POS. Every failure becomes
a `PrinterError` carrying the printer's condition; nothing else leaves `send_job`.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import serial

from .commands import StatusRequest, status_request
from .status import (
    OfflineCause,
    PaperLevel,
    PrinterCondition,
    StatusByteError,
    decode_offline_cause,
    decode_online,
    decode_paper,
)

__all__ = [
    "EscposPrinter",
    "PrinterError",
    "PrinterKind",
    "Target",
    "check_status",
    "connector",
    "send_job",
]


class PrinterKind(StrEnum):
    NETWORK = "network"  # raw TCP, port 9100 by default
    SERIAL = "serial"  # a device path or any pyserial URL (socket://, rfc2217://)
    USB = "usb"  # direct USB through pyusb
    FILE = "file"  # a device file (/dev/usb/lp0) or a plain file, appended to


@dataclass(frozen=True)
class Target:
    """Where a printer is. `address` is as configured, for messages."""

    kind: PrinterKind
    address: str
    host: str = ""
    port: int = 9100
    device: str = ""  # serial port or file path
    usb_vendor: int = 0
    usb_product: int = 0
    usb_in: int = 0x82  # python-escpos's default endpoints
    usb_out: int = 0x01
    baudrate: int = 9600
    timeout: float = 5.0  # seconds for a connect, a write or a status answer

    def __str__(self) -> str:
        return f"{self.kind.value} {self.address}"

    @property
    def reports_status(self) -> bool:
        """A file cannot answer DLE EOT: the request would only end up in the file."""
        return self.kind is not PrinterKind.FILE


class EscposPrinter(Protocol):
    """What is used of a python-escpos printer (the library is untyped)."""

    def open(self) -> None: ...
    def close(self) -> None: ...
    def _raw(self, msg: bytes) -> None: ...
    def query_status(self, mode: bytes) -> bytes: ...


class PrinterError(Exception):
    """An attempt that did not print, and the condition it shows."""

    def __init__(self, condition: PrinterCondition, message: str) -> None:
        super().__init__(message)
        self.condition = condition
        self.message = message


def connector(target: Target) -> Callable[[], EscposPrinter]:
    """A factory of unopened printer objects for `target`, one per attempt."""

    # python-escpos (and the Pillow it pulls in) is loaded only by a station that prints: its
    # import alone costs the daemon about 15 MB.
    from .connections import AppendFile, NetworkPrinter, UrlSerial, usb_printer

    def make() -> EscposPrinter:
        printer: Any
        if target.kind is PrinterKind.NETWORK:
            printer = NetworkPrinter(target.host, target.port, timeout=target.timeout)
        elif target.kind is PrinterKind.SERIAL:
            printer = UrlSerial(target.device, baudrate=target.baudrate,
                                 timeout=target.timeout)
        elif target.kind is PrinterKind.FILE:
            printer = AppendFile(target.device)
        else:
            printer = usb_printer(target)
        result: EscposPrinter = printer
        return result

    return make


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _classify(exc: BaseException) -> PrinterError:
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, PermissionError) or isinstance(cause, PermissionError):
        return PrinterError(PrinterCondition.FAILED,
                            f"permission denied: {_one_line(str(exc))}; the station's user "
                            "needs write access (the lp or dialout group)")
    if isinstance(exc, TimeoutError):
        return PrinterError(PrinterCondition.OFFLINE, "the printer did not answer in time")
    from escpos.exceptions import DeviceNotFoundError  # loaded by then: a printer was opened

    if isinstance(exc, DeviceNotFoundError | serial.SerialException):
        return PrinterError(PrinterCondition.OFFLINE, _one_line(str(exc)))
    if isinstance(exc, OSError):
        reason = exc.strerror or errno.errorcode.get(exc.errno or 0, "") or str(exc)
        return PrinterError(PrinterCondition.OFFLINE, _one_line(reason))
    return PrinterError(PrinterCondition.FAILED, _one_line(f"{type(exc).__name__}: {exc}"))


def _ask(printer: EscposPrinter, request: StatusRequest) -> bytes:
    reply: bytes = printer.query_status(status_request(request))
    return reply


def _cause(cause: OfflineCause) -> str:
    if OfflineCause.COVER_OPEN in cause:
        return "the printer is offline: cover open"
    if OfflineCause.ERROR in cause:
        return "the printer is offline: printer error (cutter jam or overheated head)"
    if OfflineCause.FEED_BUTTON in cause:
        return "the printer is offline: paper being fed"
    return "the printer is offline"


def check_status(printer: EscposPrinter, timeout: float) -> PaperLevel:
    """Ask the printer (DLE EOT 1, 4 and, when offline, 2); raises PrinterError unless it can
    print. A printer class that cannot read answers is taken as able to print."""
    try:
        online = decode_online(_ask(printer, StatusRequest.PRINTER))
        paper = decode_paper(_ask(printer, StatusRequest.PAPER))
        if paper is PaperLevel.OUT:
            raise PrinterError(PrinterCondition.PAPER_OUT, "out of paper")
        if not online:
            cause = decode_offline_cause(_ask(printer, StatusRequest.OFFLINE_CAUSE))
            raise PrinterError(PrinterCondition.OFFLINE, _cause(cause))
        return paper
    except NotImplementedError:
        return PaperLevel.ADEQUATE
    except (StatusByteError, TimeoutError) as exc:
        detail = str(exc) if isinstance(exc, StatusByteError) else f"no answer in {timeout:g} s"
        raise PrinterError(
            PrinterCondition.OFFLINE,
            f"status query failed ({detail}); a printer that does not implement DLE EOT "
            "needs query_status = false") from exc


def send_job(printer: EscposPrinter, data: bytes, *, copies: int = 1,
             query_status: bool = True, timeout: float = 5.0) -> PrinterCondition:
    """Open, check, send `copies` times, close. READY or PAPER_LOW when sent; else raises
    PrinterError."""
    try:
        printer.open()
        paper = check_status(printer, timeout) if query_status else PaperLevel.ADEQUATE
        for _ in range(copies):
            printer._raw(data)
    except PrinterError:
        raise
    except Exception as exc:
        raise _classify(exc) from exc
    finally:
        with contextlib.suppress(Exception):
            printer.close()
    return PrinterCondition.PAPER_LOW if paper is PaperLevel.LOW else PrinterCondition.READY
