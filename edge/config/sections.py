"""The sections of the configuration file, one reader each.

A reader takes its `Table`, asks for every key it knows (defaults come from the model's
dataclasses), calls `done()` so unknown keys are reported, and returns its object, or None when
one of the values it needs was refused (the problem is already recorded).

Adding a section ([printer], [voice], [[tanks]], ...): a frozen dataclass in model.py, a reader
here, its field on StationConfig, one line in `read_document`, its cross-field checks in
checks.py, and its keys in docs/config.md (a test compares them with what the parser reads).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from domain.config_reader import REQUIRED, Findings, Table
from domain.config_values import broker_url, listen_address, serial_port, time_zone

from .checks import Name, Parts, run_checks
from .model import (
    Api,
    Authorize,
    Controller,
    Grade,
    Line,
    Nozzle,
    Parity,
    Protocol,
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

_MS = timedelta(milliseconds=1)
_SECOND = timedelta(seconds=1)
_MINUTE = timedelta(minutes=1)

# DART: one bus addresses 0x50..0x6F, that is 32 pumps; a pump has logical nozzles 1..15.
DART_FIRST_ADDRESS = 0x50
DART_LAST_ADDRESS = 0x6F
MAX_LOGICAL_NOZZLE = 15
MAX_DECIMALS = 3


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
    api = _api(root.table_or_empty("api"))
    grade_tables = root.tables("grades", required=True)
    line_tables = root.tables("lines", required=True)
    grades = _each(grade_tables, _grade)
    lines = _each(line_tables, _line)
    pump_tables = root.tables("pumps", required=True, label="number")
    pumps = _each(pump_tables, _pump)
    sync_table = root.table("sync")
    sync = _sync(sync_table, ctx) if sync_table else None
    controller = _controller(root.table_or_empty("controller"))
    printer_table = root.table("printer")
    printer = read_printer(printer_table, ctx) if printer_table else None
    voice_table = root.table("voice")
    voice = read_voice(voice_table, ctx) if voice_table else None
    tanks = read_tanks(root, ctx)
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


def _api(t: Table) -> Api | None:
    listen = t.parsed("listen", listen_address, (Api.host, Api.port))
    session_ttl = t.duration("session_ttl_minutes", _MINUTE, Api.session_ttl, low=5, high=10080)
    attempts = t.integer("pin_lockout_attempts", Api.pin_lockout_attempts, low=1, high=100)
    lockout = t.duration("pin_lockout_minutes", _MINUTE, Api.pin_lockout, low=1, high=1440)
    address_attempts = t.integer("pin_address_attempts", Api.pin_address_attempts,
                                 low=1, high=1000)
    t.done()
    if (listen is None or session_ttl is None or attempts is None or lockout is None
            or address_attempts is None):
        return None
    return Api(
        host=listen[0],
        port=listen[1],
        session_ttl=session_ttl,
        pin_lockout_attempts=attempts,
        pin_lockout=lockout,
        pin_address_attempts=address_attempts,
    )


def _grade(t: Table) -> Grade | None:
    code = t.text("code", pattern=_GRADE_CODE, rule='letters, digits and "-", 1 to 16')
    name = t.text("name")
    price = t.price("price")
    t.done()
    if code is None or name is None or price is None:
        return None
    return Grade(code=code, name=name, price=price, where=t.where)


def _line(t: Table) -> Line | None:
    line_id = t.text("id", pattern=_LINE_ID, rule='letters, digits, "_" and "-", 1 to 32')
    port = t.parsed("port", serial_port)
    protocol = t.choice("protocol", Protocol, Line.protocol)
    baudrate = t.integer("baudrate", Line.baudrate, low=0, high=10**6, choices=(9600, 19200))
    parity = t.choice("parity", Parity, Line.parity)
    reply_timeout = t.duration("reply_timeout_ms", _MS, Line.reply_timeout, low=5, high=1000)
    poll_interval = t.duration("poll_interval_ms", _MS, Line.poll_interval, low=0, high=10000)
    retries = t.integer("retries", Line.retries, low=1, high=10)
    offline_after = t.integer("offline_after", Line.offline_after, low=1, high=100)
    t.done()
    if (
        line_id is None
        or port is None
        or protocol is None
        or baudrate is None
        or parity is None
        or reply_timeout is None
        or poll_interval is None
        or retries is None
        or offline_after is None
    ):
        return None
    return Line(
        id=line_id,
        port=port,
        protocol=protocol,
        baudrate=baudrate,
        parity=parity,
        reply_timeout=reply_timeout,
        poll_interval=poll_interval,
        retries=retries,
        offline_after=offline_after,
        where=t.where,
    )


def _pump(t: Table) -> Pump | None:
    number = t.integer("number", low=1, high=999)
    line = t.text("line")
    address = t.integer(
        "address", low=DART_FIRST_ADDRESS, high=DART_LAST_ADDRESS, as_hex=True
    )
    authorize = t.choice("authorize", Authorize, Pump.authorize)
    decimals = _decimals(t.table_or_empty("decimals"))
    # Nozzles are read one by one: a bad nozzle does not hide problems of its neighbours.
    nozzles = _each(t.tables("nozzles", required=True), _nozzle)
    t.done()
    if (
        number is None
        or line is None
        or address is None
        or authorize is None
        or decimals is None
    ):
        return None
    return Pump(
        number=number,
        line=line,
        address=address,
        nozzles=tuple(nozzles),
        authorize=authorize,
        decimals=decimals,
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
    price_readback = t.boolean("price_readback", Controller.price_readback)
    tolerance = t.integer(
        "sale_check_tolerance_steps", Controller.sale_check_tolerance_steps, low=0, high=100
    )
    lift_timeout = t.duration(
        "lift_timeout_seconds", _SECOND, Controller.lift_timeout, low=10, high=3600
    )
    t.done()
    if price_readback is None or tolerance is None or lift_timeout is None:
        return None
    return Controller(
        price_readback=price_readback,
        sale_check_tolerance_steps=tolerance,
        lift_timeout=lift_timeout,
    )
