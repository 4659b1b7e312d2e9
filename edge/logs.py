"""Log lines for a person at a terminal, or for the systemd journal.

Under systemd, stderr is a stream into journald (systemd.exec(5), `$JOURNAL_STREAM`). The journal
stamps every line with its own time, so ours would only be noise, and it reads a leading `<N>`
as the line's syslog priority (sd-daemon(3)), which is what `journalctl -p warning` filters on.
Without that prefix every line would be "info" and an error would hide among pump polls.

journald cuts a stream at newlines: a traceback becomes one journal entry per line. Each of those
lines carries the record's own prefix, so the whole traceback stays at the record's priority and
`journalctl -p err` shows all of it, adjacent, not just its first line.

At a terminal (no journal) lines keep a local timestamp and the level name.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TextIO

__all__ = [
    "JOURNAL_FORMAT",
    "TERMINAL_FORMAT",
    "JournalFormatter",
    "is_journal_stream",
    "stream_handler",
    "syslog_priority",
]

TERMINAL_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(name)s: %(message)s"

# sd-daemon(3): SD_CRIT, SD_ERR, SD_WARNING, SD_INFO, SD_DEBUG. Python has no notice, alert or
# emergency level; a custom level between two takes the lower priority of the two (higher N).
_PRIORITIES = (
    (logging.CRITICAL, 2),
    (logging.ERROR, 3),
    (logging.WARNING, 4),
    (logging.INFO, 6),
)
_DEBUG_PRIORITY = 7


def syslog_priority(levelno: int) -> int:
    """The syslog priority (0 most urgent .. 7) of a logging level."""
    for level, priority in _PRIORITIES:
        if levelno >= level:
            return priority
    return _DEBUG_PRIORITY


class JournalFormatter(logging.Formatter):
    """`<N>logger: message`, with every line of the record (traceback included) prefixed."""

    def __init__(self) -> None:
        super().__init__(JOURNAL_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in text.split("\n"))


def is_journal_stream(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Whether `stream` is the journal stream systemd gave this process.

    `$JOURNAL_STREAM` is "DEVICE:INODE" of that stream; a child inherits the variable even when
    its stderr was redirected to a file or a pipe, so the stream itself is compared with it, as
    systemd.exec(5) advises.
    """
    value = environ.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False  # no descriptor (a test's StringIO) or a closed one: not the journal
    return (info.st_dev, info.st_ino) == (int(device), int(inode))


def stream_handler(stream: TextIO, environ: Mapping[str, str]) -> logging.Handler:
    """A handler writing to `stream` in the journal's format or the terminal's."""
    handler = logging.StreamHandler(stream)
    if is_journal_stream(stream, environ):
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter(TERMINAL_FORMAT))
    return handler
