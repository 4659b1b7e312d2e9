"""The station's configuration as typed, immutable objects.

Defaults live here, on the dataclass fields, and nowhere else: the parser reads them from the
classes, so the file format, these objects and docs/config.md cannot drift apart silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:  # the device sections live in their own modules, which import this one
    from .printer import Printer
    from .tanks import TankSettings
    from .voice import VoiceConfig


class Authorize(StrEnum):
    """Who releases a pump for a sale."""

    ATTENDANT = "attendant"  # every sale is authorized from the console or by a cloud order
    AUTO = "auto"  # the pump is authorized on nozzle lift unless the nozzle is reserved


class Protocol(StrEnum):
    """Pump protocols a line can speak."""

    DART = "dart"


class Parity(StrEnum):
    """Serial parity; the values are pyserial's PARITY_* constants."""

    NONE = "N"
    EVEN = "E"
    ODD = "O"


@dataclass(frozen=True)
class Station:
    id: str
    name: str
    timezone: str  # an IANA key, e.g. "Asia/Shanghai"

    @property
    def zone(self) -> ZoneInfo:
        # zoneinfo caches one instance per key, so this is cheap to call per use.
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Storage:
    path: Path = Path("/var/lib/forecourt/station.db")


@dataclass(frozen=True)
class Api:
    host: str = "127.0.0.1"
    port: int = 8080
    session_ttl: timedelta = timedelta(hours=8)
    pin_lockout_attempts: int = 5
    pin_lockout: timedelta = timedelta(minutes=15)
    # Wrong PINs from one address, whatever the names, before it must wait (docs/security.md).
    pin_address_attempts: int = 20

    @property
    def listen(self) -> str:
        """`host:port` as written in the file (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class Grade:
    code: str
    name: str
    price: Decimal  # per litre, until a price schedule changes it
    where: str = field(default="", compare=False, repr=False)  # its place in the file


@dataclass(frozen=True)
class Line:
    """One RS-485 bus with one owner: the controller polls its pumps one request at a time."""

    id: str
    port: str  # a pyserial URL
    protocol: Protocol = Protocol.DART
    baudrate: int = 9600
    parity: Parity = Parity.ODD
    reply_timeout: timedelta = timedelta(milliseconds=25)
    poll_interval: timedelta = timedelta(0)
    retries: int = 3
    offline_after: int = 3
    where: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class PumpDecimals:
    """Where the pump puts the decimal point: DART carries integers in pump units."""

    volume: int = 2
    amount: int = 2
    price: int = 2


@dataclass(frozen=True)
class Nozzle:
    number: int  # station-wide, as painted: "1号枪"
    logical: int  # index on its pump, 1..15
    grade: str  # a grade code
    where: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class Pump:
    number: int
    line: str
    address: int
    nozzles: tuple[Nozzle, ...]
    authorize: Authorize = Authorize.ATTENDANT
    decimals: PumpDecimals = PumpDecimals()
    where: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class Sync:
    broker: str  # the URL as written
    host: str
    port: int
    tls: bool  # mqtts://
    cloud_public_key: Path
    username: str | None = None
    password_file: Path | None = None
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None


@dataclass(frozen=True)
class Controller:
    price_readback: bool = True
    sale_check_tolerance_steps: int = 1
    lift_timeout: timedelta = timedelta(seconds=180)


@dataclass(frozen=True)
class StationConfig:
    station: Station
    storage: Storage
    api: Api
    grades: tuple[Grade, ...]
    lines: tuple[Line, ...]
    pumps: tuple[Pump, ...]
    sync: Sync | None
    controller: Controller
    warnings: tuple[str, ...] = ()  # valid but probably not meant; the daemon logs them
    printer: Printer | None = None  # [printer]: receipts
    voice: VoiceConfig | None = None  # [voice]: announcements
    tanks: TankSettings | None = None  # [[gauges]], [[tanks]], [wetstock]: wetstock

    # Lookups scan short tuples (a station has tens of nozzles), which keeps the object plain data.

    def grade(self, code: str) -> Grade:
        for grade in self.grades:
            if grade.code == code:
                return grade
        raise KeyError(f"no grade {code!r}")

    def line(self, line_id: str) -> Line:
        for line in self.lines:
            if line.id == line_id:
                return line
        raise KeyError(f"no line {line_id!r}")

    def pump(self, number: int) -> Pump:
        for pump in self.pumps:
            if pump.number == number:
                return pump
        raise KeyError(f"no pump {number}")

    def pumps_on(self, line_id: str) -> tuple[Pump, ...]:
        return tuple(pump for pump in self.pumps if pump.line == line_id)

    def nozzle(self, number: int) -> tuple[Pump, Nozzle]:
        for pump in self.pumps:
            for nozzle in pump.nozzles:
                if nozzle.number == number:
                    return pump, nozzle
        raise KeyError(f"no nozzle {number}")
