"""The full scenario matrix: every sale scenario on every driver + simulator + firmware profile.

CI runs every scenario on each protocol's primary rig and the ``sample`` scenarios on every
other rig (tests/scenarios/conftest.py); this runs all of them, DART, IFSF and Gilbarco, and
prints a markdown table of rig x scenario with the time each took against the median scenario
on dart/rev211 (the best-behaved pump) measured in the same run.

    .venv/bin/python bench/scenarios.py              # about 10 minutes for 21 rigs
    .venv/bin/python bench/scenarios.py -k gilbarco  # a part (any pytest -k expression)

Exits 1 when any scenario fails on any rig.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE_RIG = "dart/rev211"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default=None, help="a pytest -k expression to narrow the matrix")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.xml"
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   str(ROOT / "tests" / "scenarios"), f"--junitxml={report}", "-o",
                   "junit_family=xunit2"]
        if args.k:
            command += ["-k", args.k]
        env = {**os.environ, "FORECOURT_SCENARIOS": "all"}
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        if not report.exists():
            print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
            return 1
        results = _read(report)
    table: dict[str, dict[str, tuple[str, float]]] = defaultdict(dict)
    for name, rig, outcome, seconds in results:
        table[rig][name] = (outcome, seconds)
    scenarios = sorted({name for name, _, _, _ in results})
    primary = [seconds for _, rig, outcome, seconds in results
               if rig == BASELINE_RIG and outcome == "passed"]
    baseline = statistics.median(primary) if primary else None
    print(f"scenario matrix: {len(results)} runs, {len(scenarios)} scenarios x {len(table)} "
          "rigs")
    if baseline:
        print(f"baseline: the median scenario on {BASELINE_RIG}, {baseline:.2f} s; a cell is the "
              "scenario's time on that rig x the baseline, FAIL or skip")
    print()
    for number, name in enumerate(scenarios, start=1):
        print(f"S{number:<2} {name}")
    print()
    print("| rig | " + " | ".join(f"S{n}" for n in range(1, len(scenarios) + 1)) + " |")
    print("|---|" + "---:|" * len(scenarios))
    failed = 0
    for rig in sorted(table, key=_rig_order):
        cells = []
        for name in scenarios:
            outcome, seconds = table[rig].get(name, ("-", 0.0))
            failed += outcome == "failed"
            if outcome == "passed":
                cells.append(f"{seconds / baseline:.1f}x" if baseline else f"{seconds:.1f} s")
            else:
                cells.append({"failed": "FAIL", "skipped": "skip"}.get(outcome, outcome))
        print(f"| {rig} | " + " | ".join(cells) + " |")
    print()
    print(json.dumps({"runs": len(results), "failed": failed, "baseline_s": baseline}))
    return 1 if failed else 0


def _rig_order(rig: str) -> tuple[int, str]:
    protocol = rig.split("/")[0]
    order = ("dart", "ifsf", "gilbarco")
    return (order.index(protocol) if protocol in order else len(order), rig)


def _read(report: Path) -> list[tuple[str, str, str, float]]:
    import xml.etree.ElementTree as ElementTree

    rows = []
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        name = case.get("name", "")
        scenario, _, rig = name.partition("[")
        outcome = "passed"
        if case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        elif case.find("skipped") is not None:
            outcome = "skipped"
        rows.append((scenario.removeprefix("test_"), rig.rstrip("]"), outcome,
                     float(case.get("time", "0"))))
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
