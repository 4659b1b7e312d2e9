"""The `[printer]` section: the receipt printer, where its spool lives, what it prints.

    [printer]
    kind = "network"                  # "network", "serial", "usb" or "file"
    address = "192.168.1.50:9100"
    width = 48                        # characters per line: 32 on 58 mm paper, 48 on 80 mm
    invoice_url = "https://fapiao.example.com/i/{sale_id}"

Read by `read_printer`, in the style of sections.py; docs/printer.md describes every key.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from domain.config_reader import Findings, Table, quote
from domain.config_values import _host_port, _port, serial_port
from drivers.printer import PrinterKind, Target

if TYPE_CHECKING:  # sections.py imports this module to read the section
    from .sections import Context

__all__ = [
    "DEFAULT_FOOTER",
    "INVOICE_FIELDS",
    "PAPER_WIDTHS",
    "SERIAL_BAUDRATES",
    "PrintAt",
    "Printer",
    "check_printer",
    "describe_printer",
    "read_printer",
]

PAPER_WIDTHS = (32, 48)  # characters per line on 58 mm and 80 mm paper (font A)
SERIAL_BAUDRATES = (2400, 4800, 9600, 19200, 38400, 57600, 115200)
INVOICE_FIELDS = ("sale_id", "seq", "station_id")
DEFAULT_FOOTER = "谢谢惠顾，欢迎再次光临"
MAX_FOOTER = 200
MAX_INVOICE_URL = 512  # bytes; the QR code stays small enough to scan from thermal paper

DEFAULT_JOB_EXPIRY = timedelta(minutes=60)
_SECOND = timedelta(seconds=1)
_MINUTE = timedelta(minutes=1)
_HEX16 = r"(?:0[xX])?[0-9A-Fa-f]{1,4}"
_HEX8 = r"(?:0[xX])?[0-9A-Fa-f]{1,2}"
_USB = re.compile(rf"usb:({_HEX16}):({_HEX16})(?::({_HEX8}):({_HEX8}))?")


class PrintAt(StrEnum):
    """When a sale's receipt prints by itself (with `auto_print`)."""

    FILL_END = "fill_end"  # as the fill ends: shows what is still unpaid (未付)
    PAYMENT = "payment"  # once the sale is paid in full
    BOTH = "both"  # at the end of the fill and again, paid, at payment

    @property
    def at_fill_end(self) -> bool:
        return self in (PrintAt.FILL_END, PrintAt.BOTH)

    @property
    def at_payment(self) -> bool:
        return self in (PrintAt.PAYMENT, PrintAt.BOTH)


@dataclass(frozen=True)
class Printer:
    """The receipt printer. `target` says where it is; the rest what and how it prints."""

    target: Target
    width: int = 32
    auto_print: bool = True
    print_at: PrintAt = PrintAt.FILL_END
    copies: int = 1
    invoice_url: str | None = None  # a template; INVOICE_FIELDS in braces
    footer: str = DEFAULT_FOOTER
    spool: Path | None = None  # None: "printer-spool" beside the database
    preview_dir: Path | None = None  # also keep a PNG of every receipt here
    query_status: bool = True
    timeout: timedelta = timedelta(seconds=5)
    retry_max: timedelta = timedelta(seconds=60)
    job_expiry: timedelta | None = DEFAULT_JOB_EXPIRY  # None: never
    where: str = "printer"

    def spool_dir(self, database: Path) -> Path:
        """Where jobs wait: `spool`, or `printer-spool` in the database's directory."""
        return self.spool if self.spool is not None else database.parent / "printer-spool"

    def invoice_link(self, *, sale_id: str, seq: int, station_id: str) -> str | None:
        if self.invoice_url is None:
            return None
        return self.invoice_url.format(sale_id=sale_id, seq=seq, station_id=station_id)


def _hex(text: str) -> int:
    return int(text, 16)


def _target(kind: PrinterKind, value: str, ctx: Context, baudrate: int,
            timeout: float) -> Target:
    """The address for its kind, or ValueError saying what was expected."""
    if kind is PrinterKind.NETWORK:
        example = '"192.168.1.50:9100"'
        host, port = _host_port(value, value, example)
        return Target(kind, value, host=host, port=_port(port, value) if port else 9100,
                      timeout=timeout)
    if kind is PrinterKind.SERIAL:
        return Target(kind, value, device=serial_port(value), baudrate=baudrate,
                      timeout=timeout)
    if kind is PrinterKind.USB:
        match = _USB.fullmatch(value)
        if not match:
            raise ValueError(f'{quote(value)} is not a USB printer; write it like '
                             '"usb:0x0416:0x5011" (vendor:product, from lsusb), optionally '
                             'followed by the in and out endpoints ":0x81:0x03"')
        vendor, product, ep_in, ep_out = match.groups()
        return Target(kind, value, usb_vendor=_hex(vendor), usb_product=_hex(product),
                      usb_in=Target.usb_in if ep_in is None else _hex(ep_in),
                      usb_out=Target.usb_out if ep_out is None else _hex(ep_out),
                      timeout=timeout)
    return Target(kind, value, device=str(ctx.path(value)), timeout=timeout)


def _invoice_url(value: str) -> str:
    if not re.match(r"https?://[^/\s{}]+", value) or any(c.isspace() for c in value):
        raise ValueError(f"{quote(value)} is not an http:// or https:// link")
    if len(value.encode()) > MAX_INVOICE_URL:
        raise ValueError(f"the link is longer than {MAX_INVOICE_URL} bytes")
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
    except ValueError as exc:
        raise ValueError(f"{quote(value)}: {exc}; write a literal brace as {{{{ or }}}}") from None
    unknown = [name for name in fields if name not in INVOICE_FIELDS]
    if unknown:
        raise ValueError(f"{quote(value)}: unknown field {{{unknown[0]}}}; "
                         f"the fields are {', '.join('{' + f + '}' for f in INVOICE_FIELDS)}")
    if not fields:
        raise ValueError(f"{quote(value)} names no sale; put {{sale_id}} where the sale goes")
    return value


def _footer(value: str) -> str:
    """Lines printed under the receipt; "" prints none."""
    if len(value) > MAX_FOOTER:
        raise ValueError(f"at most {MAX_FOOTER} characters, got {len(value)}")
    if any(ord(c) < 0x20 and c != "\n" for c in value):
        raise ValueError("only printable characters and line breaks")
    return value


def read_printer(t: Table, ctx: Context) -> Printer | None:
    """The `[printer]` table; None when a value was refused (the problem is recorded)."""
    kind = t.choice("kind", PrinterKind)
    address_text = t.text("address")
    baudrate = t.integer("baudrate", Target.baudrate, low=0, high=10**6,
                         choices=SERIAL_BAUDRATES)
    timeout = t.duration("timeout_seconds", _SECOND, Printer.timeout, low=1, high=60)
    width = t.integer("width", Printer.width, low=0, high=1000, choices=PAPER_WIDTHS)
    auto_print = t.boolean("auto_print", Printer.auto_print)
    print_at = t.choice("print_at", PrintAt, Printer.print_at)
    copies = t.integer("copies", Printer.copies, low=1, high=5)
    invoice_url = t.parsed("invoice_url", _invoice_url, None)
    footer = t.parsed("footer", _footer, Printer.footer)
    spool = t.parsed("spool", ctx.path, None)
    preview_dir = t.parsed("preview_dir", ctx.path, None)
    query_status = t.boolean("query_status", Printer.query_status)
    retry_max = t.duration("retry_max_seconds", _SECOND, Printer.retry_max, low=1, high=3600)
    expiry = t.duration("job_expiry_minutes", _MINUTE, DEFAULT_JOB_EXPIRY, low=0, high=10080)
    t.done()

    target = None
    if kind is not None and address_text is not None:
        try:
            target = _target(kind, address_text, ctx, baudrate or Target.baudrate,
                             (timeout or Printer.timeout).total_seconds())
        except ValueError as exc:
            t.error("address", str(exc))
    if kind is not None and kind is not PrinterKind.SERIAL and t.has("baudrate"):
        t.error("baudrate", f'only used with kind = "serial", not {quote(kind.value)}')
    if kind is PrinterKind.FILE and t.peek("query_status") is True:
        t.warn("query_status", "a file cannot answer status queries; not asked")
    if ctx.check_files and target is not None and target.kind is PrinterKind.FILE:
        # The device file itself may come and go with the printer's power; its directory not.
        device = Path(target.device)
        if device.is_dir():
            t.error("address", f"{device} is a directory; name the printer's file")
        elif not device.parent.is_dir():
            t.error("address", f"directory {device.parent} does not exist")
    if ctx.check_files:
        for key, path in (("spool", spool), ("preview_dir", preview_dir)):
            if path is not None and path.exists() and not path.is_dir():
                t.error(key, f"{path} is not a directory")
            elif path is not None and not path.parent.is_dir():
                t.error(key, f"directory {path.parent} does not exist")
    if (target is None or width is None or auto_print is None or copies is None
            or print_at is None
            or footer is None or query_status is None or timeout is None
            or retry_max is None or expiry is None or baudrate is None
            or (t.has("invoice_url") and invoice_url is None)
            or (t.has("spool") and spool is None)
            or (t.has("preview_dir") and preview_dir is None)):
        return None
    return Printer(
        target=target,
        width=width,
        auto_print=auto_print,
        print_at=print_at,
        copies=copies,
        invoice_url=invoice_url,
        footer=footer,
        spool=spool,
        preview_dir=preview_dir,
        query_status=query_status and target.reports_status,
        timeout=timeout,
        retry_max=retry_max,
        job_expiry=expiry or None,
        where=t.where,
    )


def check_printer(printer: Printer, database: Path, findings: Findings) -> None:
    """Cross-field checks with [storage]: the spool must not swallow the database or receipts."""
    spool = printer.spool_dir(database)
    where = printer.where
    if printer.target.kind is PrinterKind.FILE:
        device = Path(printer.target.device)
        if device == database:
            findings.error(f"{where}.address", f"{device} is the station's database")
        elif device.parent == spool:
            findings.error(f"{where}.address", f"{device} is inside the spool directory {spool}")
    if spool == database.parent and printer.spool is not None:
        findings.error(f"{where}.spool", "the spool needs its own directory, not the database's")
    if printer.preview_dir is not None and printer.preview_dir == spool:
        findings.error(f"{where}.preview_dir", "previews need their own directory, not the spool")


def describe_printer(printer: Printer) -> str:
    """One line for `forecourt check-config`."""
    paper = {32: "58 mm", 48: "80 mm"}.get(printer.width, f"{printer.width} columns")
    parts = [
        f"Printer: {printer.target} ({paper} paper)",
        ({PrintAt.FILL_END: "receipt as each fill ends", PrintAt.PAYMENT: "receipt at payment",
          PrintAt.BOTH: "receipt as each fill ends and at payment"}[printer.print_at]
         if printer.auto_print else "receipts on request"),
    ]
    if printer.copies > 1:
        parts.append(f"{printer.copies} copies")
    if printer.invoice_url:
        parts.append(f"e-invoice QR {printer.invoice_url}")
    if not printer.query_status:
        parts.append("status not queried")
    return ", ".join(parts)

