"""What `forecourt run` and `forecourt demo` check before they start anything.

A port another program holds, a serial device that is not there, a database folder the daemon
cannot write: each is one line naming the problem and the option that changes it, and exit
status 2 (systemd does not restart it: restarting cannot fix a setting), never a traceback.
"""

from __future__ import annotations

import errno
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

#: How long a missing serial device is waited for: a USB adapter enumerated late at boot.
DEVICE_WAIT_SECONDS = 5.0


class StartProblem(Exception):
    """One line for the person starting the station: what is wrong and what changes it."""


def check_listen(host: str, port: int, option: str) -> None:
    """StartProblem when nothing could listen on host:port now."""
    if port == 0:
        return  # any free port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StartProblem(f"port {port} on {host} is in use by another program "
                                   f"(another forecourt?); choose another with {option}"
                                   ) from None
            if exc.errno == errno.EACCES:
                raise StartProblem(f"not allowed to listen on port {port} (ports below 1024 "
                                   f"need privileges); choose another with {option}") from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise StartProblem(f"{host} is not an address of this computer; choose "
                                   f"another with {option}") from None
            raise StartProblem(f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                               f"choose another with {option}") from None


def check_devices(devices: Iterable[tuple[str, str]], *,
                  wait: float | None = None,
                  clock: Callable[[], float] = time.monotonic,
                  sleep: Callable[[float], None] = time.sleep) -> None:
    """StartProblem for a serial device path (`/dev/...`) that does not exist, after waiting
    `wait` seconds for it to appear. `devices` are (device, the option naming it); pyserial
    URLs (socket://, rfc2217://, loop://) are not files and are not checked."""
    paths = [(device, option) for device, option in devices if device.startswith("/")]
    deadline = clock() + (DEVICE_WAIT_SECONDS if wait is None else wait)
    while True:
        missing = [(device, option) for device, option in paths if not os.path.exists(device)]
        if not missing or clock() >= deadline:
            break
        sleep(0.2)
    if missing:
        device, option = missing[0]
        raise StartProblem(f"serial device {device} does not exist (unplugged, or another "
                           f"name: ls /dev/serial/by-id/); change {option}")


def check_database(path: Path, option: str) -> None:
    """StartProblem when the database's folder or file cannot be written."""
    folder = path.parent
    if not folder.is_dir():
        raise StartProblem(f"the database folder {folder} does not exist; create it or "
                           f"choose another with {option}")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
        if path.exists():
            with path.open("r+b"):
                pass
    except OSError as exc:
        what = exc.strerror or str(exc)
        raise StartProblem(f"the database {path} cannot be written ({what}); give its folder "
                           f"to the user running forecourt, or choose another with {option}"
                           ) from None
