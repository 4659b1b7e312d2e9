"""One simulated IFSF fuelling point: state, nozzles, release, metering and its buffer.

No I/O and no clock: every method that can change something takes ``now``. What the fuelling
point has to tell the controller (a new state, running figures, a transaction in or out of its
buffer) is queued as a ``Notice``; the node (``simulator.ifsf.node``) turns notices into
unsolicited messages. Money and volumes are raw integers in the dispenser's units
(``simulator.metering``), the same flow model as the DART simulator.

From the notes (PROTOCOLS.md, IFSF "A sale as PetroChina's controller runs it"): the release
comes with a prepay or volume preset and a nozzle mask; a release without a preset is refused
(code 6) unless the nozzle is already lifted; at most ``max_unpaid`` (2) transactions wait in
the buffer and a release is refused (code 6) while it is full; transaction numbers have 4 BCD
digits and wrap (9999, then 0001: 0000 means "all").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from drivers.ifsf.address import Lna
from drivers.ifsf.ids import FpState, ItemCode, TrState
from simulator.metering import (
    MAX_RAW,
    Decimals,
    FlowMeter,
    StopLimit,
    amount_for,
    stop_limit,
    volume_raw,
)
from simulator.records import FillEnd, SimulationError

from .states import OPEN_STATES, SimEvent, next_state

__all__ = ["BufferedTransaction", "Notice", "SimulatedFp"]

MAX_SEQUENCE = 9999
TOTAL_MODULO = 10**12  # totals are 12 digits (7-byte numbers)


@dataclass
class BufferedTransaction:
    """A finished filling held by the fuelling point until the controller clears it."""

    sequence: int
    nozzle: int
    product: int
    price: int
    volume: int
    amount: int
    state: TrState
    controller: Lna | None  # who released it; None: sold stand-alone
    volume_total_before: int
    volume_total_after: int
    started_at: float
    ended_at: float
    end: FillEnd


@dataclass(frozen=True)
class Notice:
    """Something to announce: ``kind`` is "status", "running" or "buffer" (with ``sequence``)."""

    kind: str
    sequence: int = 0


class _Filling:
    def __init__(self, nozzle: int, price: int, meter: FlowMeter, limit: StopLimit,
                 now: float, controller: Lna | None) -> None:
        self.nozzle = nozzle
        self.price = price
        self.meter = meter
        self.limit = limit
        self.started_at = now
        self.controller = controller
        self.volume = 0
        self.amount = 0


class SimulatedFp:
    """Fuelling point ``number`` (1..4) with logical nozzles mapped to product numbers."""

    def __init__(
        self,
        number: int,
        nozzles: Mapping[int, int],
        price_of: Callable[[int], int | None],
        *,
        decimals: Decimals,
        flow_lpm: Decimal = Decimal("40"),
        ramp_seconds: Decimal = Decimal("1.5"),
        max_unpaid: int = 2,
        release_needs_preset: bool = True,
        first_sequence: int = 1,
    ) -> None:
        if not 1 <= number <= 4:
            raise ValueError(f"a fuelling point is 1..4, not {number}")
        if not nozzles or not all(1 <= n <= 8 for n in nozzles):
            raise ValueError("a fuelling point needs logical nozzles numbered 1..8")
        if not 1 <= first_sequence <= MAX_SEQUENCE:
            raise ValueError("transaction numbers are 1..9999")
        self.number = number
        self.nozzles = dict(sorted(nozzles.items()))  # logical nozzle -> product number
        self._price_of = price_of
        self.decimals = decimals
        self.flow_lpm = flow_lpm
        self.ramp_seconds = ramp_seconds
        self.max_unpaid = max_unpaid
        self.release_needs_preset = release_needs_preset
        self.stand_alone = False
        self.state = FpState.CLOSED
        self.opened = False  # Open_FP seen since power-up
        self.owner: Lna | None = None  # Assign_Contr_Id
        self.lifted: int | None = None
        self.mask: frozenset[int] | None = None
        self.preset_amount: int | None = None
        self.preset_volume: int | None = None
        self.release_owner: Lna | None = None
        self.running_interval = 1.0  # seconds between running transaction messages
        self.buffer: list[BufferedTransaction] = []
        self.history: list[BufferedTransaction] = []  # every filling, cleared or not
        self.next_sequence = first_sequence
        self.totals = {n: [0, 0] for n in self.nozzles}
        self.last = (0, 0, 0, 0)  # volume, amount, nozzle, price of the last filling
        self.notices: list[Notice] = []
        self.refused: list[str] = []
        self._filling: _Filling | None = None
        self._running_at = 0.0

    # ---- queries ------------------------------------------------------------------------------

    @property
    def filling(self) -> _Filling | None:
        return self._filling

    @property
    def unpaid(self) -> list[BufferedTransaction]:
        return [t for t in self.buffer if t.state in (TrState.PAYABLE, TrState.LOCKED)]

    def current(self) -> tuple[int, int, int, int]:
        """Volume, amount, nozzle and price of the filling in progress, else of the last one."""
        f = self._filling
        return (f.volume, f.amount, f.nozzle, f.price) if f is not None else self.last

    # ---- the controller's commands (each returns an item code) -------------------------------

    def open(self, controller: Lna, now: float) -> int:
        self.owner = controller  # the status message it causes names its owner
        code = self._event(SimEvent.OPEN, now)
        if code == ItemCode.ACCEPTED:
            self.opened = True
            self.owner = controller
            if self.lifted is not None and self.state is FpState.IDLE:
                # A nozzle taken while the point was closed: opened, the point calls.
                self._event(SimEvent.LIFT, now)
        return code

    def close(self, now: float) -> int:
        code = self._event(SimEvent.CLOSE, now)
        if code == ItemCode.ACCEPTED:
            self._clear_release()
        return code

    def set_preset(self, amount: int | None, volume: int | None) -> int:
        if self.state not in OPEN_STATES:
            return self._refuse(ItemCode.NOT_ACCEPTED, f"preset in {self.state.name}")
        self.preset_amount, self.preset_volume = amount, volume
        return ItemCode.ACCEPTED

    def set_mask(self, mask: frozenset[int]) -> int:
        if self.state not in OPEN_STATES:
            return self._refuse(ItemCode.NOT_ACCEPTED, f"nozzle mask in {self.state.name}")
        self.mask = mask or None
        return ItemCode.ACCEPTED

    def release(self, controller: Lna, now: float) -> int:
        if self.state not in OPEN_STATES:
            return self._refuse(ItemCode.REFUSED_IN_STATE, f"release in {self.state.name}")
        if len(self.unpaid) >= self.max_unpaid:
            return self._refuse(ItemCode.NOT_ACCEPTED, "release with the buffer full")
        no_preset = self.preset_amount is None and self.preset_volume is None
        if self.release_needs_preset and no_preset and self.state is not FpState.CALLING:
            return self._refuse(ItemCode.NOT_ACCEPTED, "release without a preset, nozzle in")
        self.release_owner = controller
        if self.state is FpState.CALLING:
            code = self._start(now)
            if code:
                self.release_owner = None
                return code
        return self._event(SimEvent.RELEASE, now)

    def terminate(self, now: float) -> int:
        self.tick(now)
        if self._filling is not None and self._filling.volume > 0:
            self._end(FillEnd.STOP, now)
            return ItemCode.ACCEPTED
        if self.state is FpState.AUTHORISED:
            self._clear_release()
            return self._event(SimEvent.TERMINATE, now)
        if self.state in (FpState.STARTED, FpState.SUSPENDED_STARTED):
            self._filling = None
            self._clear_release()
            return self._event(SimEvent.TERMINATE_EMPTY, now)
        return self._refuse(ItemCode.REFUSED_IN_STATE, f"terminate in {self.state.name}")

    def suspend(self, now: float) -> int:
        self.tick(now)
        code = self._event(SimEvent.SUSPEND, now)
        if code == ItemCode.ACCEPTED and self._filling is not None:
            self._filling.meter.close(now)
        return code

    def resume(self, now: float) -> int:
        self.tick(now)
        code = self._event(SimEvent.RESUME, now)
        if code == ItemCode.ACCEPTED and self._filling is not None:
            self._filling.meter.open(now)
        return code

    def price_refused(self, now: float) -> None:
        """A price change refused (0x37): the fuelling point is Inoperative."""
        if self._event(SimEvent.PRICE_REFUSED, now) == ItemCode.ACCEPTED:
            self._clear_release()

    # ---- the buffer ---------------------------------------------------------------------------

    def transaction(self, sequence: int) -> BufferedTransaction | None:
        return next((t for t in self.buffer if t.sequence == sequence), None)

    def clear(self, sequence: int) -> int:
        found = self.transaction(sequence)
        if found is None:
            return self._refuse(ItemCode.DOES_NOT_EXIST, f"clear of unknown {sequence:04d}")
        if found.state is TrState.CLEARED:
            return self._refuse(ItemCode.REFUSED_IN_STATE, f"clear of cleared {sequence:04d}")
        found.state = TrState.CLEARED
        self.buffer.remove(found)
        self._notice("buffer", sequence)
        return ItemCode.ACCEPTED

    def lock(self, sequence: int, locked: bool) -> int:
        found = self.transaction(sequence)
        if found is None:
            return self._refuse(ItemCode.DOES_NOT_EXIST, f"lock of unknown {sequence:04d}")
        found.state = TrState.LOCKED if locked else TrState.PAYABLE
        self._notice("buffer", sequence)
        return ItemCode.ACCEPTED

    # ---- the customer -------------------------------------------------------------------------

    def lift(self, nozzle: int, now: float) -> None:
        self.tick(now)
        if nozzle not in self.nozzles:
            raise SimulationError(f"fuelling point {self.number} has no nozzle {nozzle}")
        if self.lifted is not None:
            raise SimulationError(f"nozzle {self.lifted} of FP {self.number} is already up")
        self.lifted = nozzle
        if self.state is FpState.IDLE:
            self._event(SimEvent.LIFT, now)
            if self.stand_alone and len(self.unpaid) < self.max_unpaid:
                self.release_owner = None
                if not self._start(now):
                    self._event(SimEvent.AUTO_RELEASE, now)
        elif self.state is FpState.AUTHORISED and (self.mask is None or nozzle in self.mask):
            if not self._start(now):
                self._event(SimEvent.LIFT, now)
        else:
            self._notice("status")  # the lifted nozzle is news even without a new state

    def hang(self, nozzle: int, now: float) -> None:
        self.tick(now)
        if self.lifted != nozzle:
            raise SimulationError(f"nozzle {nozzle} of FP {self.number} is not up")
        self.lifted = None
        filling = self._filling
        if filling is not None and filling.volume > 0:
            self._end(FillEnd.NOZZLE_IN, now)
            return
        if self.state in (FpState.CALLING, FpState.STARTED, FpState.SUSPENDED_STARTED):
            self._filling = None
            self._clear_release()
            self._event(SimEvent.HANG, now)
        else:
            self._notice("status")

    def set_flow(self, flow_lpm: Decimal, now: float) -> None:
        if flow_lpm < 0:
            raise SimulationError("flow rate must not be negative")
        self.tick(now)
        self.flow_lpm = flow_lpm
        if self._filling is not None:
            self._filling.meter.set_rate(flow_lpm, now)

    def power_cycle(self, now: float) -> None:
        """Power lost and back: a filling in progress ends into the buffer (NVRAM), the
        fuelling point comes back Closed and waits for Open_FP."""
        self.tick(now)
        if self._filling is not None and self._filling.volume > 0:
            self._end(FillEnd.POWER_FAILURE, now)
        self._filling = None
        self._clear_release()
        self.state = FpState.CLOSED
        self.opened = False
        self.owner = None
        self.notices.clear()

    # ---- time ---------------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        filling = self._filling
        if filling is None:
            return
        reached = filling.meter.advance(now, filling.limit.litres)
        if reached is not None:
            filling.volume, filling.amount = filling.limit.volume, filling.limit.amount
            self._flowing(now)
            end = FillEnd.PRESET if filling.limit.preset else FillEnd.MAX_AMOUNT
            self._end(end, reached)
            return
        volume = min(volume_raw(filling.meter.litres, self.decimals), MAX_RAW)
        filling.volume = volume
        filling.amount = amount_for(volume, filling.price, self.decimals)
        if volume > 0:
            self._flowing(now)
        if self.state is FpState.FUELLING and now >= self._running_at:
            self._running_at = now + self.running_interval
            self._notice("running")

    # ---- internals ----------------------------------------------------------------------------

    def _event(self, event: SimEvent, now: float) -> int:
        target = next_state(self.state, event)
        if target is None:
            return self._refuse(ItemCode.REFUSED_IN_STATE, f"{event.value} in {self.state.name}")
        if target is not self.state:
            self.state = target
        self._notice("status")
        return ItemCode.ACCEPTED

    def _refuse(self, code: int, why: str) -> int:
        self.refused.append(why)
        return code

    def _notice(self, kind: str, sequence: int = 0) -> None:
        self.notices.append(Notice(kind, sequence))

    def _clear_release(self) -> None:
        self.mask = None
        self.preset_amount = self.preset_volume = None
        self.release_owner = None

    def _start(self, now: float) -> int:
        """Open the valve for the lifted nozzle; a non-zero item code when it cannot."""
        nozzle = self.lifted
        assert nozzle is not None
        price = self._price_of(self.nozzles[nozzle])
        if price is None or price <= 0:
            return self._refuse(ItemCode.NOT_ACCEPTED, f"no price for nozzle {nozzle}")
        meter = FlowMeter(self.flow_lpm, self.ramp_seconds, now)
        limit = stop_limit(price, self.decimals, MAX_RAW, self.preset_volume, self.preset_amount)
        self._filling = _Filling(nozzle, price, meter, limit, now, self.release_owner)
        return 0

    def _flowing(self, now: float) -> None:
        if self.state is FpState.STARTED:
            self._event(SimEvent.FLOW, now)
            self._running_at = now

    def _end(self, end: FillEnd, now: float) -> None:
        filling = self._filling
        assert filling is not None
        self._filling = None
        nozzle = filling.nozzle
        before = self.totals[nozzle][0]
        self.totals[nozzle][0] = (before + filling.volume) % TOTAL_MODULO
        self.totals[nozzle][1] = (self.totals[nozzle][1] + filling.amount) % TOTAL_MODULO
        self.last = (filling.volume, filling.amount, nozzle, filling.price)
        record = BufferedTransaction(
            self.next_sequence, nozzle, self.nozzles[nozzle], filling.price, filling.volume,
            filling.amount, TrState.PAYABLE, filling.controller, before,
            self.totals[nozzle][0], filling.started_at, now, end)
        self.next_sequence = self.next_sequence % MAX_SEQUENCE + 1
        self.buffer.append(record)
        self.history.append(record)
        self._clear_release()
        self._notice("running")
        self._notice("buffer", record.sequence)
        if self.state is not FpState.IDLE:
            self._event(SimEvent.END, now)
