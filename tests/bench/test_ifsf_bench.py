"""bench/ifsf.py still runs end to end: both stations come up, the windows count messages, the
fills run, the lifts are seen on the console. Its timings are not looked at (speed is the
bench's business, never a test's)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "ifsf.py"


def test_the_ifsf_bench_runs_and_reports_both_protocols() -> None:
    done = subprocess.run(
        # Windows of 1.5 s: longer than the nodes' 1 s between running transaction messages,
        # which all fuelling points, lifted together, send in the same instant.
        [sys.executable, str(BENCH), "--seconds", "1.5", "--settle", "0.1", "--lifts", "2",
         "--heartbeat-interval", "1", "--json"],
        capture_output=True, text=True, timeout=110, check=False, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    ifsf, dart = report["ifsf"], report["dart"]
    for side in (ifsf, dart):
        assert side["fills"]["fuelling_at_start"] == side["fills"]["fuelling_at_end"] == 8
        assert side["latency"]["lifts"] == 2
        assert side["rss_mb"] > 0
    # IFSF while filling: the nodes' running transaction messages, none lost to the nodes'
    # one message per read.
    assert ifsf["fills"]["counts"]["sent"] > 0
    assert ifsf["fills"]["counts"]["lost"] == 0
    assert ifsf["idle"]["messages_counted_by"] == "simulator counters + heartbeats heard"
    # DART polls all the time, counted by the daemon's own metric.
    assert dart["idle"]["messages_counted_by"] == "metrics"
    assert dart["idle"]["messages"] > 0 and dart["fills"]["messages"] > 0
    assert report["ratios"]["fills.cpu_per_message_ms"] is not None
    assert set(report["machine"]) >= {"load_before", "load_after", "cpus"}
