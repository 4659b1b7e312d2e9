"""`forecourt user ...` as a technician runs it: real processes, a real database file, PINs on
standard input or typed at a terminal (a pty), never needing the command line."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from domain.model import Role
from edge.store import Store
from edge.store.users import pin_matches
from tests.helpers import StationSpec

PIN = "90817263"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "station.toml"
    spec = StationSpec(port_url="socket://127.0.0.1:1", db=tmp_path / "station.db", api_port=1)
    path.write_text(spec.toml(), "utf-8")
    return path


def forecourt(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge.cli", *args], input=stdin,
                          capture_output=True, text=True, timeout=60, check=False)


def db_of(config: Path) -> Path:
    return config.parent / "station.db"


def pin_of(config: Path, name: str) -> str:
    with Store.open(db_of(config)) as store:
        found = store.user_login(name)
    assert found is not None
    return found.pin_hash


def test_a_pin_on_standard_input_saves_the_user_and_is_audited(config: Path) -> None:
    done = forecourt("user", "add", "li", "--role", "cashier", "--pin-stdin",
                     "--config", str(config), stdin=f"{PIN}\n")
    assert done.returncode == 0, done.stderr
    assert "saved with role cashier" in done.stdout
    assert done.stderr == ""  # no warning: the PIN never was on the command line
    assert pin_matches(PIN, pin_of(config, "li"))
    with Store.open(db_of(config)) as store:
        (entry,) = store.audit_entries()
    assert (entry.actor, entry.action, entry.target) == ("cli", "user.save", "li")
    assert entry.details["role"] == "cashier" and entry.details["os_user"]
    assert PIN not in str(entry.details)


def test_a_pin_on_the_command_line_still_works_with_a_warning(config: Path) -> None:
    done = forecourt("user", "add", "li", "--role", "cashier", "--pin", PIN,
                     "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert "--pin-stdin" in done.stderr and "ps" in done.stderr
    assert pin_matches(PIN, pin_of(config, "li"))
    # "-" reads standard input, as before, without the warning.
    done = forecourt("user", "add", "li", "--role", "cashier", "--pin", "-",
                     "--config", str(config), stdin="1357\n")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert pin_matches("1357", pin_of(config, "li"))


def test_without_a_pin_and_without_a_terminal_nothing_is_saved(config: Path) -> None:
    done = forecourt("user", "add", "li", "--role", "cashier", "--config", str(config),
                     stdin="")
    assert done.returncode == 2
    assert "--pin-stdin" in done.stderr
    with Store.open(db_of(config)) as store:
        assert store.list_users() == []


@pytest.mark.parametrize(("name", "pin", "says"), [
    ("r\u043eot", PIN, "one script"),
    ("li", "12", "4 to 12 digits"),
])
def test_a_refused_name_or_pin_exits_2(config: Path, name: str, pin: str, says: str) -> None:
    done = forecourt("user", "add", name, "--role", "cashier", "--pin-stdin",
                     "--config", str(config), stdin=f"{pin}\n")
    assert done.returncode == 2 and says in done.stderr, done.stderr


def test_a_lookalike_of_an_existing_user_is_refused(config: Path) -> None:
    with Store.open(db_of(config)) as store:
        store.upsert_user("poe", role=Role.MANAGER, pin=PIN)
    done = forecourt("user", "add", "\u0440\u043e\u0435", "--role", "admin", "--pin-stdin",
                     "--config", str(config), stdin=f"{PIN}\n")
    assert done.returncode == 2 and "'poe'" in done.stderr, done.stderr


def _read_until(fd: int, text: bytes, seen: bytearray, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"no {text!r} from the command; it said {bytes(seen)!r}")
        try:
            seen.extend(os.read(fd, 1024))
        except OSError:  # the command ended and closed the terminal
            raise AssertionError(f"no {text!r}; it said {bytes(seen)!r}") from None


def test_at_a_terminal_the_pin_is_asked_twice_without_echo(config: Path) -> None:
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "user", "add", "wang", "--role", "attendant",
         "--config", str(config)],
        stdin=terminal, stdout=terminal, stderr=terminal, start_new_session=True)
    os.close(terminal)
    seen = bytearray()
    try:
        _read_until(controller, b"PIN (4-12 digits): ", seen)
        os.write(controller, b"2468\n")
        _read_until(controller, b"the same PIN again: ", seen)
        os.write(controller, b"2468\n")
        _read_until(controller, b"saved with role attendant", seen)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)
    assert b"2468" not in seen  # never echoed
    assert pin_matches("2468", pin_of(config, "wang"))


def test_disable_enable_unlock_and_list(config: Path) -> None:
    with Store.open(db_of(config)) as store:
        store.upsert_user("li", role=Role.CASHIER, pin=PIN)
    cfg = str(config)
    assert forecourt("user", "disable", "li", "--config", cfg).returncode == 0
    listed = forecourt("user", "list", "--config", cfg)
    assert listed.stdout.split() == ["li", "cashier", "disabled"]
    assert forecourt("user", "enable", "li", "--config", cfg).returncode == 0
    assert forecourt("user", "list", "--config", cfg).stdout.split() == [
        "li", "cashier", "enabled"]
    unlocked = forecourt("user", "unlock", "li", "--config", cfg)
    assert unlocked.returncode == 0 and "lifted" in unlocked.stdout
    with Store.open(db_of(config)) as store:
        assert set(store.user_unlock_requests()) == {"li"}
        actions = [(e.actor, e.action, e.target) for e in store.audit_entries()]
    assert actions == [("cli", "user.disable", "li"), ("cli", "user.enable", "li"),
                       ("cli", "user.unlock", "li")]
    for action in ("disable", "enable", "unlock"):
        unknown = forecourt("user", action, "nobody", "--config", cfg)
        assert unknown.returncode == 1 and "no user 'nobody'" in unknown.stderr
