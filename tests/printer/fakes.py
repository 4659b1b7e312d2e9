"""Fake printers: a network printer over a real TCP socket, and python-escpos's Dummy with a
paper sensor (the library's own test printer, given an answer to DLE EOT)."""

from __future__ import annotations

import socket
import socketserver
import threading
from typing import Any

from escpos.printer import Dummy

DLE_EOT = b"\x10\x04"


class PrinterState:
    """What a fake printer reports: DLE EOT 1 (online), 2 (offline cause), 4 (paper)."""

    def __init__(self) -> None:
        self.online = True
        self.cover_open = False
        self.paper = "ok"  # "ok", "low", "out"
        self.answers_status = True

    def status_byte(self, n: int) -> int:
        value = 0x12  # bits 1 and 4 are always set
        if n == 1 and (not self.online or self.cover_open or self.paper == "out"):
            value |= 0x08
        elif n == 2:
            value |= (0x04 if self.cover_open else 0) | (0x20 if self.paper == "out" else 0)
        elif n == 4:
            value |= {"ok": 0x00, "low": 0x0C, "out": 0x6C}[self.paper]
        return value


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        fake = self.server.fake
        sock: socket.socket = self.request
        sock.settimeout(10)
        received = bytearray()
        pending = b""
        try:
            while chunk := sock.recv(4096):
                pending += chunk
                while (at := pending.find(DLE_EOT)) >= 0 and at + 2 < len(pending):
                    received += pending[:at]
                    n = pending[at + 2]
                    pending = pending[at + 3 :]
                    fake.status_queries.append(n)
                    if fake.state.answers_status:
                        sock.sendall(bytes([fake.state.status_byte(n)]))
                keep = 2 if pending.endswith(DLE_EOT) else 1 if pending.endswith(b"\x10") else 0
                received += pending[: len(pending) - keep]
                pending = pending[len(pending) - keep :]
        except OSError:
            pass
        fake.job_done(bytes(received + pending))


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = False
    block_on_close = True
    fake: FakeNetworkPrinter


class FakeNetworkPrinter:
    """An ESC/POS printer on 127.0.0.1:`port`: answers status queries from `state` and keeps
    the other bytes of each connection as one job."""

    def __init__(self, port: int = 0, state: PrinterState | None = None) -> None:
        self.state = state or PrinterState()
        self.jobs: list[bytes] = []
        self.status_queries: list[int] = []
        self._cond = threading.Condition()
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.fake = self
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, name="fake-printer")

    def job_done(self, data: bytes) -> None:
        with self._cond:
            if data:
                self.jobs.append(data)
            self._cond.notify_all()

    def wait_jobs(self, count: int, timeout: float = 10.0) -> list[bytes]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.jobs) >= count, timeout):
                raise AssertionError(f"{len(self.jobs)} job(s) printed, expected {count}")
            return list(self.jobs)

    def __enter__(self) -> FakeNetworkPrinter:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class PaperSensorDummy(Dummy):  # type: ignore[misc]
    """python-escpos's Dummy printer with a paper sensor: it answers DLE EOT from `state` and
    hands what it printed to `printed` when closed, as a printer would have printed it."""

    def __init__(self, state: PrinterState, printed: list[bytes]) -> None:
        super().__init__()
        self._state = state
        self._printed = printed
        self._asked = 0
        self.closed = False

    def _raw(self, msg: bytes) -> None:
        if msg[:2] == DLE_EOT:
            self._asked = msg[2]
            return  # a real-time command: answered, never printed
        super()._raw(msg)

    def _read(self) -> bytes:
        return bytes([self._state.status_byte(self._asked)])

    def close(self) -> None:
        if not self.closed and self.output:
            self._printed.append(self.output)
        self.closed = True


class DummyPrinters:
    """A `connect` factory of PaperSensorDummy printers sharing one state; counts attempts."""

    def __init__(self) -> None:
        self.state = PrinterState()
        self.printed: list[bytes] = []
        self.attempts = 0
        self._cond = threading.Condition()

    def __call__(self) -> PaperSensorDummy:
        with self._cond:
            self.attempts += 1
            self._cond.notify_all()
        return PaperSensorDummy(self.state, self.printed)

    def wait_attempts(self, count: int, timeout: float = 10.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.attempts >= count, timeout):
                raise AssertionError(f"{self.attempts} attempt(s), expected {count}")
