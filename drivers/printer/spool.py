"""The spool: print jobs as files in a directory, so they outlive a printer being off and a
restart of the station.

A job is written whole to a temporary name, flushed to disk and renamed into place, so a power
cut leaves either the complete job or none. Jobs are numbered from a counter kept beside them;
the number orders the queue and is printed on the receipt as its receipt number (小票号). A job
that cannot be read back is moved to `corrupt/` rather than retried forever. Jobs are receipts:
their files are 0600 and their folders 0700 whatever the umask.
"""

from __future__ import annotations

import contextlib
import json
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from domain.files import private_dir
from drivers.files import fsync_dir, write_durably

__all__ = ["Job", "Spool", "SpoolError"]

MAGIC = b"FCPJ1\n"  # forecourt print job, format 1
SUFFIX = ".job"
COUNTER = "last-number"
_NUMBER_DIGITS = 10


class SpoolError(Exception):
    """A spool file that is not a job, or a spool directory that cannot be used."""


@dataclass(frozen=True)
class Job:
    """One thing to print: the printer's bytes and what they are, for logs and alarms."""

    number: int
    kind: str  # "receipt", "report", ...
    ref: str  # what it prints, e.g. a sale id
    copies: int
    created_at: datetime  # UTC
    data: bytes

    def to_bytes(self) -> bytes:
        header = {
            "number": self.number,
            "kind": self.kind,
            "ref": self.ref,
            "copies": self.copies,
            "created_at": self.created_at.astimezone(UTC).isoformat(),
            "size": len(self.data),
            "crc32": zlib.crc32(self.data),
        }
        line = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode()
        return MAGIC + line + b"\n" + self.data

    @classmethod
    def from_bytes(cls, raw: bytes) -> Job:
        if not raw.startswith(MAGIC):
            raise SpoolError("not a print job")
        line, newline, data = raw[len(MAGIC):].partition(b"\n")
        if not newline:
            raise SpoolError("truncated job header")
        try:
            header = json.loads(line)
            job = cls(number=int(header["number"]), kind=str(header["kind"]),
                      ref=str(header["ref"]), copies=int(header["copies"]),
                      created_at=datetime.fromisoformat(header["created_at"]), data=data)
            size, crc = int(header["size"]), int(header["crc32"])
        except (ValueError, KeyError, TypeError) as exc:
            raise SpoolError(f"bad job header: {exc}") from None
        if len(data) != size or zlib.crc32(data) != crc:
            raise SpoolError(f"job data damaged ({len(data)} of {size} bytes)")
        if job.created_at.tzinfo is None:
            raise SpoolError("job time has no offset")
        return job


class Spool:
    """The job files of one printer. Not thread-safe: the print queue serializes access."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        try:
            private_dir(directory)
            for leftover in directory.glob("*.tmp"):  # a write a crash interrupted
                leftover.unlink()
            self._numbers = sorted(n for n in (self._number_of(p) for p in self._files())
                                   if n is not None)
        except OSError as exc:
            raise SpoolError(f"cannot use spool directory {directory}: {exc.strerror}") from exc
        self._last = max([self._read_counter(), *self._numbers], default=0)

    def _files(self) -> list[Path]:
        return list(self.directory.glob(f"*{SUFFIX}"))

    @staticmethod
    def _number_of(path: Path) -> int | None:
        stem = path.name[: -len(SUFFIX)]
        return int(stem) if stem.isdigit() else None

    def _read_counter(self) -> int:
        try:
            return int((self.directory / COUNTER).read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _path(self, number: int) -> Path:
        return self.directory / f"{number:0{_NUMBER_DIGITS}d}{SUFFIX}"

    def numbers(self) -> list[int]:
        """Waiting jobs, oldest first."""
        return list(self._numbers)

    def __len__(self) -> int:
        return len(self._numbers)

    def add(self, make: Callable[[int], Job]) -> Job:
        """Number a new job (`make` builds it for its number), write it durably, queue it."""
        number = self._last + 1
        job = make(number)
        if job.number != number:
            raise ValueError(f"job built with number {job.number}, expected {number}")
        # The counter first: a crash after it leaves a gap in receipt numbers, never a repeat.
        write_durably(self.directory / COUNTER, f"{number}\n".encode())
        self._last = number
        write_durably(self._path(number), job.to_bytes())
        fsync_dir(self.directory)
        self._numbers.append(number)
        return job

    def load(self, number: int) -> Job:
        try:
            job = Job.from_bytes(self._path(number).read_bytes())
        except OSError as exc:
            raise SpoolError(f"cannot read job {number}: {exc.strerror}") from exc
        if job.number != number:
            raise SpoolError(f"file of job {number} holds job {job.number}")
        return job

    def remove(self, number: int) -> None:
        """A printed (or discarded) job leaves the spool."""
        with contextlib.suppress(FileNotFoundError):
            self._path(number).unlink()
        with contextlib.suppress(ValueError):
            self._numbers.remove(number)

    def quarantine(self, number: int) -> Path:
        """Move an unreadable job aside, for a person to look at."""
        target_dir = self.directory / "corrupt"
        private_dir(target_dir)
        target = target_dir / self._path(number).name
        with contextlib.suppress(FileNotFoundError):
            os.replace(self._path(number), target)
        with contextlib.suppress(ValueError):
            self._numbers.remove(number)
        return target
