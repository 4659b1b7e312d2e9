"""Receipt printers: ESC/POS documents, a spool that outlives outages, and the transports.

``document`` describes what to print, ``layout`` fits it to the paper, ``render`` makes the
ESC/POS bytes and ``preview`` a picture of them; ``receipt`` is the Chinese fuel receipt.
``queue`` spools jobs (``spool``) and prints them from one worker thread through python-escpos
(``transport``), turning printer trouble into alarms (``status``), never into exceptions for
its callers.
"""

from .commands import QrErrorCorrection, StatusRequest
from .document import Align, Document, Feed, Line, Pair, QrCode, Rule, Size, Text
from .layout import MIN_WIDTH, columns, layout, wrap
from .queue import PrintQueue, QueueStatus
from .receipt import (
    PAYMENT_METHOD_NAMES,
    PaymentLine,
    ReceiptData,
    receipt_document,
    render_receipt,
)
from .render import render
from .spool import Job, Spool, SpoolError
from .status import (
    Backoff,
    ConditionTracker,
    OfflineCause,
    PaperLevel,
    PrinterAlarm,
    PrinterCondition,
    StatusByteError,
    decode_offline_cause,
    decode_online,
    decode_paper,
)
from .transport import EscposPrinter, PrinterError, PrinterKind, Target, connector, send_job

__all__ = [
    "MIN_WIDTH",
    "PAYMENT_METHOD_NAMES",
    "Align",
    "Backoff",
    "ConditionTracker",
    "Document",
    "EscposPrinter",
    "Feed",
    "FontChoice",
    "Job",
    "Line",
    "OfflineCause",
    "Pair",
    "PaperLevel",
    "PaymentLine",
    "PrintQueue",
    "PrinterAlarm",
    "PrinterCondition",
    "PrinterError",
    "PrinterKind",
    "QrCode",
    "QrErrorCorrection",
    "QueueStatus",
    "ReceiptData",
    "Rule",
    "Size",
    "Spool",
    "SpoolError",
    "StatusByteError",
    "StatusRequest",
    "Target",
    "Text",
    "columns",
    "connector",
    "decode_offline_cause",
    "decode_online",
    "decode_paper",
    "find_cjk_font",
    "layout",
    "preview_png",
    "receipt_document",
    "render",
    "render_png",
    "render_receipt",
    "send_job",
    "wrap",
]


def __getattr__(name: str) -> object:
    # The preview draws with Pillow and qrcode, loaded only when a picture is asked for (a
    # station without a printer never pays for them).
    if name in ("FontChoice", "find_cjk_font", "preview_png", "render_png"):
        from . import preview

        return getattr(preview, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
