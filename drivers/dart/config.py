"""The DART driver's configuration keys and checks (docs/config.md, "DART lines and pumps").

A DART line is one RS-485 bus (any pyserial URL) with up to 32 pumps at addresses 0x50..0x6F
(PROTOCOLS.md, DART). Totals are counted per logical nozzle 1..8 only (CD101 counters 01..08),
so a nozzle the station must reconcile cannot sit at 9..15; prices are 3 bytes of BCD.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum

from domain.config_reader import Findings, Table, quote
from domain.config_values import serial_port
from domain.equipment import LineConfig, PumpConfig

from .codec import MAX_ADDRESS, MIN_ADDRESS

__all__ = [
    "MAX_PRICE_DIGITS",
    "MAX_PUMPS_PER_LINE",
    "MAX_TOTALS_NOZZLE",
    "DartLineSettings",
    "DartPumpSettings",
    "Parity",
    "check_line",
    "read_line",
    "read_pump",
]

MAX_PUMPS_PER_LINE = MAX_ADDRESS - MIN_ADDRESS + 1  # 0x50..0x6F
MAX_TOTALS_NOZZLE = 8  # CD101 counts logical nozzles 01..08 (and 11..18 for amounts)
MAX_PRICE_DIGITS = 6  # a unit price is 3 bytes of packed BCD

_MS = timedelta(milliseconds=1)


class Parity(StrEnum):
    """Serial parity; the values are pyserial's PARITY_* constants."""

    NONE = "N"
    EVEN = "E"
    ODD = "O"


@dataclass(frozen=True)
class DartLineSettings:
    port: str  # a pyserial URL
    baudrate: int = 9600
    parity: Parity = Parity.ODD
    reply_timeout: timedelta = timedelta(milliseconds=25)
    poll_interval: timedelta = timedelta(0)
    retries: int = 3
    offline_after: int = 3


@dataclass(frozen=True)
class DartPumpSettings:
    address: int
    # ACK and POLL in one frame: allowed by the spec, absent from real traffic, and ignored by
    # some pumps, which then resend their block forever (PROTOCOLS.md, "Timing").
    ack_poll: bool = False
    # One transaction per block, as the working controllers in the published traces send; some
    # heads ACK a multi-command block and act only on part of it.
    one_command_per_block: bool = False
    # Whether to ask for the price read-back (CD1 0F / DC103): "auto" finds out per pump.
    price_readback: bool = True


def read_line(t: Table) -> DartLineSettings | None:
    port = t.parsed("port", serial_port)
    d = DartLineSettings
    baudrate = t.integer("baudrate", d.baudrate, low=0, high=10**6, choices=(9600, 19200))
    parity = t.choice("parity", Parity, d.parity)
    reply_timeout = t.duration("reply_timeout_ms", _MS, d.reply_timeout, low=5, high=1000)
    poll_interval = t.duration("poll_interval_ms", _MS, d.poll_interval, low=0, high=10000)
    retries = t.integer("retries", d.retries, low=1, high=10)
    offline_after = t.integer("offline_after", d.offline_after, low=1, high=100)
    if (port is None or baudrate is None or parity is None or reply_timeout is None
            or poll_interval is None or retries is None or offline_after is None):
        return None
    return DartLineSettings(port=port, baudrate=baudrate, parity=parity,
                            reply_timeout=reply_timeout, poll_interval=poll_interval,
                            retries=retries, offline_after=offline_after)


def read_pump(t: Table) -> DartPumpSettings | None:
    d = DartPumpSettings
    address = t.integer("address", low=MIN_ADDRESS, high=MAX_ADDRESS, as_hex=True)
    ack_poll = t.boolean("ack_poll", d.ack_poll)
    one_per_block = t.boolean("one_command_per_block", d.one_command_per_block)
    readback = t.boolean("price_readback", d.price_readback)
    if address is None or ack_poll is None or one_per_block is None or readback is None:
        return None
    return DartPumpSettings(address=address, ack_poll=ack_poll,
                            one_command_per_block=one_per_block, price_readback=readback)


def check_line(line: LineConfig, pumps: Sequence[PumpConfig], prices: dict[str, Decimal],
               findings: Findings) -> None:
    if len(pumps) > MAX_PUMPS_PER_LINE:
        findings.error(line.where, f"{len(pumps)} pumps on {line.id}; a DART line has "
                                   f"{MAX_PUMPS_PER_LINE} at most")
    owners: dict[int, PumpConfig] = {}
    for pump in pumps:
        settings: DartPumpSettings = pump.settings
        owner = owners.setdefault(settings.address, pump)
        if owner is not pump:
            findings.error(f"{pump.where}.address", f"0x{settings.address:02X} is already used "
                                                    f"by pump {owner.number} on {line.id}")
        for nozzle in pump.nozzles:
            if nozzle.logical > MAX_TOTALS_NOZZLE:
                findings.error(f"{nozzle.where}.logical",
                               f"{nozzle.logical}: a DART pump reports totals for logical "
                               f"nozzles 1..{MAX_TOTALS_NOZZLE} only (CD101), so sales on it "
                               "could not be reconciled")
            _price_fits(pump, nozzle.where, nozzle.grade, prices, findings)


def _price_fits(pump: PumpConfig, where: str, grade: str, prices: dict[str, Decimal],
                findings: Findings) -> None:
    # A pump with the wrong price decimals shows every price ten times off, so a price the
    # pump cannot show exactly is refused before it reaches the pump.
    price = prices.get(grade)
    if price is None:
        return
    places = pump.decimals.price
    units = price.scaleb(places)
    text = f"grade {quote(grade)} costs {price}"
    if units != units.to_integral_value():
        findings.error(where, f"{text}, finer than pump {pump.number} shows "
                              f"(decimals.price = {places})")
    elif units >= Decimal(10) ** MAX_PRICE_DIGITS:
        findings.error(where, f"{text}, more than pump {pump.number} shows "
                              f"({MAX_PRICE_DIGITS} digits)")
