"""`forecourt run` and `forecourt demo` on a port in use, a serial device that is not there or a
database that cannot be written: one line naming the problem and the option, exit status 2,
no traceback, nothing started."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge import preflight
from edge.cli import EXIT_CONFIG, main
from tests.helpers import StationSpec, free_port


@pytest.fixture
def taken() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def config(tmp_path: Path, *, port: int | None = None, line: str = "socket://127.0.0.1:9",
           db: Path | None = None) -> Path:
    spec = StationSpec(port_url=line, db=db or tmp_path / "station.db",
                       api_port=port or free_port())
    path = tmp_path / "station.toml"
    path.write_text(spec.toml(), "utf-8")
    return path


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_port_in_use(tmp_path: Path, taken: int, capsys: pytest.CaptureFixture[str]) -> None:
    path = config(tmp_path, port=taken)
    assert main(["run", "--config", str(path)]) == EXIT_CONFIG
    line = one_line(capsys)
    assert f"port {taken} on 127.0.0.1 is in use" in line and "[api] listen in" in line, line
    assert not (tmp_path / "station.db").exists()  # nothing started


def test_a_port_in_use_for_the_demo(tmp_path: Path, taken: int,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--port", str(taken), "--data", str(tmp_path / "demo")]) == EXIT_CONFIG
    assert "choose another with --port" in one_line(capsys)
    assert not (tmp_path / "demo").exists()


def test_a_serial_device_that_is_not_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(preflight, "DEVICE_WAIT_SECONDS", 0.0)
    path = config(tmp_path, line="/dev/ttyUSB-nothing-here")
    assert main(["run", "--config", str(path)]) == EXIT_CONFIG
    line = one_line(capsys)
    assert "serial device /dev/ttyUSB-nothing-here does not exist" in line, line
    assert "lines[0].port in" in line, line


def test_a_device_that_appears_late_is_waited_for(tmp_path: Path) -> None:
    device = tmp_path / "ttyUSB0"
    ticks = iter(range(100))

    def sleep(_: float) -> None:
        device.touch()  # the adapter enumerates while the station waits

    preflight.check_devices([(str(device), "x")], wait=5, clock=lambda: next(ticks) / 10,
                            sleep=sleep)


def test_a_database_that_cannot_be_written(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    # /sys refuses new files to everybody, root included.
    path = config(tmp_path, db=Path("/sys/forecourt-station.db"))
    assert main(["run", "--config", str(path)]) == EXIT_CONFIG
    line = one_line(capsys)
    assert "the database /sys/forecourt-station.db cannot be written" in line, line
    assert "[storage] path in" in line, line
