"""The Gilbarco driver's configuration keys and checks (docs/config.md, "Gilbarco lines and
pumps"; docs/gilbarco.md).

A Gilbarco line is one current loop (through a converter: any pyserial URL) with pumps 1..16,
8E1 at 5787 baud unless told otherwise. A pump's hoses are its logical nozzles, 1..16 (the wire
counts them 0..15); a unit price has 4 digits in the standard mode and 6 in the 8-digit mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum

from domain.config_reader import Findings, Table, quote
from domain.config_values import serial_port
from domain.equipment import LineConfig, PumpConfig

from .commands import LAYOUTS, MAX_PUMP, MIN_PUMP, DigitsMode
from .special import NOZZLE_FUNCTION
from .timing import (
    DEFAULT_BAUDRATE,
    NO_ANSWER_PAUSE,
    OFFLINE_AFTER,
    RUNNING_MONEY_DELAY,
    RUNNING_MONEY_WINDOW,
    SPECIAL_FUNCTION_WINDOW,
    STATUS_WINDOW,
    TOTALS_WINDOW,
    TRANSACTION_WINDOW,
    Timing,
)

__all__ = [
    "BAUDRATES",
    "MAX_HOSE",
    "GilbarcoLineSettings",
    "GilbarcoPumpSettings",
    "Parity",
    "check_line",
    "read_line",
    "read_pump",
]

BAUDRATES = (5760, 5787, 9600)  # PROTOCOLS.md: 5787 in most sources, 5760, 9600 behind converters
MAX_HOSE = 16  # the hose word carries 0..15
DEFAULT_CONFIG_FUNCTION = 1  # the notes do not name the configuration's special function

_MS = timedelta(milliseconds=1)


class Parity(StrEnum):
    NONE = "N"
    EVEN = "E"
    ODD = "O"


def _ms(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class GilbarcoLineSettings:
    port: str  # a pyserial URL
    baudrate: int = DEFAULT_BAUDRATE
    parity: Parity = Parity.EVEN
    echo: bool = False  # a current-loop converter sends the master's bytes back
    digits: DigitsMode = DigitsMode.STANDARD
    poll_interval: timedelta = timedelta(0)
    offline_after: int = OFFLINE_AFTER
    timing: Timing = field(default_factory=Timing)
    config_function: int | None = DEFAULT_CONFIG_FUNCTION  # None: never asked
    authorize_attempts: int = 3


@dataclass(frozen=True)
class GilbarcoPumpSettings:
    address: int  # 1..16


def read_line(t: Table) -> GilbarcoLineSettings | None:
    d = GilbarcoLineSettings
    port = t.parsed("port", serial_port)
    baudrate = t.integer("baudrate", d.baudrate, low=0, high=10**6, choices=BAUDRATES)
    parity = t.choice("parity", Parity, d.parity)
    echo = t.boolean("echo", d.echo)
    digits = t.choice("digits", DigitsMode, d.digits)
    poll_interval = t.duration("poll_interval_ms", _MS, d.poll_interval, low=0, high=10000)
    offline_after = t.integer("offline_after", d.offline_after, low=1, high=100)
    read_config = t.boolean("read_config", True)
    config_function = t.integer("config_function", DEFAULT_CONFIG_FUNCTION, low=0, high=999)
    attempts = t.integer("authorize_attempts", d.authorize_attempts, low=1, high=10)
    timing = _timing(t.table_or_empty("timing"))
    if (port is None or baudrate is None or parity is None or echo is None or digits is None
            or poll_interval is None or offline_after is None or read_config is None
            or config_function is None or attempts is None or timing is None):
        return None
    if read_config and config_function == NOZZLE_FUNCTION:
        t.error("config_function", "010 is the nozzle report, not the pump's configuration")
        return None
    return GilbarcoLineSettings(
        port=port, baudrate=baudrate, parity=parity, echo=echo, digits=digits,
        poll_interval=poll_interval, offline_after=offline_after, timing=timing,
        config_function=config_function if read_config else None, authorize_attempts=attempts)


def _timing(t: Table) -> Timing | None:
    def window(key: str, default: float, high: int = 5000) -> timedelta | None:
        return t.duration(key, _MS, _ms(default), low=68, high=high)

    status = window("status_ms", STATUS_WINDOW, 2000)
    transaction = window("transaction_ms", TRANSACTION_WINDOW)
    totals = window("totals_ms", TOTALS_WINDOW)
    running = window("running_money_ms", RUNNING_MONEY_WINDOW, 2000)
    special = window("special_function_ms", SPECIAL_FUNCTION_WINDOW)
    pause = t.duration("pause_ms", _MS, _ms(NO_ANSWER_PAUSE), low=0, high=2000)
    delay = t.duration("running_money_delay_ms", _MS, _ms(RUNNING_MONEY_DELAY), low=0,
                       high=10000)
    t.done()
    if (status is None or transaction is None or totals is None or running is None
            or special is None or pause is None or delay is None):
        return None
    return Timing(status=status.total_seconds(), transaction=transaction.total_seconds(),
                  totals=totals.total_seconds(), running_money=running.total_seconds(),
                  special_function=special.total_seconds(), pause=pause.total_seconds(),
                  running_money_delay=delay.total_seconds())


def read_pump(t: Table) -> GilbarcoPumpSettings | None:
    address = t.integer("address", low=MIN_PUMP, high=MAX_PUMP)
    return None if address is None else GilbarcoPumpSettings(address=address)


def check_line(line: LineConfig, pumps: Sequence[PumpConfig], prices: dict[str, Decimal],
               findings: Findings) -> None:
    settings = line.settings
    if not isinstance(settings, GilbarcoLineSettings):
        return  # the line's own keys were refused: their problems are reported already
    if len(pumps) > MAX_PUMP:
        findings.error(line.where, f"{len(pumps)} pumps on {line.id}; a Gilbarco line has "
                                   f"{MAX_PUMP} at most")
    digits = LAYOUTS[settings.digits].price_digits
    owners: dict[int, PumpConfig] = {}
    for pump in pumps:
        address = pump.settings.address
        owner = owners.setdefault(address, pump)
        if owner is not pump:
            findings.error(f"{pump.where}.address",
                           f"{address} is already used by pump {owner.number} on {line.id}")
        for nozzle in pump.nozzles:
            if not 1 <= nozzle.logical <= MAX_HOSE:
                findings.error(f"{nozzle.where}.logical",
                               f"{nozzle.logical}: a Gilbarco pump has hoses 1..{MAX_HOSE}")
            price = prices.get(nozzle.grade)
            if price is None:
                continue
            units = price.scaleb(pump.decimals.price)
            text = f"grade {quote(nozzle.grade)} costs {price}"
            if units != units.to_integral_value():
                findings.error(nozzle.where, f"{text}, finer than pump {pump.number} shows "
                                             f"(decimals.price = {pump.decimals.price})")
            elif units >= Decimal(10) ** digits:
                findings.error(nozzle.where, f"{text}, more than pump {pump.number} shows "
                                             f"({digits} price digits in {settings.digits} "
                                             "mode)")
