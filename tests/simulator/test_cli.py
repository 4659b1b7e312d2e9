"""`forecourt simulate` as a user runs it."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from simulator.cli import build_parser, main

EXAMPLE = Path(__file__).parents[2] / "config" / "station.example.toml"


@pytest.mark.parametrize(
    "argv",
    [
        ["--listen", "nonsense"],
        ["--listen", "127.0.0.1:99999"],
        ["--pumps", "0"],
        ["--pumps", "2", "--config", "x.toml"],
        ["--listen", "127.0.0.1:0", "--pty"],
        ["--flow", "-3"],
        ["--baudrate", "1200"],
        ["--config", "/nonexistent/station.toml"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err.strip()


def test_config_with_two_lines_needs_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    if not EXAMPLE.exists():
        pytest.skip("no example config in this tree")
    assert main(["--config", str(EXAMPLE)]) == 2
    assert "--line" in capsys.readouterr().err


def test_defaults() -> None:
    args = build_parser().parse_args([])
    assert (args.pumps, args.nozzles_per_pump, args.baudrate, args.line_faithful) == (
        2,
        2,
        9600,
        False,
    )
    assert args.listen is None and not args.pty and args.control is None


def test_runs_prints_where_it_listens_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulator.cli",
            "--pumps",
            "1",
            "--listen",
            "127.0.0.1:0",
            "--control",
            "127.0.0.1:0",
            "--seed",
            "3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line_out = process.stdout.readline()
        control_out = process.stdout.readline()
        match = re.search(r"socket://127\.0\.0\.1:(\d+)", line_out)
        assert match, line_out
        with socket.create_connection(("127.0.0.1", int(match[1])), timeout=5) as sock:
            sock.sendall(bytes.fromhex("50 20 FA"))
            reply = sock.recv(64)
        assert reply[:2] == bytes.fromhex("50 30")  # DATA, TX# 0: the status of a fresh pump
        control = re.search(r"http://127\.0\.0\.1:\d+", control_out)
        assert control, control_out
        with urllib.request.urlopen(control[0] + "/state", timeout=5) as response:
            assert json.load(response)["pumps"][0]["address"] == 0x50
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_firmware_per_pump_from_the_command_line() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulator.cli",
            "--pumps",
            "2",
            "--firmware",
            "milli",
            "--firmware",
            "0x51=legacy+pump-wide-totals",
            "--listen",
            "127.0.0.1:0",
            "--control",
            "127.0.0.1:0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line_out = process.stdout.readline()
        control_out = process.stdout.readline()
        assert "0x50 (milli), 0x51 (legacy+pump-wide-totals)" in line_out, line_out
        control = re.search(r"http://127\.0\.0\.1:\d+", control_out)
        assert control, control_out
        with urllib.request.urlopen(control[0] + "/state", timeout=5) as response:
            pumps = json.load(response)["pumps"]
        assert [p["firmware"] for p in pumps] == ["milli", "legacy+pump-wide-totals"]
        assert pumps[0]["decimals"] == {"volume": 3, "amount": 2, "price": 3}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_help_lists_the_firmware(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("rev211", "legacy", "milli", "bare", "pump-wide-totals", "first-command-only"):
        assert name in out
