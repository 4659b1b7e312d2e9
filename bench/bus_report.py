"""Plain-text rendering of ``bench/bus.py``'s report (its ``--json`` object)."""

from __future__ import annotations

from typing import Any

from drivers.dart.bus import BITS_PER_CHARACTER

__all__ = ["render"]


def _verdict(value: float, target: float) -> str:
    return "met" if value <= target else "MISSED"


def render(report: dict[str, Any]) -> str:
    """The report of ``bench/bus.py`` as a table for people."""
    wire_ms = report["wire_time_per_exchange_ms"]
    cpu_target, rss_target = report["targets"]["cpu_ratio"], report["targets"]["rss_mb"]
    m = report["machine"]
    out = [f"DART line bench, {report['pumps']} pumps, {report['baudrate']} baud 8O1, "
           f"{report['date']}, commit {report['revision']}",
           f"machine: {m['cpus']} CPUs ({m['processor']}), {m['platform']}, Python {m['python']}",
           f"load average (1 min): {m['load_before']:.2f} before, {m['load_after']:.2f} after",
           f"baseline: one poll exchange on the wire (POLL + EOT, 6 x {BITS_PER_CHARACTER} bits)"
           f" = {wire_ms:.3f} ms", ""]
    for key, title in (("line", "DartLine alone (this process), unpaced simulator"),
                       ("daemon", "forecourt run (whole daemon), unpaced simulator")):
        r = report.get(key)
        if r is None:
            continue
        out += [f"{title}, {r['seconds']:.1f} s:",
                f"  exchanges/s              {r['exchanges_per_second']:9.0f}",
                f"  exchange time            {r['exchange_time_ms']:9.3f} ms  "
                f"= {r['exchange_time_ratio']:.3f} x wire time",
                f"  CPU per exchange         {r['cpu_per_exchange_ms']:9.4f} ms  "
                f"= {r['cpu_ratio'] * 100:.2f} % of wire time "
                f"(target <= {cpu_target * 100:.0f} %: "
                f"{_verdict(r['cpu_ratio'], cpu_target)})"]
        if key == "line":
            out.append(f"  simulator CPU (other process) {r['simulator_cpu_share'] * 100:.0f} %"
                       f" of a core; timeouts {r['timeouts']}")
        else:
            out += [f"  CPU                      {r['cpu_share'] * 100:9.1f} % of a core "
                    f"(exchanges counted by: {r['exchanges_source']})",
                    f"  RSS                      {r['rss_mb']:9.1f} MB  (peak "
                    f"{r['peak_rss_mb']:.1f} MB; target <= {rss_target:.0f} MB: "
                    f"{_verdict(r['rss_mb'], rss_target)}), {r['threads']} threads",
                    f"  timeouts                 {r['timeouts']:9d}"]
        out.append("")
    for r in report.get("latency", []):
        exchange = r["exchange_time_ms"]
        out += [f"lift -> WebSocket, line-faithful simulator, {r['pumps']} pumps, "
                f"{r['lifts']} lifts (poll cycle on the wire {r['poll_cycle_wire_ms']:.1f} ms"
                + (f"; achieved exchange time {exchange:.2f} ms)" if exchange else ")") + ":",
                "                   median        p95        max   (x poll cycle)"]
        for key, label in (("lift_to_calling", "lift -> calling"), ("hang_to_idle",
                                                                    "hang -> idle")):
            s = r[key]
            out.append(f"  {label:15} {s['median_ms']:7.1f} ms {s['p95_ms']:7.1f} ms "
                       f"{s['max_ms']:7.1f} ms   ({s['median_ratio']:.2f} / "
                       f"{s['p95_ratio']:.2f} / {s['max_ratio']:.2f})")
        out += [f"  (control API request, included above: median "
                f"{r['control_request_median_ms']:.1f} ms; line timeouts {r['timeouts']})", ""]
    return "\n".join(out).rstrip()
