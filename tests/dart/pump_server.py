"""Fake pumps served over TCP (``socket://``) or a pty, each on one thread, for line tests."""

from __future__ import annotations

import os
import select
import socket
import threading

from .fake_pump import FakePump


class PumpServer:
    """Plays ``pumps`` to one TCP client at a time on 127.0.0.1; ``close()`` drops the client."""

    def __init__(self, *pumps: FakePump, port: int = 0) -> None:
        self.pumps = pumps
        self.lock = threading.Lock()  # the fake pumps are shared with the test
        self._listener = socket.create_server(("127.0.0.1", port))
        self._listener.settimeout(0.02)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="pump-server")
        self._thread.start()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(0.02)
                while not self._stop.is_set():
                    try:
                        data = connection.recv(4096)
                    except TimeoutError:
                        continue
                    except OSError:
                        break
                    if not data:
                        break
                    with self.lock:
                        reply = b"".join(p.feed(data) for p in self.pumps)
                    if reply:
                        connection.sendall(reply)


class PtyPump:
    """Plays one pump on the master side of a pty; the line opens ``path``."""

    def __init__(self, pump: FakePump) -> None:
        self.pump = pump
        self.lock = threading.Lock()
        self._master, self._slave = os.openpty()
        self.path = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="pty-pump")
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        os.close(self._master)
        os.close(self._slave)

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.02)
            if not ready:
                continue
            data = os.read(self._master, 4096)
            with self.lock:
                reply = self.pump.feed(data)
            if reply:
                os.write(self._master, reply)
