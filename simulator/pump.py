"""A simulated DART dispenser: status, nozzles, prices, presets, metering and totalizers.

No I/O and no clock: every method that can change something takes `now` (seconds, monotonic).
The link layer (TX#, ACK, POLL) is `simulator.slave`; this model only sees typed transactions
(PROTOCOLS.md, "Master to pump" and "Pump to master") and the customer's hands on the nozzles.

Replies are not sent on their own: like a real pump, the model remembers what changed (status,
nozzle, volume) and what was asked for, and hands it all over on the next POLL (`take_replies`).
The status, nozzle and volume replies carry the values current at that POLL.

What the pump answers, and how it gets things wrong, is its firmware (`simulator.firmware`):
rev 2.11 in full by default, or an older or quirkier profile.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from drivers.dart.codec import MAX_ADDRESS, MIN_ADDRESS
from drivers.dart.transactions import (
    CD1,
    CD2,
    CD3,
    CD4,
    CD5,
    CD101,
    DC1,
    DC2,
    DC3,
    DC5,
    DC7,
    DC9,
    DC103,
    MAX_NOZZLES,
    Command,
    PumpCommand,
    PumpStatus,
    Reply,
    UnknownTransaction,
)
from simulator.filling import Filling
from simulator.firmware import DEFAULT_FIRMWARE, Firmware, Quirk, totals_reply
from simulator.metering import (
    DEFAULT_DECIMALS,
    MAX_RAW,
    Decimals,
    FlowMeter,
    rescale,
    stop_limit,
)
from simulator.records import FillEnd, FillRecord, SimulationError
from simulator.states import FUEL_STATES, PumpEvent, next_status
from simulator.totalizer import Totalizer

__all__ = ["FillEnd", "FillRecord", "MeterFault", "SimulatedPump", "SimulationError"]


@dataclass(frozen=True)
class MeterFault:
    """What a faulty pump says of its fillings (``SimulatedPump.set_meter_fault``)."""

    garbled: bool = False  # DC2 bytes that are not BCD
    volume: int | None = None  # raw volume reported instead of the real one
    amount: int | None = None  # raw amount reported instead of the real one
    price_offset: int = 0  # raw units added to every price it shows (DC3, DC103): a pump that
    # does not take the prices it is sent

_INFO_COMMANDS = {
    PumpCommand.RETURN_PARAMETERS,
    PumpCommand.RETURN_IDENTITY,
    PumpCommand.RETURN_PRICES,
}
_EVENT_COMMANDS = {
    PumpCommand.RESET: PumpEvent.RESET,
    PumpCommand.AUTHORIZE: PumpEvent.AUTHORIZE,
    PumpCommand.STOP: PumpEvent.STOP,
    PumpCommand.SWITCH_OFF: PumpEvent.SWITCH_OFF,
    PumpCommand.SUSPEND: PumpEvent.SUSPEND,
    PumpCommand.RESUME: PumpEvent.RESUME,
}
# Presets and the allowed-nozzle list prepare an authorization; once fuel flows they are fixed.
_PREPARING = frozenset({PumpStatus.RESET, PumpStatus.AUTHORIZED})


class SimulatedPump:
    """One dispenser at a DART address, with logical nozzles 1..15 mapped to grade numbers."""

    def __init__(
        self,
        address: int,
        nozzles: Mapping[int, int],
        *,
        flow_lpm: Decimal = Decimal("40"),
        ramp_seconds: Decimal = Decimal("1.5"),
        decimals: Decimals = DEFAULT_DECIMALS,
        max_amount: int = 999_999,
        identity: int | None = None,
        programming_delay: float = 0.0,
        totals: Mapping[int, tuple[int, int]] | None = None,
        firmware: Firmware = DEFAULT_FIRMWARE,
    ) -> None:
        if not MIN_ADDRESS <= address <= MAX_ADDRESS:
            raise ValueError(f"a DART address is 0x50..0x6F, not {address:#x}")
        if not nozzles or not all(1 <= n <= MAX_NOZZLES for n in nozzles):
            raise ValueError("a pump needs logical nozzles numbered 1..15")
        self.address = address
        self.nozzles: dict[int, int] = dict(sorted(nozzles.items()))
        self.firmware = firmware
        self.configured_decimals = decimals
        # A firmware with decimals of its own (milli) reports them in DC7, whatever was configured.
        self.decimals = firmware.decimals or decimals
        self.max_amount = max_amount
        self.identity = 1_000_000_000 + address if identity is None else identity
        self.programming_delay = programming_delay
        self.ramp_seconds = ramp_seconds
        self.flow_lpm = flow_lpm
        self.status = PumpStatus.NOT_PROGRAMMED
        self.prices: dict[int, int] = {}
        self.nozzle_out: int | None = None
        self.selected = 0
        # None: no CD2 since RESET, so every nozzle may fill.
        self.allowed: frozenset[int] | None = None
        self.preset_volume: int | None = None
        self.preset_amount: int | None = None
        self.last_volume = 0
        self.last_amount = 0
        self.fills: list[FillRecord] = []
        self.alarms: list[int] = []
        self.refused: list[str] = []  # commands this pump ignored, for tests and the control API
        self.totalizer = Totalizer(self.nozzles, totals)
        self._filling: Filling | None = None
        self._programmed_at: float | None = None
        self._status_changed = True  # a pump that just started has something to say
        self._nozzle_changed = False
        self._volume_changed = False
        self._queued: list[Reply | UnknownTransaction] = []
        self.meter_fault: MeterFault | None = None

    # ---- the master's side -------------------------------------------------------------------

    def apply(self, commands: Iterable[Command | UnknownTransaction], now: float) -> None:
        """Carry out the transactions of one DATA block, in order."""
        self.tick(now)
        for command in commands:
            self._apply_one(command, now)

    def take_replies(self, now: float) -> tuple[Reply | UnknownTransaction, ...]:
        """Everything the pump has to say at a POLL (empty: it answers EOT)."""
        self.tick(now)
        replies: list[Reply | UnknownTransaction] = []
        if self._status_changed:
            replies.append(DC1(self.status))
        if self._nozzle_changed or (
            self._status_changed and self.firmware.has(Quirk.STATUS_WITH_NOZZLE)
        ):
            replies.append(self._dc3())
        if self._volume_changed:
            replies.append(self._dc2())
        replies.extend(self._queued)
        self._status_changed = self._nozzle_changed = self._volume_changed = False
        self._queued.clear()
        return tuple(replies)

    # ---- the customer's side -----------------------------------------------------------------

    def lift(self, nozzle: int, now: float) -> None:
        self.tick(now)
        self._check_nozzle(nozzle)
        if self.nozzle_out is not None:
            raise SimulationError(
                f"nozzle {self.nozzle_out} of pump {self.address:#x} is already out"
            )
        self.nozzle_out = self.selected = nozzle
        self._nozzle_changed = True
        self._start_if_ready(now)

    def hang(self, nozzle: int, now: float) -> None:
        self.tick(now)
        self._check_nozzle(nozzle)
        if self.nozzle_out != nozzle:
            raise SimulationError(f"nozzle {nozzle} of pump {self.address:#x} is not out")
        self.nozzle_out = None
        self._nozzle_changed = True
        if self._filling is not None and self._filling.nozzle == nozzle:
            self._end_filling(PumpEvent.NOZZLE_IN, FillEnd.NOZZLE_IN, now)

    def set_flow(self, flow_lpm: Decimal, now: float) -> None:
        """The customer squeezes the trigger harder or softer (0 pauses the flow)."""
        if flow_lpm < 0:
            raise SimulationError("flow rate must not be negative")
        self.tick(now)
        self.flow_lpm = flow_lpm
        if self._filling is not None:
            self._filling.meter.set_rate(flow_lpm, now)

    def set_meter_fault(self, fault: MeterFault | None, now: float) -> None:
        """A fault of the pump's own electronics, in what it says of its fillings (DC2):
        ``garbled`` sends bytes that are not BCD in a well-framed block (a failing board),
        ``MeterFault(volume=.., amount=..)`` reports those raw figures whatever was dispensed
        (a broken pulser or counter). The totals keep counting what really flowed."""
        self.tick(now)
        self.meter_fault = fault
        self._volume_changed = True

    def _dc2(self) -> Reply | UnknownTransaction:
        fault = self.meter_fault
        if fault is None:
            return DC2(*self.filling_info)
        if fault.garbled:
            return UnknownTransaction(DC2.TRANS, bytes.fromhex("AB CD EF 9A AB CD EF 9A"))
        volume, amount = self.filling_info
        return DC2(fault.volume if fault.volume is not None else volume,
                   fault.amount if fault.amount is not None else amount)

    def raise_alarm(self, code: int, now: float) -> None:
        self.tick(now)
        self.alarms.append(code)
        self._queued.append(DC5(code))

    def power_cycle(self, now: float) -> None:
        """Power lost and back: what was dispensed stays on the totals, the rest of RAM is gone."""
        self.tick(now)
        if self._filling is not None:
            self._record_fill(FillEnd.POWER_FAILURE, now)
        # Prices, presets and pending replies lived in RAM; totals and the last filling in NVRAM.
        self.status = PumpStatus.NOT_PROGRAMMED
        self.prices = {}
        self._programmed_at = None
        self._clear_authorization()
        self._queued.clear()
        self._status_changed = True
        self._nozzle_changed = self._volume_changed = False

    def load_firmware(self, firmware: Firmware) -> None:
        """Other firmware from now on (`Simulator.set_firmware` power-cycles the pump first).

        Where its decimals differ, the totals, the last filling and the maximum amount are
        converted to keep their litres and money (truncated where the new step is coarser).
        """
        old, self.firmware = self.decimals, firmware
        new = self.decimals = firmware.decimals or self.configured_decimals
        self.totalizer.rescale(old, new)
        self.last_volume = min(rescale(self.last_volume, old.volume, new.volume), MAX_RAW)
        self.last_amount = min(rescale(self.last_amount, old.amount, new.amount), MAX_RAW)
        self.max_amount = min(rescale(self.max_amount, old.amount, new.amount), MAX_RAW)

    # ---- time --------------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Bring the pump up to `now`: programming delay, fuel flow, preset reached."""
        if self._programmed_at is not None and now >= self._programmed_at:
            self._programmed_at = None
            self._transition(PumpEvent.PRICES_LOADED)
        filling = self._filling
        if filling is None:
            return
        changed, reached = filling.advance(now)
        self._volume_changed |= changed
        if reached is not None:
            self._end_filling(PumpEvent.LIMIT_REACHED, filling.end_at_limit, reached)

    # ---- what the pump knows -----------------------------------------------------------------

    @property
    def filling_info(self) -> tuple[int, int]:
        """DC2: volume and amount of the current filling, or of the last one until RESET."""
        if self._filling is not None:
            return self._filling.volume, self._filling.amount
        return self.last_volume, self.last_amount

    @property
    def filling_nozzle(self) -> int | None:
        return None if self._filling is None else self._filling.nozzle

    def totals(self, nozzle: int) -> tuple[int, int]:
        """Electronic totalizers (volume, amount) of a nozzle, the filling in progress included."""
        filling = self._filling
        if filling is not None and filling.nozzle == nozzle:
            return self.totalizer.read(nozzle, filling.volume, filling.amount)
        return self.totalizer.read(nozzle)

    # ---- internals ---------------------------------------------------------------------------

    def _apply_one(self, command: Command | UnknownTransaction, now: float) -> None:
        if isinstance(command, CD1):
            self._apply_cd1(command.command, now)
        elif isinstance(command, CD2):
            if self._preparing(command):
                self.allowed = frozenset(command.nozzles)
        elif isinstance(command, CD3):
            if self._preparing(command):
                self.preset_volume, self.preset_amount = command.volume or None, None
        elif isinstance(command, CD4):
            if self._preparing(command):
                self.preset_volume, self.preset_amount = None, command.amount or None
        elif isinstance(command, CD5):
            self._load_prices(command, now)
        elif isinstance(command, CD101):
            self._answer_totals(command)
        else:
            self.refused.append(f"unknown transaction {command.trans:#04x}")

    def _apply_cd1(self, command: PumpCommand, now: float) -> None:
        if not self.firmware.knows(command):
            # Not in this firmware: the pump answers with its status only, or with nothing.
            self.refused.append(f"CD1 {command.name}: not in firmware {self.firmware.spec}")
            if not self.firmware.has(Quirk.SILENT_ON_UNKNOWN):
                self._status_changed = True
            return
        if command == PumpCommand.RETURN_STATUS:
            self._status_changed = True
        elif command == PumpCommand.RETURN_FILLING_INFO:
            self._status_changed = self._volume_changed = True
        elif command in _INFO_COMMANDS:
            self._queued.append(self._info(command))
        elif command in _EVENT_COMMANDS:
            self._command_event(_EVENT_COMMANDS[command], now)
        else:
            self.refused.append(f"CD1 {command!r}")

    def _command_event(self, event: PumpEvent, now: float) -> None:
        if next_status(self.status, event) is None:
            self.refused.append(f"{event.value} in {self.status.name}")
            return
        if event == PumpEvent.RESET:
            self._clear_authorization()
            self.last_volume = self.last_amount = 0
            self._transition(event)
            self._volume_changed = True
        elif event in (PumpEvent.STOP, PumpEvent.SWITCH_OFF) and self._filling is not None:
            end = FillEnd.STOP if event == PumpEvent.STOP else FillEnd.SWITCH_OFF
            self._end_filling(event, end, now)
        elif event == PumpEvent.SUSPEND and self._filling is not None:
            self._filling.meter.close(now)
            self._transition(event)
        elif event == PumpEvent.RESUME and self._filling is not None:
            self._filling.meter.open(now)
            self._transition(event)
        else:
            self._transition(event)
            if event in (PumpEvent.STOP, PumpEvent.SWITCH_OFF):
                self._clear_authorization()
            self._start_if_ready(now)

    def _preparing(self, command: CD2 | CD3 | CD4) -> bool:
        if self.status in _PREPARING:
            return True
        self.refused.append(f"{type(command).__name__} in {self.status.name}")
        return False

    def _load_prices(self, command: CD5, now: float) -> None:
        # One price per logical nozzle 1..highest, or the whole transaction is ignored (rev 2.11).
        if len(command.prices) != max(self.nozzles):
            self.refused.append(f"CD5 with {len(command.prices)} prices for {max(self.nozzles)}")
            return
        if self.status in FUEL_STATES:
            self.refused.append(f"CD5 in {self.status.name}")
            return
        self.prices = {n: command.prices[n - 1] for n in self.nozzles}
        if self.status == PumpStatus.NOT_PROGRAMMED and self._programmed_at is None:
            self._programmed_at = now + self.programming_delay
            self.tick(now)
        if self.nozzle_out is not None:
            self._nozzle_changed = True  # DC3 carries the price of the selected nozzle

    def _answer_totals(self, command: CD101) -> None:
        reply = totals_reply(
            self.firmware,
            command.counter,
            {n: self.totals(n) for n in self.nozzles},
            {n: self.totalizer.fillings(n) for n in self.nozzles},
        )
        if reply is None:
            self.refused.append(f"CD101 counter {command.counter:#04x}")
        else:
            self._queued.append(reply)

    def _info(self, command: PumpCommand) -> Reply:
        if command == PumpCommand.RETURN_IDENTITY:
            return DC9(self.identity)
        if command == PumpCommand.RETURN_PRICES:
            return DC103(tuple(self._shown(self.prices.get(n, 0))
                               for n in range(1, max(self.nozzles) + 1)))
        grades = tuple(self.nozzles.get(n, 0) for n in range(1, 16))
        d = self.decimals
        return DC7(d.volume, d.amount, d.price, self.max_amount, grades)

    def _dc3(self) -> DC3:
        if self._filling is not None:
            price = self._filling.price
        else:
            price = self.prices.get(self.selected, 0)
        return DC3(self._shown(price), self.selected, self.nozzle_out is not None)

    def _shown(self, price: int) -> int:
        offset = self.meter_fault.price_offset if self.meter_fault is not None else 0
        return price + offset if price else price

    def _check_nozzle(self, nozzle: int) -> None:
        if nozzle not in self.nozzles:
            raise SimulationError(f"pump {self.address:#x} has no nozzle {nozzle}")

    def _transition(self, event: PumpEvent) -> None:
        target = next_status(self.status, event)
        if target is not None:
            self.status = target
            self._status_changed = True  # even RESET in RESET: the master asked and waits for DC1

    def _clear_authorization(self) -> None:
        self.allowed = None
        self.preset_volume = self.preset_amount = None

    def _start_if_ready(self, now: float) -> None:
        nozzle = self.nozzle_out
        if self.status != PumpStatus.AUTHORIZED or nozzle is None or nozzle not in self.prices:
            return
        if self.allowed is not None and nozzle not in self.allowed:
            return
        price = self.prices[nozzle]
        meter = FlowMeter(self.flow_lpm, self.ramp_seconds, now)
        limit = stop_limit(
            price, self.decimals, self.max_amount, self.preset_volume, self.preset_amount
        )
        self._filling = Filling(nozzle, price, meter, limit, self.decimals, now)
        self.last_volume = self.last_amount = 0
        self._transition(PumpEvent.NOZZLE_OUT)
        self._volume_changed = True

    def _end_filling(self, event: PumpEvent, end: FillEnd, now: float) -> None:
        self._record_fill(end, now)
        self._transition(event)
        self._clear_authorization()
        self._volume_changed = True  # the final DC2 goes with the completion

    def _record_fill(self, end: FillEnd, now: float) -> None:
        filling = self._filling
        assert filling is not None
        self._filling = None
        self.last_volume, self.last_amount = filling.volume, filling.amount
        record = filling.record(
            seq=len(self.fills) + 1,
            pump=self.address,
            grade=self.nozzles[filling.nozzle],
            totalizer=self.totalizer,
            end=end,
            now=now,
        )
        self.fills.append(record)
