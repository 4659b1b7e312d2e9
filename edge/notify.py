"""systemd readiness and watchdog notifications (``Type=notify``).

The protocol is one datagram to the socket named in ``$NOTIFY_SOCKET``; it is a dozen lines, so it
is written here rather than pulling a C-extension binding (python-systemd) onto every station.
Outside systemd (no ``$NOTIFY_SOCKET``) every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


class SystemdNotifier:
    def __init__(self, address: str | None = None) -> None:
        self._address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        if self._address and self._address.startswith("@"):
            self._address = "\0" + self._address[1:]  # abstract namespace socket
        self._failed = False

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, *states: str) -> None:
        if not self._address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto("\n".join(states).encode(), self._address)
            self._failed = False
        except OSError as exc:
            # Logged once per outage: a missing watchdog ping restarts us anyway.
            if not self._failed:
                log.error("cannot notify systemd at %s: %s", self._address, exc)
            self._failed = True

    def ready(self, status: str = "") -> None:
        self.notify("READY=1", f"STATUS={status}" if status else "STATUS=running")

    def status(self, text: str) -> None:
        self.notify(f"STATUS={text}")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    @staticmethod
    def watchdog_interval() -> float | None:
        """Half the watchdog timeout systemd gave us, in seconds, or None without a watchdog."""
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if not usec or (pid and pid != str(os.getpid())):
            return None
        try:
            return int(usec) / 2_000_000
        except ValueError:
            return None
