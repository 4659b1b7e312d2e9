"""Log lines fit for journald: a `<N>` syslog priority per line and no timestamp of our own when
stderr is the journal's stream; a timestamped line at a terminal. And no money as float."""

from __future__ import annotations

import ast
import io
import logging
import os
import re
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from edge.logs import JournalFormatter, is_journal_stream, stream_handler, syslog_priority
from edge.store import Store
from edge.store.schema import MIGRATIONS
from tests.helpers import StationSpec, free_port

ROOT = Path(__file__).resolve().parents[2]

# A small program that logs the way the daemon does, through the CLI's own setup_logging().
LOGGING_PROGRAM = """
import logging
from edge.cli import setup_logging
setup_logging("DEBUG")
log = logging.getLogger("edge.pump")
log.debug("pump %d: poll", 1)
log.info("pump %d: sale %s recorded (%s L, %s)", 1, "S-1", "40.00", "300.00")
log.warning("pump %d offline (line %s)", 2, "line1")
log.error("printer %s: %s: %s", "network 10.0.0.5:9100", "paper_out", "no paper")
log.critical("station failed: %s", "disk gone")
try:
    1 / 0
except ZeroDivisionError:
    log.exception("receipt for sale %s failed", "S-2")
"""

JOURNAL_LINES = [
    "<7>edge.pump: pump 1: poll",
    "<6>edge.pump: pump 1: sale S-1 recorded (40.00 L, 300.00)",
    "<4>edge.pump: pump 2 offline (line line1)",
    "<3>edge.pump: printer network 10.0.0.5:9100: paper_out: no paper",
    "<2>edge.pump: station failed: disk gone",
    "<3>edge.pump: receipt for sale S-2 failed",
    "<3>Traceback (most recent call last):",
    '<3>  File "<string>", line 12, in <module>',
    "<3>ZeroDivisionError: division by zero",
]

TERMINAL_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG  |INFO   |WARNING|ERROR  "
                           r"|CRITICAL) edge\.pump: .+")


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("JOURNAL_STREAM", "INVOCATION_ID", "NOTIFY_SOCKET")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def _stream_id(path: Path) -> str:
    info = os.stat(path)
    return f"{info.st_dev}:{info.st_ino}"


def _run(argv: list[str], stderr_file: Path, **env: str) -> tuple[int, list[str]]:
    """Runs `argv` with stderr in `stderr_file`; `journal=True` in env makes that file the
    journal stream, as systemd does when it connects stderr to journald."""
    stderr_file.touch()
    if env.pop("journal", "") == "yes":
        env["JOURNAL_STREAM"] = _stream_id(stderr_file)
    with open(stderr_file, "wb") as err:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=err, env=_environment(**env), timeout=60, check=False,
                              cwd=ROOT)
    return done.returncode, stderr_file.read_text("utf-8").splitlines()


def _record(level: int, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("edge.pump", level, __file__, 1, msg, args, None)


# ----------------------------------------------------------------------------- the formatter


@pytest.mark.parametrize(("level", "priority"), [
    (logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6),
    (logging.DEBUG, 7), (25, 6), (35, 4), (logging.NOTSET, 7), (100, 2)])
def test_levels_map_to_sd_daemon_priorities(level: int, priority: int) -> None:
    assert syslog_priority(level) == priority


def test_a_journal_line_is_priority_logger_and_message() -> None:
    line = JournalFormatter().format(_record(logging.WARNING, "pump %d offline", 3))
    assert line == "<4>edge.pump: pump 3 offline"


def test_every_line_of_a_traceback_keeps_the_record_priority() -> None:
    try:
        raise RuntimeError("line one\nline two")
    except RuntimeError:
        record = logging.LogRecord("edge.station", logging.CRITICAL, __file__, 1,
                                   "station failed", (), sys.exc_info())
    lines = JournalFormatter().format(record).split("\n")
    assert lines[0] == "<2>edge.station: station failed"
    assert lines[1] == "<2>Traceback (most recent call last):"
    assert lines[-2:] == ["<2>RuntimeError: line one", "<2>line two"]
    assert all(line.startswith("<2>") for line in lines)


def test_the_journal_is_recognised_by_its_stream_not_by_a_variable(tmp_path: Path) -> None:
    path = tmp_path / "stderr"
    other = tmp_path / "other"
    path.touch()
    other.touch()
    with open(path, "w") as stream:
        assert is_journal_stream(stream, {"JOURNAL_STREAM": _stream_id(path)})
        # Inherited from a parent whose stderr was the journal, but ours is redirected.
        assert not is_journal_stream(stream, {"JOURNAL_STREAM": _stream_id(other)})
        assert not is_journal_stream(stream, {"JOURNAL_STREAM": "garbage"})
        assert not is_journal_stream(stream, {"INVOCATION_ID": "0123abcd"})
        assert not is_journal_stream(stream, {})
    assert not is_journal_stream(io.StringIO(), {"JOURNAL_STREAM": _stream_id(path)})


def test_the_terminal_handler_keeps_a_timestamp() -> None:
    stream = io.StringIO()
    handler = stream_handler(stream, {})
    handler.emit(_record(logging.INFO, "pump %d idle", 1))
    assert TERMINAL_LINE.fullmatch(stream.getvalue().rstrip("\n"))


# ------------------------------------------------------------------------ real processes


def test_on_the_journal_each_line_has_its_priority_and_no_timestamp(tmp_path: Path) -> None:
    code, lines = _run([sys.executable, "-c", LOGGING_PROGRAM], tmp_path / "stderr",
                       journal="yes")
    assert code == 0
    assert lines == JOURNAL_LINES


def test_at_a_terminal_lines_are_timestamped(tmp_path: Path) -> None:
    code, lines = _run([sys.executable, "-c", LOGGING_PROGRAM], tmp_path / "stderr")
    assert code == 0
    records = [line for line in lines if TERMINAL_LINE.fullmatch(line)]
    assert len(records) == 6
    assert records[2].endswith(" WARNING edge.pump: pump 2 offline (line line1)")
    assert lines[-1] == "ZeroDivisionError: division by zero"  # traceback lines as they are


def test_a_redirected_stderr_under_systemd_is_not_the_journal(tmp_path: Path) -> None:
    elsewhere = tmp_path / "journal"
    elsewhere.touch()
    code, lines = _run([sys.executable, "-c", LOGGING_PROGRAM], tmp_path / "stderr",
                       JOURNAL_STREAM=_stream_id(elsewhere), INVOCATION_ID="0123abcd")
    assert code == 0
    assert TERMINAL_LINE.fullmatch(lines[0])


def test_a_port_another_program_holds_is_one_line_before_anything_starts(tmp_path: Path) -> None:
    config = tmp_path / "station.toml"
    with socket.socket() as taken:  # another program holds the console's port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config.write_text(StationSpec(port_url="socket://127.0.0.1:9", db=tmp_path / "station.db",
                                      api_port=port).toml(), "utf-8")
        code, lines = _run([sys.executable, "-m", "edge.cli", "run", "--config", str(config)],
                           tmp_path / "stderr", journal="yes")
    assert code == 2  # a setting: systemd's RestartPreventExitStatus, no restart loop
    assert lines == [f"forecourt: port {port} on 127.0.0.1 is in use by another program "
                     f"(another forecourt?); choose another with [api] listen in {config}"]
    assert not (tmp_path / "station.db").exists(), "nothing starts before the check"


# The port taken between the check and uvicorn's bind: uvicorn logs why and ends with
# sys.exit(3). Here that is made to happen at uvicorn's boundary, the rest is the real daemon.
LOST_BIND_PROGRAM = """
import sys
import uvicorn

async def serve(self, sockets=None):
    sys.exit(3)

uvicorn.Server.serve = serve
from edge.cli import main
raise SystemExit(main(["run", "--config", sys.argv[1]]))
"""


def test_the_daemon_failing_at_start_logs_at_critical_on_the_journal(tmp_path: Path) -> None:
    config = tmp_path / "station.toml"
    port = free_port()
    config.write_text(StationSpec(port_url="socket://127.0.0.1:9", db=tmp_path / "station.db",
                                  api_port=port).toml(), "utf-8")
    code, lines = _run([sys.executable, "-c", LOST_BIND_PROGRAM, str(config)],
                       tmp_path / "stderr", journal="yes")
    assert code == 1  # systemd starts it again
    crit = [line for line in lines if line.startswith("<2>")]
    assert crit[0] == (f"<2>forecourt: station failed: cannot serve the API on 127.0.0.1:{port} "
                       "(in use by another program?)"), lines
    assert any("Traceback (most recent call last):" in line for line in crit)
    # One priority for the whole record: `journalctl -p crit` shows the traceback with it.
    first = lines.index(crit[0])
    assert all(line.startswith("<2>") for line in lines[first:]), lines


def test_a_database_from_a_newer_release_is_one_critical_line(tmp_path: Path) -> None:
    db = tmp_path / "station.db"
    Store.open(db).close()
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    config = tmp_path / "station.toml"
    config.write_text(StationSpec(port_url="socket://127.0.0.1:9", db=db,
                                  api_port=free_port()).toml(), "utf-8")
    code, lines = _run([sys.executable, "-m", "edge.cli", "run", "--config", str(config)],
                       tmp_path / "stderr", journal="yes")
    assert code == 3  # systemd's RestartPreventExitStatus: no restart loop
    assert lines == [line for line in lines if line.startswith("<2>")]
    assert len(lines) == 1, lines
    assert lines[0].startswith("<2>forecourt: station cannot start: the database has schema "
                               f"version {len(MIGRATIONS) + 1}")


# ----------------------------------------------------------------- what the log lines say

_LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical", "log"}
# printf conversions and format specs that render a float.
_FLOAT_PRINTF = re.compile(r"%[-+ #0]*(\d+|\*)?(\.\d+)?[eEfFgG]")
_FLOAT_SPEC = re.compile(r"[eEfFgG%]$")


def _log_calls(tree: ast.AST) -> list[ast.Call]:
    calls: list[ast.Call] = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in _LOG_METHODS):
            target = node.func.value
            name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
            if name in ("log", "logger", "_log", "logging"):
                calls.append(node)
    return calls


# A log call is about money or fuel when a value it logs is named so, or when its text puts a
# currency or litre unit right at a number.
_MONEY_NAME = re.compile(r"amount|price|volume|paid|refund|total|preset|due|payment|cost|litre|"
                         r"liter|yuan", re.IGNORECASE)
_MONEY_TEXT = re.compile(r"[¥￥]\s*%|%[-+ #0]*\d*(\.\d+)?[a-zA-Z]\s*(L\b|升|元)")


def _about_money(call: ast.Call) -> bool:
    for arg in call.args:
        for node in ast.walk(arg):
            if isinstance(node, ast.Name) and _MONEY_NAME.search(node.id):
                return True
            if isinstance(node, ast.Attribute) and _MONEY_NAME.search(node.attr):
                return True
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and _MONEY_TEXT.search(node.value):
                return True
    return False


def _float_problems(call: ast.Call) -> list[str]:
    """How a log call about money renders a number through float; [] when it does not."""
    if not _about_money(call):
        return []  # a duration or a clock step in seconds may well be "%.1f s"
    problems: list[str] = []
    for arg in call.args:
        for node in ast.walk(arg):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and _FLOAT_PRINTF.search(node.value):
                problems.append(f"float conversion in {node.value!r}")
            if isinstance(node, ast.FormattedValue) and node.format_spec is not None:
                spec = "".join(str(v.value) for v in ast.walk(node.format_spec)
                               if isinstance(v, ast.Constant))
                if _FLOAT_SPEC.search(spec):
                    problems.append(f"float format spec {spec!r}")
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "float":
                problems.append("float() in a log argument")
    return problems


def test_no_log_line_renders_money_as_float() -> None:
    """Money and volumes are Decimals written as they are ("300.00"); a %.2f would round
    through binary floating point."""
    found: list[str] = []
    for package in ("edge", "drivers", "sync"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text("utf-8"), str(path))
            for call in _log_calls(tree):
                found.extend(f"{path.relative_to(ROOT)}:{call.lineno}: {problem}"
                             for problem in _float_problems(call))
    assert not found, "\n".join(found)


def test_the_float_check_finds_what_it_looks_for() -> None:
    tree = ast.parse('log.info("paid %.2f", amount)\nlogger.warning(f"{volume:.3f} L")\n'
                     'self.log.error("%.1f L", float(x))\nlog.info("%s of %d", a, b)\n'
                     'log.warning("sale times jump: clock stepped by %+.0f s", step)\n')
    problems = [p for call in _log_calls(tree) for p in _float_problems(call)]
    assert problems == ["float conversion in 'paid %.2f'", "float format spec '.3f'",
                        "float conversion in '%.1f L'", "float() in a log argument"]
