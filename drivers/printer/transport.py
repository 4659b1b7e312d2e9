"""Getting bytes to a printer through python-escpos's connection classes, and what can go wrong.

One attempt opens the connection, asks the printer how it is (where it can answer), sends the
job raw and closes again: a network printer on port 9100 serves one client at a time, and a
connection held open between receipts would lock out the shop's own POS. Every failure becomes
a `PrinterError` carrying the printer's condition; nothing else leaves `send_job`.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import serial
from escpos.exceptions import DeviceNotFoundError
from escpos.printer import File, Network, Serial

from domain.files import private_opener

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


# python-escpos logs "printer enabled" and "closing connection" to the root logger at info for
# every open and close, that is twice per receipt; these subclasses open and close quietly (the
# queue logs what changes) and otherwise keep the library's classes.


class _Network(Network):  # type: ignore[misc]
    """python-escpos's Network, connecting with `create_connection` (host names, IPv6)."""

    _device: Any  # the library's: False (closed), None or the open connection

    def open(self, raise_not_found: bool = True) -> None:
        try:
            self.device = socket.create_connection((self.host, self.port), self.timeout)
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise DeviceNotFoundError(f"cannot connect to {self.host}:{self.port}: {reason}"
                                      ) from exc

    def close(self) -> None:
        if not self._device:
            return
        with contextlib.suppress(OSError):
            self._device.shutdown(socket.SHUT_RDWR)
        self._device.close()
        self._device = False


class _UrlSerial(Serial):  # type: ignore[misc]
    """python-escpos's Serial, opened through `serial_for_url` so that `socket://` and
    `rfc2217://` reach printers behind serial-to-Ethernet converters, with a write timeout so
    that a printer switched off under hardware flow control cannot hang the worker."""

    _device: Any  # the library's: False (closed), None or the open connection

    def open(self, raise_not_found: bool = True) -> None:
        try:
            self.device = serial.serial_for_url(
                self.devfile, baudrate=self.baudrate, bytesize=self.bytesize,
                parity=self.parity, stopbits=self.stopbits, timeout=self.timeout,
                write_timeout=self.timeout, xonxoff=self.xonxoff, dsrdtr=self.dsrdtr)
        except (ValueError, serial.SerialException) as exc:
            raise DeviceNotFoundError(f"cannot open serial port {self.devfile}: {exc}") from exc

    def _read(self) -> bytes:
        # The library reads 16 bytes, which waits out the whole timeout for a 1-byte answer.
        first: bytes = self.device.read(1)
        return first + self.device.read(self.device.in_waiting) if first else first

    def close(self) -> None:
        # No flush: draining output to a printer that stopped the flow would block.
        if self._device:
            self._device.close()
        self._device = False


class _AppendFile(File):  # type: ignore[misc]
    """python-escpos's File, appending: a spool file keeps every receipt, and a device file
    does not care."""

    _device: Any  # the library's: False (closed), None or the open connection

    def open(self, raise_not_found: bool = True) -> None:
        try:
            # A file it creates is 0600 (receipts); a device node keeps its own mode.
            self.device = open(self.devfile, "ab", opener=private_opener)  # noqa: SIM115
        except OSError as exc:
            raise DeviceNotFoundError(f"cannot open {self.devfile}: {exc.strerror}") from exc

    def close(self) -> None:
        if self._device:
            self._device.close()
        self._device = False


def _usb(target: Target) -> EscposPrinter:
    from escpos.printer import usb  # imports fine without pyusb; using it does not

    if not usb.is_usable():
        raise PrinterError(
            PrinterCondition.FAILED,
            "USB printing needs pyusb (pip install pyusb); or use the kernel's printer "
            'device instead: kind = "file", address = "/dev/usb/lp0"')
    printer: EscposPrinter = usb.Usb(target.usb_vendor, target.usb_product,
                                     timeout=int(target.timeout * 1000), in_ep=target.usb_in,
                                     out_ep=target.usb_out)
    return printer


def connector(target: Target) -> Callable[[], EscposPrinter]:
    """A factory of unopened printer objects for `target`, one per attempt."""

    def make() -> EscposPrinter:
        printer: Any
        if target.kind is PrinterKind.NETWORK:
            printer = _Network(target.host, target.port, timeout=target.timeout)
        elif target.kind is PrinterKind.SERIAL:
            printer = _UrlSerial(target.device, baudrate=target.baudrate,
                                 timeout=target.timeout)
        elif target.kind is PrinterKind.FILE:
            printer = _AppendFile(target.device)
        else:
            printer = _usb(target)
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
