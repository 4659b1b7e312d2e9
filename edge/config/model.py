"""The station's configuration as typed, immutable objects.

Defaults live here, on the dataclass fields, and nowhere else: the parser reads them from the
classes, so the file format, these objects and docs/config.md cannot drift apart silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from domain.equipment import Authorize as _Authorize
from domain.equipment import LineConfig, NozzleConfig, PumpConfig
from domain.fuelling import Decimals

if TYPE_CHECKING:  # the device sections live in their own modules, which import this one
    from .books import BooksConfig
    from .printer import Printer
    from .tanks import TankSettings
    from .voice import VoiceConfig


# Pumps, nozzles and lines are protocol-neutral records (domain/equipment.py); each protocol's
# own keys live in the driver's settings object.
Authorize = _Authorize
Line = LineConfig
Pump = PumpConfig
Nozzle = NozzleConfig
PumpDecimals = Decimals


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
    # The largest request body or WebSocket message, in bytes: larger is refused unread.
    max_request: int = 64 * 1024
    # Host names and addresses the API answers to besides its own (the Host allow-list).
    allowed_hosts: tuple[str, ...] = ()
    # A file holding the bearer token a Prometheus scraper sends for GET /metrics.
    metrics_token_file: Path | None = None
    # /metrics without a token, for a local Prometheus (sales figures still need one).
    metrics_open: bool = False
    # HTTPS: the certificate and its key (PEM); both or neither (docs/install.md, HTTPS).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # A plain-HTTP listener that only redirects to the HTTPS console (host, port).
    redirect: tuple[str, int] | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert is not None else "http"

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
    # A change of more than this (percent, either way) needs a second confirmation and a reason.
    price_band_percent: Decimal = Decimal(15)


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
    sale_check_tolerance_steps: int = 1
    # An authorization whose nozzle is not lifted in this time is taken back (every source).
    lift_timeout: timedelta = timedelta(seconds=180)
    # Figures no pump can produce take it out of service (docs/runbook.md, "pump out of
    # service"): beyond the preset by more than the overrun, faster than the maximum flow.
    preset_overrun_volume: Decimal = Decimal("0.5")
    preset_overrun_amount: Decimal = Decimal("5")
    max_flow_lpm: Decimal = Decimal("130")
    # A pump whose finished filling cannot be read is still asked; after this long it is also
    # shown out of service so that a person looks at it.
    unreadable_after: timedelta = timedelta(seconds=60)


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
    books: BooksConfig | None = None  # [books]: deliveries, month close (defaults when absent)

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
