"""The full scenario matrix: every sale scenario on every driver + simulator + firmware profile.

CI runs every scenario on each protocol's primary rig and the ``sample`` scenarios on every
other profile (tests/scenarios/conftest.py); this runs all of them and prints a table of
scenario x rig with the time each took, beside the median of the primary rig's (the same
scenarios on the best-behaved pump) as the baseline.

    .venv/bin/python bench/scenarios.py            # about 3 minutes for DART's 7 profiles
    .venv/bin/python bench/scenarios.py -k legacy  # one profile (any pytest -k expression)

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
        table[name][rig] = (outcome, seconds)
    rigs = sorted({rig for _, rig, _, _ in results})
    primary = [seconds for _, rig, outcome, seconds in results
               if rig.endswith("/rev211") and outcome == "passed"]
    baseline = statistics.median(primary) if primary else None
    print(f"scenario matrix: {len(results)} runs, {len(table)} scenarios x {len(rigs)} rigs")
    if baseline:
        print(f"baseline: median scenario on dart/rev211 {baseline:.2f} s; cells: outcome and "
              "time x baseline")
    width = max(len(n) for n in table) + 2
    print("".ljust(width) + " ".join(r.split("/", 1)[1][:18].ljust(18) for r in rigs))
    failed = 0
    for name in sorted(table):
        cells = []
        for rig in rigs:
            outcome, seconds = table[name].get(rig, ("-", 0.0))
            failed += outcome == "failed"
            ratio = f"{seconds / baseline:.1f}x" if baseline and outcome != "-" else ""
            cells.append(f"{outcome[:4]} {ratio}".ljust(18))
        print(name.ljust(width) + " ".join(cells))
    print(json.dumps({"runs": len(results), "failed": failed, "baseline_s": baseline}))
    return 1 if failed else 0


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
