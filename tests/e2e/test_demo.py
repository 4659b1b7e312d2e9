"""`forecourt demo` as a newcomer runs it: it starts, drives its pumps, and stops on Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.helpers import free_port


def test_demo_starts_all_pumps_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "demo"
    process = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "demo", "--data", str(data), "--port", str(port),
         "--seed", "7"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        health: dict[str, object] = {}
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).json()
                lines = health.get("lines")
                if isinstance(lines, list) and lines and lines[0]["pumps_online"] == 4:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert health.get("status") == "ok", health
        session = httpx.post(f"http://127.0.0.1:{port}/api/v1/session",
                             json={"user": "attendant", "pin": "1111"}, timeout=5)
        assert session.status_code == 200
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert "加油站" in page.text
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "console:" in output
    assert (data / "station.db").exists() and (data / "station.toml").exists()
