"""The sections of the configuration file, one reader each.

A reader takes its `Table`, asks for every key it knows (defaults come from the model's
dataclasses), calls `done()` so unknown keys are reported, and returns its object, or None when
one of the values it needs was refused (the problem is already recorded).

Adding a section ([printer], [voice], [[tanks]], ...): a frozen dataclass in model.py, a reader
here, its field on StationConfig, one line in `read_document`, its cross-field checks in
checks.py, and its keys in docs/config.md (a test compares them with what the parser reads).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from domain.config_reader import REQUIRED, Findings, Table, one_of, quote
from domain.config_values import broker_url, listen_address, time_zone
from domain.equipment import MAX_DECIMALS, Driver
from drivers import registry

from .books import check_books, read_books
from .checks import Name, Parts, run_checks
from .model import (
    Api,
    Authorize,
    Controller,
    Grade,
    Line,
    Nozzle,
    Pump,
    PumpDecimals,
    Station,
    StationConfig,
    Storage,
    Sync,
)
from .printer import check_printer, read_printer
from .tanks import check_tanks, read_tanks
from .voice import read_voice

T = TypeVar("T")

_STATION_ID = re.compile(r"[A-Za-z0-9-]{1,64}")  # it goes into MQTT topics
_LINE_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")  # it goes into metrics labels and logs
_GRADE_CODE = re.compile(r"[A-Za-z0-9-]{1,16}")  # "-10" is a winter diesel grade
_HOST_NAME = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9-]{1,63}(?<!-))*")

_MS = timedelta(milliseconds=1)
_SECOND = timedelta(seconds=1)
_MINUTE = timedelta(minutes=1)

# The protocols' own limits on logical nozzles are the drivers' checks; this only keeps
# nonsense out of the file.
MAX_LOGICAL_NOZZLE = 15


@dataclass(frozen=True)
class Context:
    findings: Findings
    base_dir: Path | None  # relative paths are relative to the config file's directory
    check_files: bool  # files named in the config must exist now (for `run`)

    def path(self, value: str) -> Path:
        path = Path(value)
        return self.base_dir / path if self.base_dir and not path.is_absolute() else path


def read_document(data: Mapping[str, object], ctx: Context) -> StationConfig | None:
    """The whole file: every section, then the cross-field checks. None when anything is wrong."""
    root = Table(data, "", ctx.findings)
    station_table = root.table("station", required=True)
    station = _station(station_table) if station_table else None
    storage = _storage(root.table_or_empty("storage"), ctx)
    api = _api(root.table_or_empty("api"), ctx)
    grade_tables = root.tables("grades", required=True)
    line_tables = root.tables("lines", required=True)
    grades = _each(grade_tables, _grade)
    lines = _each(line_tables, _line)
    pump_tables = root.tables("pumps", required=True, label="number")
    protocols = {line.id: line.protocol for line in lines}
    pumps = _each(pump_tables, lambda table: _pump(table, protocols))
    sync_table = root.table("sync")
    sync = _sync(sync_table, ctx) if sync_table else None
    controller = _controller(root.table_or_empty("controller"))
    printer_table = root.table("printer")
    printer = read_printer(printer_table, ctx) if printer_table else None
    voice_table = root.table("voice")
    voice = read_voice(voice_table, ctx) if voice_table else None
    tanks = read_tanks(root, ctx)
    books = read_books(root.table_or_empty("books"), ctx)
    root.done()

    parts = Parts(
        grades=grades,
        lines=lines,
        pumps=pumps,
        grade_codes=_names(grade_tables, "code", str),
        line_ids=_names(line_tables, "id", str),
        pump_numbers=_names(pump_tables, "number", int),
    )
    run_checks(parts, ctx.findings)
    if printer is not None and storage is not None:
        check_printer(printer, storage.path, ctx.findings)
    if tanks is not None:
        check_tanks(tanks, grade_codes=[str(n.value) for n in parts.grade_codes], pumps=pumps,
                    findings=ctx.findings)
    if books is not None:
        check_books(books, grade_codes=[str(n.value) for n in parts.grade_codes],
                    findings=ctx.findings)
    if ctx.findings.errors:
        return None
    # No errors means every reader returned its object.
    assert station and storage and api and controller and (sync or not sync_table)
    return StationConfig(
        station=station,
        storage=storage,
        api=api,
        grades=tuple(grades),
        lines=tuple(lines),
        pumps=tuple(pumps),
        sync=sync,
        controller=controller,
        warnings=tuple(ctx.findings.warnings),
        printer=printer,
        voice=voice,
        tanks=tanks if tanks and tanks.tanks else None,
        books=books,
    )


def _each(tables: list[Table], read: Callable[[Table], T | None]) -> list[T]:
    return [item for table in tables if (item := read(table)) is not None]


def _names(tables: list[Table], key: str, kind: type[str | int]) -> list[Name]:
    """`key` as written in every entry, whether or not the entry was refused."""
    names = []
    for table in tables:
        value = table.peek(key)
        if isinstance(value, kind) and not isinstance(value, bool):
            names.append(Name(table.where, value))
    return names


def _station(t: Table) -> Station | None:
    station_id = t.text("id", pattern=_STATION_ID, rule='letters, digits and "-", 1 to 64')
    name = t.text("name")
    timezone = t.parsed("timezone", time_zone)
    t.done()
    if station_id is None or name is None or timezone is None:
        return None
    return Station(id=station_id, name=name, timezone=timezone)


def _storage(t: Table, ctx: Context) -> Storage | None:
    path = t.parsed("path", ctx.path, Storage.path)
    t.done()
    if path is None:
        return None
    if ctx.check_files:
        # The daemon creates the database file, not its directory (systemd's StateDirectory=).
        if not path.parent.is_dir():
            t.error("path", f"directory {path.parent} does not exist")
        elif path.is_dir():
            t.error("path", f"{path} is a directory; name the database file")
    return Storage(path=path)


def _api(t: Table, ctx: Context) -> Api | None:
    listen = t.parsed("listen", listen_address, (Api.host, Api.port))
    session_ttl = t.duration("session_ttl_minutes", _MINUTE, Api.session_ttl, low=5, high=10080)
    attempts = t.integer("pin_lockout_attempts", Api.pin_lockout_attempts, low=1, high=100)
    lockout = t.duration("pin_lockout_minutes", _MINUTE, Api.pin_lockout, low=1, high=1440)
    address_attempts = t.integer("pin_address_attempts", Api.pin_address_attempts,
                                 low=1, high=1000)
    max_request = t.integer("max_request_kib", Api.max_request // 1024, low=1, high=16384)
    allowed_hosts = _allowed_hosts(t)
    metrics_token_file = _file(t, "metrics_token_file", ctx)
    _private(t, "metrics_token_file", metrics_token_file, ctx)
    metrics_open = t.boolean("metrics_open", Api.metrics_open)
    tls_cert = _file(t, "tls_cert", ctx)
    tls_key = _file(t, "tls_key", ctx)
    _private(t, "tls_key", tls_key, ctx)
    redirect = t.parsed("redirect_listen", listen_address, None)
    t.done()
    if metrics_token_file is not None and ctx.check_files:
        _check_token(t, "metrics_token_file", metrics_token_file)
    if t.has("tls_cert") != t.has("tls_key"):
        t.error("tls_key" if t.has("tls_cert") else "tls_cert",
                "missing: tls_cert and tls_key go together")
    if t.has("redirect_listen") and not t.has("tls_cert"):
        t.error("redirect_listen", "redirects to HTTPS: set tls_cert and tls_key too")
    elif redirect is not None and listen is not None and redirect[1] == listen[1]:
        t.error("redirect_listen", f"port {redirect[1]} is the HTTPS port ([api] listen)")
    if (allowed_hosts == () and not t.has("allowed_hosts") and tls_cert is not None
            and ctx.check_files and tls_cert.is_file()):
        allowed_hosts = _certificate_hosts(t, tls_cert)
    if (listen is None or session_ttl is None or attempts is None or lockout is None
            or address_attempts is None
            or max_request is None or allowed_hosts is None or metrics_open is None):
        return None
    return Api(
        host=listen[0],
        port=listen[1],
        session_ttl=session_ttl,
        pin_lockout_attempts=attempts,
        pin_lockout=lockout,
        pin_address_attempts=address_attempts,
        max_request=max_request * 1024,
        allowed_hosts=allowed_hosts,
        metrics_token_file=metrics_token_file,
        metrics_open=metrics_open,
        tls_cert=tls_cert,
        tls_key=tls_key,
        redirect=redirect,
    )


def _certificate_hosts(t: Table, cert: Path) -> tuple[str, ...] | None:
    """Without allowed_hosts, the API answers to the names its certificate is for."""
    from edge.tls import TlsError, cert_names

    try:
        return tuple(cert_names(cert))
    except TlsError as exc:
        t.error("tls_cert", str(exc))
        return None


def _allowed_hosts(t: Table) -> tuple[str, ...] | None:
    # An array of strings; Table has no getter for arrays (see tanks.py's _raw).
    raw = t._value("allowed_hosts", (list,), "an array of host names", required=False)
    if raw is None:
        return () if not t.has("allowed_hosts") else None
    assert isinstance(raw, list)
    hosts = []
    for index, item in enumerate(raw):
        try:
            hosts.append(_host_name(item))
        except ValueError as exc:
            t.error(f"allowed_hosts[{index}]", str(exc))
            return None
    return tuple(hosts)


def _host_name(value: object) -> str:
    """A host name or an IP address as a Host header carries it, lowercased, no port."""
    if not isinstance(value, str):
        raise ValueError(f"expected a host name like \"station.local\", got {value!r}")
    bare = value.strip().lower().removesuffix(".")
    if bare.startswith("[") and bare.endswith("]"):
        bare = bare[1:-1]
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        if _HOST_NAME.fullmatch(bare):
            return bare
    raise ValueError(f"{value!r} is not a host name or an IP address (no port, no scheme)")


def _check_token(t: Table, key: str, path: Path) -> None:
    """A token file holds one token worth the name (its mode is `_private`'s)."""
    try:
        token = path.read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        t.error(key, f"{path} cannot be read: {exc}")
        return
    if len(token) < 16 or any(c.isspace() for c in token):
        t.error(key, f"{path} must hold one token of at least 16 characters, no spaces")


def _grade(t: Table) -> Grade | None:
    code = t.text("code", pattern=_GRADE_CODE, rule='letters, digits and "-", 1 to 16')
    name = t.text("name")
    price = t.price("price")
    band = t.decimal("price_band_percent", Grade.price_band_percent, low=Decimal("0.1"),
                     high=Decimal(100))
    t.done()
    if code is None or name is None or price is None or band is None:
        return None
    return Grade(code=code, name=name, price=price, where=t.where, price_band_percent=band)


def _line(t: Table) -> Line | None:
    line_id = t.text("id", pattern=_LINE_ID, rule='letters, digits, "_" and "-", 1 to 32')
    protocol = t.text("protocol", "dart")
    driver = _driver(t, protocol)
    settings = driver.read_line(t) if driver is not None else None
    if driver is None:
        t.skip_rest()
    t.done()
    if line_id is None or protocol is None or driver is None:
        return None
    # A line whose protocol keys were refused is still returned (the problems are recorded,
    # so no StationConfig is made): its pumps are then checked against it all the same.
    return Line(id=line_id, protocol=protocol, settings=settings, where=t.where)


def _driver(t: Table, protocol: str | None) -> Driver | None:
    if protocol is None:
        return None
    try:
        return registry.driver(protocol)
    except KeyError:
        t.error("protocol", f"{quote(protocol)} is not a protocol this station drives "
                            f"({one_of(registry.names())})")
        return None


def _pump_keys(t: Table) -> frozenset[str]:
    keys: set[str] = set()
    for name in registry.names():
        scratch = t.scratch()
        registry.driver(name).read_pump(scratch)
        keys |= scratch.asked
    return frozenset(keys)


def _pump(t: Table, protocols: Mapping[str, str]) -> Pump | None:
    number = t.integer("number", low=1, high=999)
    line = t.text("line")
    authorize = t.choice("authorize", Authorize, Pump.authorize)
    decimals = _decimals(t.table_or_empty("decimals"))
    # Nozzles are read one by one: a bad nozzle does not hide problems of its neighbours.
    nozzles = _each(t.tables("nozzles", required=True), _nozzle)
    # The pump's protocol keys (address, node...) are its line's driver's to read; a pump on an
    # unknown line is reported as such (checks.py), its protocol keys unread.
    protocol = protocols.get(line) if line is not None else None
    driver = _driver(t, protocol) if protocol is not None else None
    settings = driver.read_pump(t) if driver is not None else None
    if driver is None:
        # Its line (hence its protocol) is unknown: keys some protocol takes are let pass,
        # anything else is still reported.
        t.allow(_pump_keys(t))
    t.done()
    if number is None or line is None or authorize is None or decimals is None:
        return None
    # A pump on an unknown line, or whose protocol keys were refused, is still returned so
    # that the cross-field checks see it (no StationConfig is made with problems recorded).
    return Pump(
        number=number,
        line=line,
        nozzles=tuple(nozzles),
        authorize=authorize,
        decimals=decimals,
        settings=settings,
        where=t.where,
    )


def _decimals(t: Table) -> PumpDecimals | None:
    volume = t.integer("volume", PumpDecimals.volume, low=0, high=MAX_DECIMALS)
    amount = t.integer("amount", PumpDecimals.amount, low=0, high=MAX_DECIMALS)
    price = t.integer("price", PumpDecimals.price, low=0, high=MAX_DECIMALS)
    t.done()
    if volume is None or amount is None or price is None:
        return None
    return PumpDecimals(volume=volume, amount=amount, price=price)


def _nozzle(t: Table) -> Nozzle | None:
    number = t.integer("number", low=1, high=999)
    logical = t.integer("logical", low=1, high=MAX_LOGICAL_NOZZLE)
    grade = t.text("grade")
    t.done()
    if number is None or logical is None or grade is None:
        return None
    return Nozzle(number=number, logical=logical, grade=grade, where=t.where)


def _file(t: Table, key: str, ctx: Context, *, required: bool = False) -> Path | None:
    path = t.parsed(key, ctx.path, REQUIRED if required else None)
    if path is not None and ctx.check_files:
        try:
            path.stat()
        except PermissionError:
            t.error(key, f"{path} is in a folder this user may not enter")
            return path
        except OSError:
            pass
        if not path.exists():
            t.error(key, f"{path} does not exist")
        elif not path.is_file():
            t.error(key, f"{path} is not a file")
        elif not os.access(path, os.R_OK):
            t.error(key, f"{path} is not readable by this user")
    return path


def _private(t: Table, key: str, path: Path | None, ctx: Context) -> None:
    """A password or private key other local users can open is theirs too: refused."""
    if path is None or not ctx.check_files or not path.is_file():
        return
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        t.error(key, f"{path} is open to other users (mode {mode:04o}); a secret must be its "
                     f"owner's alone: chmod 600 {path}")


def _sync(t: Table, ctx: Context) -> Sync | None:
    broker = t.parsed("broker", broker_url)
    username = t.text("username", None)
    password_file = _file(t, "password_file", ctx)
    cloud_public_key = _file(t, "cloud_public_key", ctx, required=True)
    ca_file = _file(t, "ca_file", ctx)
    client_cert = _file(t, "client_cert", ctx)
    client_key = _file(t, "client_key", ctx)
    for key, secret in (("password_file", password_file), ("client_key", client_key)):
        _private(t, key, secret, ctx)
    t.done()
    if password_file is not None and username is None and not t.has("username"):
        t.error("password_file", "a password needs a username")
    if t.has("client_cert") != t.has("client_key"):
        missing = "client_cert" if t.has("client_key") else "client_key"
        t.error(missing, "missing: client_cert and client_key go together")
    if broker is not None and not broker.tls:
        for key in ("ca_file", "client_cert", "client_key"):
            if t.has(key):
                t.error(key, "only used with mqtts://; the broker URL is mqtt://")
        if password_file is not None:
            t.warn("password_file", "the password crosses the network in clear over mqtt://")
    if broker is None or cloud_public_key is None:
        return None
    return Sync(
        broker=str(t.peek("broker")),
        host=broker.host,
        port=broker.port,
        tls=broker.tls,
        cloud_public_key=cloud_public_key,
        username=username,
        password_file=password_file,
        ca_file=ca_file,
        client_cert=client_cert,
        client_key=client_key,
    )


def _controller(t: Table) -> Controller | None:
    c = Controller
    if t.has("price_readback"):
        # Each pump is asked whether it answers the read-back; the switch is per pump now.
        t.peek("price_readback")
        t.skip_rest()
        t.error("price_readback", "moved: pumps are asked whether they answer the price "
                                  "read-back; to turn it off for one pump, set "
                                  "price_readback = false in its [[pumps]] entry")
    tolerance = t.integer(
        "sale_check_tolerance_steps", c.sale_check_tolerance_steps, low=0, high=100
    )
    lift_timeout = t.duration("lift_timeout_seconds", _SECOND, c.lift_timeout, low=10, high=3600)
    overrun_volume = t.decimal("preset_overrun_litres", c.preset_overrun_volume,
                               low=Decimal(0), high=Decimal(100))
    overrun_amount = t.decimal("preset_overrun_yuan", c.preset_overrun_amount,
                               low=Decimal(0), high=Decimal(1000))
    max_flow = t.decimal("max_flow_litres_per_minute", c.max_flow_lpm,
                         low=Decimal(1), high=Decimal(1000))
    unreadable = t.duration("unreadable_fill_seconds", _SECOND, c.unreadable_after,
                            low=5, high=3600)
    t.done()
    if (tolerance is None or lift_timeout is None or overrun_volume is None
            or overrun_amount is None or max_flow is None or unreadable is None):
        return None
    return Controller(
        sale_check_tolerance_steps=tolerance,
        lift_timeout=lift_timeout,
        preset_overrun_volume=overrun_volume,
        preset_overrun_amount=overrun_amount,
        max_flow_lpm=max_flow,
        unreadable_after=unreadable,
    )
