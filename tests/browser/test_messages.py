"""The console's one message table (edge/static/messages.js) against the codes people meet.

Every alarm, alert and error code of docs/runbook.md must have its Chinese text, so that no
code reaches a station person raw; the table itself must be Chinese. No browser needed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "edge" / "static"
RUNBOOK = ROOT / "docs" / "runbook.md"
# Runbook sections whose first column is not a code a person meets in the console: the health
# endpoint's fields, the restore command's refusals, metric names.
NOT_CODES = ("Station health", "Restoring a backup", "Figures worth an alert rule")
# Header words in a first column, not codes.
HEADERS = {"code", "kind", "alarm"}


def tables() -> dict[str, dict[str, str]]:
    """messages.js's tables: {table: {key: text}}, read from its one-pair-a-line layout."""
    text = (STATIC / "messages.js").read_text("utf-8")
    found: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        start = re.match(r"\s+([a-z_]+): \{$", line)
        if start:
            current = found.setdefault(start.group(1), {})
            continue
        pair = re.match(r'\s+"([^"]+)": "([^"]*)",$', line)
        if pair and current is not None:
            current[pair.group(1)] = pair.group(2)
    return found


def runbook_codes(text: str) -> set[str]:
    """The codes in the first column of the runbook's tables (a code, or several separated
    by commas, in backticks), outside NOT_CODES."""
    codes: set[str] = set()
    section = ""
    for line in text.splitlines():
        if line.startswith("#"):
            section = line.lstrip("# ")
            continue
        if not line.startswith("| `") or section.startswith(NOT_CODES):
            continue
        first = line.split("|")[1]
        for span in re.findall(r"`([^`]+)`", first):
            for part in span.split(","):
                code = part.strip()
                if re.fullmatch(r"[a-z][a-z0-9_]*|[0-9A-F]{2}", code) and code not in HEADERS:
                    codes.add(code)
    return codes


def known(table: dict[str, dict[str, str]]) -> set[str]:
    return set(table["codes"]) | set(table["alarms"]) | set(table["pump_codes"])


def test_every_code_of_the_runbook_has_its_chinese_text() -> None:
    codes = runbook_codes(RUNBOOK.read_text("utf-8"))
    assert {"pump_offline", "station_stop", "low_stock", "paper_out", "09",
            "price_outside_band", "shift_not_clear"} <= codes  # the reader still reads
    missing = sorted(codes - known(tables()))
    assert not missing, ("codes in docs/runbook.md with no Chinese text in "
                         f"edge/static/messages.js: {', '.join(missing)}")


def test_the_check_fails_for_a_code_without_text() -> None:
    codes = runbook_codes("## Pumps\n| `pump_offline` | x |\n| `brand_new_code` | y |\n")
    assert codes - known(tables()) == {"brand_new_code"}


@pytest.mark.parametrize("name", ["codes", "alarms", "pump_codes", "actions", "states", "roles",
                                  "methods", "actors"])
def test_every_text_is_chinese(name: str) -> None:
    table = tables()[name]
    assert table, name
    for key, text in table.items():
        assert re.search(r"[\u4e00-\u9fff]", text), (name, key, text)
        words = set(re.findall(r"[A-Za-z]+", text)) - {"APP"}
        assert not words, (name, key, text)


def test_the_console_loads_nothing_from_outside() -> None:
    for path in STATIC.iterdir():
        text = path.read_text("utf-8").replace("http://www.w3.org/2000/svg", "")
        assert "http://" not in text and "https://" not in text, path
        assert "<script>" not in text and " style=" not in text, path  # the CSP allows neither
