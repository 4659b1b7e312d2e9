"""Writing a file so that a power cut leaves either the old one or the new one, whole.

The print spool and the database archives both rely on it: the data goes to `NAME.partial`, is
fsynced, renamed over `NAME`, and the directory is fsynced so that the rename itself survives.
The file is its owner's alone (0600) whatever the umask: receipts and archives hold sales.
"""

from __future__ import annotations

import os
from pathlib import Path

from domain.files import PRIVATE_FILE, private_opener

__all__ = ["fsync_dir", "write_durably"]


def write_durably(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb", opener=private_opener) as out:
        os.fchmod(out.fileno(), PRIVATE_FILE)  # a partial left by a crash was made anyhow
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    # A rename is durable once its directory is: without this a power cut can undo it.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
