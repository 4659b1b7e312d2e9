"""The short chaos run: bench/chaos.py with a few kills and every other fault at least once.

The long run (200 daemon kills) is a bench; its figures are in docs/reliability.md. This one
runs the same harness end to end, real processes and all, and takes its verdict: every fill
one sale in SQLite and at the cloud, totals chained, seq gapless, no authorization while the
disk was full and authorizations again after.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(420)
def test_a_short_chaos_run_loses_and_doubles_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "chaos.py"), "--kills", "4", "--seed", "7",
         "--keep", str(tmp_path), "--json"],
        capture_output=True, text=True, timeout=400, cwd=ROOT, check=False)
    assert done.stdout, done.stderr[-3000:]
    report = json.loads(done.stdout)
    counts, verdict = report["counts"], report["verdict"]
    assert report["problems"] == [], report["problems"]
    assert done.returncode == 0, done.stderr[-3000:]
    # The run did what it says: every fault, several kills, real sales through it all.
    assert counts["kills"] == 4 and counts["crashes"] == 0
    assert set(counts["faults"]) == {"broker", "corrupt", "drop", "power_cycle", "disk_full",
                                     "clock_jump"}
    assert verdict["fills"] >= 8, "too few sales to prove anything"
    assert verdict["sales"] == verdict["fills"] == verdict["cloud_sales"]
    assert verdict["lost"] == verdict["doubled"] == verdict["phantom"] == 0
    assert verdict["refused_while_full"] >= 1 and verdict["accepted_while_full"] == 0
    assert verdict["windows_recovered"] == verdict["windows"] >= 1
    assert verdict["cloud_contiguous"] == verdict["events"]
    assert verdict["clock_steps_noticed"] == verdict["clock_steps"] >= 1
