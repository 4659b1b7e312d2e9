"""The files of an archive (archive.py): one table's rows as gzip'd JSON lines, written so that
they are either complete and on disk under their name, or not there at all.

One JSON object per line, one line per row, the columns as SQLite stores them: decimals stay the
exact TEXT they are ("300.00"), times the UTC text, NULL is null. `zcat FILE | jq` reads them.
The gzip stream has no name and a zero time inside, so the same rows always give the same bytes
(an interrupted archive run, done again, writes the same files).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from domain.files import private_opener
from drivers.files import fsync_dir


@dataclass(frozen=True)
class ArchiveFile:
    table: str
    file: str  # the name, in the archive's directory
    rows: int
    sha256: str  # of the file's bytes, as stored (compressed)
    bytes: int


class _Hashing:
    """The compressed bytes on their way to the file, hashed as they pass."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


class TableFile:
    """One table's rows; in place under its name only once complete and fsynced (close)."""

    def __init__(self, directory: Path, name: str, table: str) -> None:
        self.table = table
        self.path = directory / f"{name}.{table}.jsonl.gz"
        self._partial = self.path.with_name(self.path.name + ".partial")
        self._partial.unlink(missing_ok=True)  # left by a run that died: made anew, 0600
        # Closed in close() or abandon().
        self._raw = open(self._partial, "wb", opener=private_opener)  # noqa: SIM115
        self._hashing = _Hashing(self._raw)
        self._gzip = gzip.GzipFile(filename="", mode="wb", fileobj=self._hashing, mtime=0)
        self.rows = 0

    def write(self, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        for row in rows:
            line = json.dumps(dict(zip(columns, row, strict=True)), ensure_ascii=False,
                              separators=(",", ":"))  # fmt: skip
            self._gzip.write(line.encode() + b"\n")
        self.rows += len(rows)

    def abandon(self) -> None:
        self._gzip.close()
        self._raw.close()
        self._partial.unlink(missing_ok=True)

    def close(self) -> ArchiveFile:
        self._gzip.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        os.replace(self._partial, self.path)
        fsync_dir(self.path.parent)
        return ArchiveFile(self.table, self.path.name, self.rows, self._hashing.digest.hexdigest(),
                           self._hashing.size)  # fmt: skip


def read_back(directory: Path, entry: ArchiveFile) -> str | None:
    """Reads a written file back from disk: what is wrong with it, None when it holds the bytes
    written and every row (gzip checks the CRC of its content at the end)."""
    path = directory / entry.file
    if file_sha256(path) != entry.sha256:
        return f"{path} does not read back as written"
    lines = 0
    with gzip.open(path, "rb") as text:
        for chunk in iter(lambda: text.read(1 << 20), b""):
            lines += chunk.count(b"\n")
    if lines != entry.rows:
        return f"{path} holds {lines} rows, {entry.rows} were written"
    return None


def problem(path: Path, sha256: str) -> str | None:
    """What is wrong with a recorded file now: missing or changed; None when intact."""
    if not path.is_file():
        return f"{path} is missing"
    if file_sha256(path) != sha256:
        return f"{path} has changed (sha256 differs from the one recorded)"
    return None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        for chunk in iter(lambda: data.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
