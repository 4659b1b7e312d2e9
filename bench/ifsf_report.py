"""Plain-text rendering of ``bench/ifsf.py``'s report (its ``--json`` object)."""

from __future__ import annotations

from typing import Any

__all__ = ["render"]

Report = dict[str, Any]


def _x(value: float | None) -> str:
    return "    n/a" if value is None else f"{value:7.3f}"


def _ms(value: float | None, places: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{places}f} ms"


def _window(title: str, ifsf: Report, dart: Report, ratio: Report, key: str) -> list[str]:
    out = [f"{title}, {ifsf['seconds']:.1f} s (IFSF) / {dart['seconds']:.1f} s (DART):",
           "                              IFSF          DART     IFSF/DART"]
    out.append(f"  messages/s          {ifsf['messages_per_second']:10.1f}    "
               f"{dart['messages_per_second']:10.1f}")
    out.append(f"  CPU, % of a core    {ifsf['cpu_share'] * 100:10.2f}    "
               f"{dart['cpu_share'] * 100:10.2f}    {_x(ratio[f'{key}.cpu_share'])}")
    ci, cd = ifsf["cpu_per_message_ms"], dart["cpu_per_message_ms"]
    out.append(f"  CPU per message     {_ms(ci):>13} {_ms(cd):>13}    "
               f"{_x(ratio[f'{key}.cpu_per_message_ms'])}")
    c = ifsf["counts"]
    out.append(f"  IFSF messages: {c['received']} to the nodes, {c['sent']} from them, "
               f"heartbeats {c['heartbeats_controller']} ours + {c['heartbeats_nodes']} theirs"
               f"; the daemon's requests (metrics) {c['exchanges']}; timeouts "
               f"{c['timeouts']}, lost {c['lost']}, undelivered {c['undelivered']}")
    d = dart["counts"]
    out.append(f"  DART exchanges counted by {dart['messages_counted_by']} ({d['exchanges']}; "
               f"frames at the pumps {d['frames']}); timeouts {d['timeouts']}")
    for name, r in (("IFSF", ifsf), ("DART", dart)):
        if key == "fills" and (r["fuelling_at_start"] < 8 or r["fuelling_at_end"] < 8):
            out.append(f"  SUSPECT: {name} had {r['fuelling_at_start']} then "
                       f"{r['fuelling_at_end']} pumps fuelling")
    return [*out, ""]


def render(report: Report) -> str:
    """The report of ``bench/ifsf.py`` as a table for people."""
    m, ifsf, dart, ratio = report["machine"], report["ifsf"], report["dart"], report["ratios"]
    out = [f"IFSF beside DART, {report['pumps']} fuelling points each, {report['date']}, "
           f"commit {report['revision']}",
           f"machine: {m['cpus']} CPUs ({m['processor']}), {m['platform']}, Python {m['python']}",
           f"load average (1 min): {m['load_before']:.2f} before, {m['load_after']:.2f} after;"
           f" daemon CPU read from /proc in ticks of {m['cpu_tick_ms']:g} ms",
           f"IFSF: {report['ifsf_layout']}, heartbeats every {report['heartbeat_interval_s']} s; "
           f"DART: {report['dart_line']}", ""]
    out += _window("every pump idle", ifsf["idle"], dart["idle"], ratio, "idle")
    out += _window(f"{report['pumps']} fills running", ifsf["fills"], dart["fills"], ratio,
                   "fills")
    out += [f"daemon RSS: IFSF {ifsf['rss_mb']:.1f} MB (peak {ifsf['peak_rss_mb']:.1f}), "
            f"DART {dart['rss_mb']:.1f} MB (peak {dart['peak_rss_mb']:.1f}); "
            f"IFSF/DART {_x(ratio['rss_mb']).strip()}", ""]
    li, ld = ifsf["latency"], dart["latency"]
    out += [f"lift -> WebSocket, {li['lifts']} lifts each:",
            "                      median      p95      max   (IFSF/DART: median / p95 / max)"]
    for key, label in (("lift_to_calling", "lift -> calling"), ("hang_to_idle",
                                                                "hang -> idle")):
        for name, r in (("IFSF", li), ("DART", ld)):
            s = r[key]
            out.append(f"  {name} {label:15} {s['median_ms']:6.1f} ms {s['p95_ms']:6.1f} ms "
                       f"{s['max_ms']:6.1f} ms")
        out.append(f"  {'':20} IFSF/DART {_x(ratio[f'{key}.median_ms']).strip()} / "
                   f"{_x(ratio[f'{key}.p95_ms']).strip()} / {_x(ratio[f'{key}.max_ms']).strip()}")
    out.append(f"  (timed from before the control API request, the WebSocket read meanwhile;"
               f" the request's median: IFSF "
               f"{li['control_request_median_ms']:.1f} ms, DART "
               f"{ld['control_request_median_ms']:.1f} ms; timeouts IFSF {li['timeouts']}, "
               f"DART {ld['timeouts']})")
    return "\n".join(out)
