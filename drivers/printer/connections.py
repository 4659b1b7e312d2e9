"""python-escpos's connection classes, quieter and safer (imported only by a station that prints).

python-escpos logs "printer enabled" and "closing connection" to the root logger at info for
every open and close, that is twice per receipt; these subclasses open and close quietly (the
queue logs what changes) and otherwise keep the library's classes.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

import serial
from escpos.exceptions import DeviceNotFoundError
from escpos.printer import File, Network, Serial

from domain.files import private_opener

from .status import PrinterCondition
from .transport import EscposPrinter, PrinterError, Target

__all__ = ["AppendFile", "NetworkPrinter", "UrlSerial", "usb_printer"]

class NetworkPrinter(Network):  # type: ignore[misc]
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


class UrlSerial(Serial):  # type: ignore[misc]
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


class AppendFile(File):  # type: ignore[misc]
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


def usb_printer(target: Target) -> EscposPrinter:
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


