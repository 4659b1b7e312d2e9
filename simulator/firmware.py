"""Firmware profiles: which DART transactions a simulated pump answers, and how it gets them wrong.

Taken from the field notes (PROTOCOLS.md, DART section) and the frames captured on real buses
(../shared/captures/dart-frames.txt), not from the station's driver: a simulator built from the
driver's own understanding would agree with it by construction.

A firmware is a named profile plus quirks. Each quirk is one thing real firmware does that rev
2.11 in full does not (``QUIRKS`` says what and where the notes saw it), so that a test or the
demo can build any pump the notes describe; simulator/README.md lists the profiles and what
each lacks.

A CD1 the firmware does not know is acknowledged on the line (the frame was fine) and answered
with the pump's status at the next POLL (the first of the notes' two behaviours), or with
nothing under `silent-on-unknown`. Every pump, whatever its firmware, answers what a sale needs:
DC1, DC2, DC3, DC5 and DC101.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from drivers.dart.transactions import DC101, PumpCommand
from simulator.metering import Decimals
from simulator.totalizer import TOTAL_MODULO

__all__ = [
    "DEFAULT_FIRMWARE",
    "PROFILES",
    "QUIRKS",
    "Firmware",
    "FirmwarePlan",
    "Profile",
    "Quirk",
    "parse_firmware",
    "totals_reply",
]


class Quirk(StrEnum):
    NO_PRICE_READBACK = "no-price-readback"
    NO_SUSPEND = "no-suspend"
    SHORT_TOTALS = "short-totals"
    NO_ACKPOLL = "no-ackpoll"
    NO_PARAMETERS = "no-parameters"
    NO_IDENTITY = "no-identity"
    SILENT_ON_UNKNOWN = "silent-on-unknown"
    PUMP_WIDE_TOTALS = "pump-wide-totals"
    AMOUNT_IN_VOLUME_COUNTER = "amount-in-volume-counter"
    FIRST_COMMAND_ONLY = "first-command-only"
    IGNORES_MULTI_COMMAND = "ignores-multi-command"
    TX_WRAPS_TO_ZERO = "tx-wraps-to-zero"
    STATUS_WITH_NOZZLE = "status-with-nozzle"


QUIRKS: Mapping[Quirk, str] = {
    Quirk.NO_PRICE_READBACK: "CD1 0F unknown, no DC103 (optional in rev 2.11, older firmware "
    "lacks it)",
    Quirk.NO_SUSPEND: "CD1 0D/0E unknown, never status 8 (optional in rev 2.11)",
    Quirk.SHORT_TOTALS: "DC101 in 6 bytes, counter and one total (real pumps: 50 36 65 06 ...)",
    Quirk.NO_ACKPOLL: "ACKPOLL taken as a POLL, not an ACK: the block is sent again, forever "
    "(one open-source pump model)",
    Quirk.NO_PARAMETERS: "CD1 02 unknown, no DC7: decimals only from the config",
    Quirk.NO_IDENTITY: "CD1 03 unknown, no DC9",
    Quirk.SILENT_ON_UNKNOWN: "a CD1 it does not know gets no answer at all, not even the status",
    Quirk.PUMP_WIDE_TOTALS: "every nozzle's counter (01..08, 11..18) answers the pump-wide sum "
    "(one open-source pump model)",
    Quirk.AMOUNT_IN_VOLUME_COUNTER: "volume counters 01..08 answer the amount (the same model)",
    Quirk.FIRST_COMMAND_ONLY: "a block of several transactions is ACKed, only its first is "
    "carried out (a lab's Wayne head)",
    Quirk.IGNORES_MULTI_COMMAND: "a block of several transactions is ACKed and none is carried "
    "out (the lab's CD2 + RESET, as the notes tell it)",
    Quirk.TX_WRAPS_TO_ZERO: "its TX# wraps F to 0, not F to 1 (some captures)",
    Quirk.STATUS_WITH_NOZZLE: "DC3 goes with every DC1 (the captured heads that answer DC1 5 + "
    "DC3)",
}


_Q = Quirk
# The CD1 commands a quirk takes away.
_UNKNOWN_COMMANDS: Mapping[Quirk, frozenset[PumpCommand]] = {
    _Q.NO_PRICE_READBACK: frozenset({PumpCommand.RETURN_PRICES}),
    _Q.NO_SUSPEND: frozenset({PumpCommand.SUSPEND, PumpCommand.RESUME}),
    _Q.NO_PARAMETERS: frozenset({PumpCommand.RETURN_PARAMETERS}),
    _Q.NO_IDENTITY: frozenset({PumpCommand.RETURN_IDENTITY}),
}
_EXCLUSIVE = frozenset({_Q.FIRST_COMMAND_ONLY, _Q.IGNORES_MULTI_COMMAND})


@dataclass(frozen=True)
class Profile:
    """A named firmware: its quirks, its own decimals (None: as configured) and what it lacks."""

    name: str
    quirks: frozenset[Quirk]
    decimals: Decimals | None
    summary: str


_LEGACY = frozenset({_Q.NO_PRICE_READBACK, _Q.NO_SUSPEND, _Q.SHORT_TOTALS, _Q.NO_ACKPOLL})

PROFILES: Mapping[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "rev211",
            frozenset(),
            None,
            "rev 2.11 in full: DC103 price read-back, suspend/resume and status 8, DC101 in 16 "
            "bytes, ACKPOLL, DC7 and DC9; decimals as configured (2/2/2 by default)",
        ),
        Profile(
            "legacy",
            _LEGACY,
            None,
            "older firmware: no DC103 (CD1 0F), no suspend/resume (CD1 0D/0E) and no status 8, "
            "DC101 in 6 bytes, ACKPOLL not understood (the block is sent again, forever); "
            "unknown commands answered with the status only",
        ),
        Profile(
            "milli",
            frozenset(),
            Decimals(volume=3, amount=2, price=3),
            "rev 2.11 with 3 volume and price decimals and 2 for money, reported in DC7 "
            "(1.211 L at 1.539 = 1.86), whatever the config says",
        ),
        Profile(
            "bare",
            _LEGACY | {_Q.NO_PARAMETERS, _Q.NO_IDENTITY, _Q.SILENT_ON_UNKNOWN},
            None,
            "legacy that also answers no DC7 (CD1 02) and no DC9 (CD1 03) and says nothing to "
            "a command it does not know: only what a sale needs",
        ),
    )
}


@dataclass(frozen=True)
class Firmware:
    """A profile plus extra quirks: everything the pump model and its link layer consult."""

    profile: str = "rev211"
    extra: frozenset[Quirk] = frozenset()

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            known = ", ".join(PROFILES)
            raise ValueError(f"unknown firmware profile {self.profile!r} (known: {known})")
        if self.quirks >= _EXCLUSIVE:
            raise ValueError(
                f"{_Q.FIRST_COMMAND_ONLY} and {_Q.IGNORES_MULTI_COMMAND} exclude each other"
            )

    @property
    def quirks(self) -> frozenset[Quirk]:
        return PROFILES[self.profile].quirks | self.extra

    @property
    def decimals(self) -> Decimals | None:
        """The decimals this firmware imposes (None: the pump's configured ones)."""
        return PROFILES[self.profile].decimals

    @property
    def spec(self) -> str:
        """The text form `parse_firmware` reads back: `legacy+pump-wide-totals`."""
        added = sorted(q.value for q in self.extra - PROFILES[self.profile].quirks)
        return "+".join([self.profile, *added])

    def has(self, quirk: Quirk) -> bool:
        return quirk in self.quirks

    def knows(self, command: PumpCommand) -> bool:
        """Whether this firmware carries out (or answers) CD1 `command`."""
        return not any(command in _UNKNOWN_COMMANDS.get(q, ()) for q in self.quirks)


DEFAULT_FIRMWARE = Firmware()


def parse_firmware(text: str) -> Firmware:
    """`NAME[+QUIRK...]`: a profile and extra quirks, e.g. `rev211+pump-wide-totals`."""
    name, *extra = (part.strip() for part in text.strip().split("+"))
    quirks = set()
    for part in extra:
        try:
            quirks.add(Quirk(part))
        except ValueError:
            known = ", ".join(q.value for q in Quirk)
            raise ValueError(f"unknown firmware quirk {part!r} (known: {known})") from None
    return Firmware(name, frozenset(quirks))


@dataclass(frozen=True)
class FirmwarePlan:
    """Which firmware each pump of a line runs: one for all, with exceptions per address."""

    default: Firmware = DEFAULT_FIRMWARE
    pumps: Mapping[int, Firmware] = field(default_factory=dict)

    def for_pump(self, address: int) -> Firmware:
        return self.pumps.get(address, self.default)

    def check(self, addresses: Iterable[int]) -> None:
        """Refuse a firmware given for an address where no pump is."""
        unknown = sorted(set(self.pumps) - set(addresses))
        if unknown:
            names = ", ".join(f"{a:#04x}" for a in unknown)
            raise ValueError(f"firmware given for {names}, where there is no pump")

    @classmethod
    def parse(cls, specs: Iterable[str]) -> FirmwarePlan:
        """`SPEC` for every pump, `ADDRESS=SPEC` for one (`legacy`, `0x51=milli+short-totals`);
        a later one wins."""
        default = DEFAULT_FIRMWARE
        pumps: dict[int, Firmware] = {}
        for text in specs:
            where, sep, spec = text.rpartition("=")
            if not sep:
                default = parse_firmware(spec)
                continue
            try:
                address = int(where.strip(), 0)
            except ValueError:
                raise ValueError(f"not a pump address: {where!r} in {text!r}") from None
            pumps[address] = parse_firmware(spec)
        return cls(default, pumps)


# ----------------------------------------------------------------------------- totals

_VOLUME_COUNTERS = range(0x01, 0x09)
_VOLUME_SUM = 0x09
_AMOUNT_COUNTERS = range(0x11, 0x19)
_AMOUNT_SUM = 0x19


def totals_reply(
    firmware: Firmware,
    counter: int,
    totals: Mapping[int, tuple[int, int]],
    fillings: Mapping[int, int],
) -> DC101 | None:
    """The DC101 answer to CD101 `counter` (PROTOCOLS.md, DC101), as this firmware gives it.

    `totals` is (volume, amount) per logical nozzle, `fillings` the completed fillings per
    nozzle. Rev 2.11: 01..08 the volume of nozzle n, 09 the volume sum, 11..18 and 19 the
    amounts; the second field counts the fillings (of the nozzle, or of the pump for a sum),
    the third is 0. None for a counter the pump does not have.
    """
    if counter in (_VOLUME_SUM, _AMOUNT_SUM):
        scope = list(totals)
    elif counter in _VOLUME_COUNTERS or counter in _AMOUNT_COUNTERS:
        scope = list(totals) if firmware.has(_Q.PUMP_WIDE_TOTALS) else [counter & 0x0F]
    else:
        return None
    amount = counter in _AMOUNT_COUNTERS or counter == _AMOUNT_SUM
    if counter in _VOLUME_COUNTERS and firmware.has(_Q.AMOUNT_IN_VOLUME_COUNTER):
        amount = True
    index = 1 if amount else 0
    total = sum(totals[n][index] for n in scope if n in totals) % TOTAL_MODULO
    if firmware.has(_Q.SHORT_TOTALS):
        return DC101(counter, total, None, None)
    count = sum(fillings.get(n, 0) for n in scope) % TOTAL_MODULO
    return DC101(counter, total, count, 0)
