"""What `forecourt check-config FILE` prints: the station the controller would drive."""

from __future__ import annotations

from datetime import timedelta

from drivers import registry

from .model import Line, Pump, StationConfig
from .printer import describe_printer


def span(duration: timedelta) -> str:
    """A duration in the largest unit that shows it exactly: "8 h", "15 min", "25 ms"."""
    for unit, name in ((3600, "h"), (60, "min"), (1, "s")):
        if duration % timedelta(seconds=unit) == timedelta(0) and duration:
            return f"{duration // timedelta(seconds=unit)} {name}"
    return f"{duration // timedelta(milliseconds=1)} ms"


def _line(line: Line) -> str:
    return f"Line {line.id}: {registry.driver(line.protocol).describe_line(line)}"


def _pump(pump: Pump, config: StationConfig) -> list[str]:
    d = pump.decimals
    pump_line = config.line(pump.line)
    lines = [
        f"  Pump {pump.number}: {registry.driver(pump_line.protocol).describe_pump(pump)},"
        f" {pump.authorize} authorization,"
        f" decimals volume {d.volume} amount {d.amount} price {d.price}"
    ]
    for nozzle in sorted(pump.nozzles, key=lambda n: n.logical):
        grade = config.grade(nozzle.grade)
        lines.append(
            f"    Nozzle {nozzle.number} (logical {nozzle.logical}): {grade.name}"
            f" [{grade.code}] at {grade.price}"
        )
    return lines


def describe(config: StationConfig) -> str:
    """The station, its lines with their pumps and nozzles, prices, and the sync target;
    lines of text without a final newline, ready for print()."""
    s, api, c = config.station, config.api, config.controller
    out = [
        f"Station {s.id}: {s.name} ({s.timezone})",
        f"Storage: {config.storage.path}",
        f"Console: http://{api.listen}/ (sessions last {span(api.session_ttl)};"
        f" {api.pin_lockout_attempts} wrong PINs lock a user out for {span(api.pin_lockout)})",
        f"Controller: sale check tolerance {c.sale_check_tolerance_steps} step(s),"
        f" authorization waits {span(c.lift_timeout)} for a nozzle lift",
        "Grades:",
        *(f"  {g.code}: {g.name} at {g.price}" for g in config.grades),
    ]
    for line in config.lines:
        out.append(_line(line))
        for pump in sorted(config.pumps_on(line.id), key=lambda p: p.number):
            out.extend(_pump(pump, config))
    sync = config.sync
    if sync is None:
        out.append("Sync: off; events wait in the database until a [sync] section is added")
    else:
        user = f" as {sync.username}" if sync.username else ""
        out.append(
            f"Sync: {'mqtts' if sync.tls else 'mqtt'}://{sync.host}:{sync.port}{user};"
            f" commands verified with {sync.cloud_public_key}"
        )
    if config.printer is not None:
        out.append(describe_printer(config.printer))
    if config.voice is not None:
        v = config.voice.speech
        out.append(f"Voice: {'on' if config.voice.enabled else 'off'}, {v.output.value}"
                   f" ({v.voice})")
    if config.tanks is not None:
        for tank in config.tanks.tanks:
            out.append(f"Tank {tank.number}: grade {tank.grade}, {tank.capacity} L, "
                       f"gauge {tank.gauge}")
    out.extend(f"Warning: {warning}" for warning in config.warnings)
    return "\n".join(out)
