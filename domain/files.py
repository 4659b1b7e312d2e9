"""Files and folders the station makes are its owner's alone, whatever the umask.

Sales, PINs' hashes, the audit log, receipts and keys are in them: a copy another local user can
read is a PIN brute-forced offline. So every file the daemon and the command line create is
mode 0600 and every folder 0700, set where the file is made (not left to the umask), and the
command line also sets the umask to 0077 at start so that files made inside libraries (SQLite's
`-wal` and `-shm`, a speech engine's WAV) are covered too.

    private_dir(folder)                 # mkdir -p, each folder it creates 0700
    create_private(path)                # an empty file 0600 (or an existing one made 0600)
    open(path, "wb", opener=private_opener)
    tighten(path)                       # a file made earlier by a looser release: 0600 now

An existing folder is left as it is: /var/lib/forecourt belongs to systemd (StateDirectoryMode=).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

__all__ = [
    "PRIVATE_DIR",
    "PRIVATE_FILE",
    "PRIVATE_UMASK",
    "create_private",
    "mode_of",
    "open_to_others",
    "private_dir",
    "private_opener",
    "tighten",
]

PRIVATE_UMASK = 0o077
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def mode_of(path: Path) -> int:
    """The permission bits of `path`, as `ls -l` shows them (0o600)."""
    return stat.S_IMODE(path.stat().st_mode)


def open_to_others(path: Path) -> bool:
    """True when the group or others have any access to `path`."""
    return mode_of(path) & 0o077 != 0


def private_dir(folder: Path) -> None:
    """Creates `folder` and its missing parents, each created one mode 0700."""
    missing: list[Path] = []
    current = folder
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for created in reversed(missing):
        try:
            os.mkdir(created, PRIVATE_DIR)
        except FileExistsError:
            continue  # made meanwhile by another process: not ours to change
        os.chmod(created, PRIVATE_DIR)  # the umask may only have taken bits away; say exactly
    if not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(folder))


def private_opener(path: str, flags: int) -> int:
    """An `opener` for `open()`: a file it creates is 0600 from its first byte; a file that is
    already there (a printer's device node) keeps its mode."""
    if not flags & os.O_CREAT:
        return os.open(path, flags)
    try:
        fd = os.open(path, flags | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        if flags & os.O_EXCL:
            raise
        return os.open(path, flags & ~os.O_CREAT)
    try:
        os.fchmod(fd, PRIVATE_FILE)  # the umask may only have taken bits away; say exactly
    except BaseException:
        os.close(fd)
        raise
    return fd


def create_private(path: Path) -> None:
    """`path` exists, mode 0600: created empty when missing, tightened when it is not."""
    fd = private_opener(str(path), os.O_WRONLY | os.O_CREAT)
    os.close(fd)
    tighten(path)


def tighten(path: Path) -> bool:
    """Makes an existing file of ours 0600; False when it is missing or not ours to change."""
    try:
        if not open_to_others(path):
            return True
        os.chmod(path, PRIVATE_FILE)
    except FileNotFoundError:
        return False
    except PermissionError:
        return False  # another user's file (root ran a command by hand): reported by the caller
    return True
