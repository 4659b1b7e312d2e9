"""A simulated Gilbarco two-wire pump: status, hoses, prices, presets, metering, totals.

No I/O and no clock: every method that can change something takes ``now``. The link layer
(command bytes, READY_FOR_DATA, echo) is ``simulator.gilbarco.slave``; the status table is
``simulator.gilbarco.states``. Everything is in the pump's own units (decimals 2/2/2 by default:
centilitres, fen, fen per litre), metered by ``simulator.metering`` as the DART pumps are.

What the notes say a pump keeps: one transaction, shown until the next sale starts (no buffer);
totals per hose, which carry both price levels; its configuration, told through a special
function (which this pump may be set not to answer).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from simulator.gilbarco.states import PumpEvent, Status, next_status
from simulator.gilbarco.wire import block, digits, hex_records, number
from simulator.metering import (
    DEFAULT_DECIMALS,
    Decimals,
    FlowMeter,
    StopLimit,
    amount_for,
    stop_limit,
    volume_raw,
)
from simulator.records import FillEnd, FillRecord, SimulationError

__all__ = ["NOZZLE_FUNCTION", "EndProfile", "GilbarcoPump", "Mode"]

NOZZLE_FUNCTION = 10  # special function 010: which nozzle is lifted
DEFAULT_CONFIG_FUNCTION = 1  # the notes do not name the configuration's function


@dataclass(frozen=True)
class Mode:
    """Digit counts of the standard (eight=False) or the 8-digit mode."""

    eight: bool = False

    @property
    def price(self) -> int:
        return 6 if self.eight else 4

    @property
    def sale(self) -> int:
        return 8 if self.eight else 6

    @property
    def totals(self) -> int:
        return 12 if self.eight else 8


@dataclass(frozen=True)
class EndProfile:
    """When a pump leaves end of sale (A/B) for idle: an unknown of the notes, so a setting.

    ``needs_read``: only once the controller has read the transaction (else ``hold`` seconds
    after the end); ``needs_hangup``: only once the nozzle is back (else at once, and the pump
    calls again only after the nozzle has been hung up and lifted).
    """

    needs_read: bool = True
    needs_hangup: bool = True
    hold: float = 2.0


@dataclass
class _Sale:
    """The transaction the pump shows (``4p``) and its running money (``6p``)."""

    hose: int
    price: int
    volume: int = 0
    money: int = 0


class _Fill:
    def __init__(self, hose: int, price: int, meter: FlowMeter, limit: StopLimit,
                 totals: tuple[int, int], now: float) -> None:
        self.hose = hose
        self.price = price
        self.meter = meter
        self.limit = limit
        self.totals_before = totals
        self.started_at = now


class GilbarcoPump:
    """One pump at address 1..16 with hoses 1..n mapped to grade numbers."""

    def __init__(
        self,
        number: int,
        hoses: Mapping[int, int],
        *,
        prices: Mapping[int, int] | None = None,
        eight_digits: bool = False,
        decimals: Decimals = DEFAULT_DECIMALS,
        flow_lpm: Decimal = Decimal("40"),
        ramp_seconds: Decimal = Decimal("1.5"),
        start_delay: float = 0.3,
        end: EndProfile = EndProfile(),
        answers_config: bool = True,
        config_function: int = DEFAULT_CONFIG_FUNCTION,
        check_length: bool = True,
        totals: Mapping[int, tuple[int, int]] | None = None,
    ) -> None:
        if not 1 <= number <= 16:
            raise ValueError(f"a Gilbarco pump is 1..16, not {number}")
        if not hoses or not all(1 <= h <= 16 for h in hoses):
            raise ValueError("a pump needs hoses numbered 1..16")
        self.number = number
        self.hoses = dict(sorted(hoses.items()))
        self.mode = Mode(eight_digits)
        self.decimals = decimals
        self.flow_lpm = flow_lpm
        self.ramp_seconds = ramp_seconds
        self.start_delay = start_delay
        self.end = end
        self.answers_config = answers_config
        self.config_function = config_function
        self.check_length = check_length
        default = 10 ** decimals.price * 750 // 100  # 7.50 a litre
        self.prices: dict[int, int] = {h: (prices or {}).get(h, default) for h in self.hoses}
        self.prices_2: dict[int, int] = dict(self.prices)
        self._totals = {h: (totals or {}).get(h, (0, 0)) for h in self.hoses}
        self.max_money = 10**self.mode.sale - 1
        self.status = Status.IDLE
        self.data_error = False
        self.nozzle_out: int | None = None
        self.preset: tuple[str, int, int | None] | None = None  # unit, value, hose
        self.sale = _Sale(hose=next(iter(self.hoses)), price=self.prices[next(iter(self.hoses))])
        self.fills: list[FillRecord] = []
        self.refused: list[str] = []
        self._fill: _Fill | None = None
        self._motor_at: float | None = None
        self._ended_at: float | None = None
        self._read_since_end = False
        self._must_rehang = False

    # ---- what the master hears -------------------------------------------------------------

    def status_answer(self, now: float) -> int:
        self.tick(now)
        return Status.DATA_ERROR if self.data_error else self.status

    def ready_for_data(self, now: float) -> bool:
        """Whether ``2p`` gets READY_FOR_DATA: a block is taken while idle or calling."""
        self.tick(now)
        return not self.data_error and self.status in (Status.IDLE, Status.CALLING)

    def transaction(self, now: float) -> bytes:
        self.tick(now)
        if self.status in (Status.END_A, Status.END_B):
            self._read_since_end = True
            self._settle(now)
        sale, mode = self.sale, self.mode
        body = bytes((0xF1, 0xF8, 0xEB, 0xE0 | (self.number - 1), 0xE0, 0xE0, 0xE0,
                      0xF6, 0xE0 | (sale.hose - 1), 0xF4, 0xF7))
        body += digits(sale.price, mode.price) + b"\xf9" + digits(sale.volume, mode.sale)
        body += b"\xfa" + digits(sale.money, mode.sale)
        return block(body)

    def totals_answer(self, now: float) -> bytes:
        """The totals of every hose with both prices; reading them clears a data error."""
        self.tick(now)
        self.data_error = False
        mode, body = self.mode, b""
        for hose in self.hoses:
            volume, money = self.totals(hose)
            body += bytes((0xF6, 0xE0 | (hose - 1), 0xF9)) + digits(volume, mode.totals)
            body += b"\xfa" + digits(money, mode.totals)
            body += b"\xf4" + digits(self.prices[hose], mode.price)
            body += b"\xf5" + digits(self.prices_2[hose], mode.price)
        return block(body)

    def running_money(self, now: float) -> bytes:
        self.tick(now)
        return digits(self.sale.money, self.mode.sale)

    def special_function(self, function: int, now: float) -> bytes | None:
        """The hex records of a special function; None: the pump does not answer it."""
        self.tick(now)
        if function == NOZZLE_FUNCTION:
            return hex_records(self.number, function, bytes((self.nozzle_out or 0,)))
        if function == self.config_function and self.answers_config:
            d = self.decimals
            data = bytes((0, d.volume, d.amount, d.price, self.mode.sale))
            return hex_records(self.number, function, data)
        self.refused.append(f"special function {function:03d}")
        return None

    def totals(self, hose: int) -> tuple[int, int]:
        """Electronic totals (volume, money) of a hose, the filling in progress included."""
        volume, money = self._totals[hose]
        fill = self._fill
        if fill is not None and fill.hose == hose:
            volume, money = volume + self.sale.volume, money + self.sale.money
        wrap = 10**self.mode.totals
        return volume % wrap, money % wrap

    # ---- what the master does --------------------------------------------------------------

    def authorize(self, now: float) -> None:
        self.tick(now)
        if self.data_error:
            self.refused.append("authorize during a data error")
            return
        status = self.status
        if next_status(status, PumpEvent.AUTHORIZE) is None:
            self.refused.append(f"authorize in {status.name}")
            return
        if status is Status.STOPPED:
            assert self._fill is not None
            self._fill.meter.open(now)
            self._transition(PumpEvent.AUTHORIZE)
            return
        hose = self._allowed_hose() or self.nozzle_out or self.sale.hose
        self.sale = _Sale(hose=hose, price=self.prices[hose])  # the old sale is gone now
        self._transition(PumpEvent.AUTHORIZE)
        if self.nozzle_out is not None:
            self._motor_at = now + self.start_delay
        self.tick(now)

    def stop(self, now: float) -> None:
        self.tick(now)
        if self.status is Status.AUTHORIZED:
            self._motor_at = None
            self.preset = None
            self._transition(PumpEvent.STOP)
            if self.nozzle_out is not None:
                self._transition(PumpEvent.LIFT)
        elif self.status is Status.FUELLING:
            assert self._fill is not None
            self._fill.meter.close(now)
            self._transition(PumpEvent.STOP)
        else:
            self.refused.append(f"stop in {self.status.name}")

    def take_block(self, body: bytes, checksum_ok: bool, length_ok: bool,
                   now: float) -> bytes | None:
        """A block after READY_FOR_DATA; the answer of a special function, else None."""
        self.tick(now)
        if not checksum_ok or (self.check_length and not length_ok):
            self.data_error = True
            self.refused.append("block with a bad checksum or length word")
            return None
        payload = body[1:]
        if payload[:1] == b"\xfe" and len(payload) == 4:
            function = number(payload[1:])
            return None if function is None else self.special_function(function, now)
        if payload[:1] in (b"\xf1", b"\xf2"):
            self._take_preset(payload)
        elif payload[:1] in (b"\xf4", b"\xf5"):
            self._take_prices(payload)
        else:
            self.refused.append(f"unknown block {body.hex(' ')}")
        return None

    # ---- the customer and the technician ---------------------------------------------------

    def lift(self, hose: int, now: float) -> None:
        self.tick(now)
        if hose not in self.hoses:
            raise SimulationError(f"pump {self.number} has no hose {hose}")
        if self.nozzle_out is not None:
            raise SimulationError(f"hose {self.nozzle_out} of pump {self.number} is already out")
        self.nozzle_out = hose
        if self.status is Status.AUTHORIZED:
            self._motor_at = now + self.start_delay
        elif not self._must_rehang:
            self._transition(PumpEvent.LIFT)
        self.tick(now)

    def hang(self, hose: int, now: float) -> None:
        self.tick(now)
        if self.nozzle_out != hose:
            raise SimulationError(f"hose {hose} of pump {self.number} is not out")
        self.nozzle_out = None
        self._must_rehang = False
        if self.status is Status.AUTHORIZED:
            self._motor_at = None
        elif self.status in (Status.FUELLING, Status.STOPPED):
            stopped = self.status is Status.STOPPED
            self._end_fill(PumpEvent.HANG, FillEnd.STOP if stopped else FillEnd.NOZZLE_IN, now)
        else:
            self._transition(PumpEvent.HANG)
        self._settle(now)

    def set_flow(self, flow_lpm: Decimal, now: float) -> None:
        if flow_lpm < 0:
            raise SimulationError("flow rate must not be negative")
        self.tick(now)
        self.flow_lpm = flow_lpm
        if self._fill is not None:
            self._fill.meter.set_rate(flow_lpm, now)

    def power_cycle(self, now: float) -> None:
        """Power lost and back: a filling ends where it was; prices, totals and the last
        transaction are kept (the pump's memory), the authorization is gone."""
        self.tick(now)
        if self._fill is not None:
            self._record_fill(FillEnd.POWER_FAILURE, now)
        self.status = Status.CALLING if self.nozzle_out is not None else Status.IDLE
        self.data_error = False
        self.preset = None
        self._motor_at = self._ended_at = None
        self._must_rehang = False

    # ---- time ------------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Bring the pump up to ``now``: motor start, fuel flow, limit reached, end hold."""
        if self._motor_at is not None and now >= self._motor_at:
            started = self._motor_at
            self._motor_at = None
            self._start_fill(started)
        fill = self._fill
        if fill is not None:
            reached = fill.meter.advance(now, fill.limit.litres)
            self._meter(fill)
            if reached is not None:
                end = FillEnd.PRESET if fill.limit.preset else FillEnd.MAX_AMOUNT
                self._end_fill(PumpEvent.LIMIT, end, reached)
        if self.status in (Status.END_A, Status.END_B):
            self._settle(now)

    # ---- internals -------------------------------------------------------------------------

    def _transition(self, event: PumpEvent) -> None:
        target = next_status(self.status, event)
        if target is not None:
            self.status = target

    def _allowed_hose(self) -> int | None:
        return None if self.preset is None else self.preset[2]

    def _take_preset(self, payload: bytes) -> None:
        if self.status not in (Status.IDLE, Status.CALLING):
            self.refused.append(f"preset in {self.status.name}")
            return
        unit = "volume" if payload[0] == 0xF1 else "money"
        at, hose = 2, None
        if len(payload) > 3 and payload[at] == 0xF6:
            hose, at = (payload[at + 1] & 0x0F) + 1, at + 2
        value = number(payload[at + 1 :]) if payload[at : at + 1] == b"\xf8" else None
        if not value or (hose is not None and hose not in self.hoses):
            self.refused.append(f"preset block {payload.hex(' ')}")
            return
        self.preset = (unit, value, hose)

    def _take_prices(self, payload: bytes) -> None:
        if self.status is not Status.IDLE:
            self.refused.append(f"price change in {self.status.name}")  # only when idle
            return
        price = number(payload[4:]) if len(payload) > 4 and payload[3] == 0xF7 else None
        hose = (payload[2] & 0x0F) + 1 if len(payload) > 2 and payload[1] == 0xF6 else None
        if not price or hose not in self.hoses or len(payload) - 4 != self.mode.price:
            self.refused.append(f"price block {payload.hex(' ')}")
            return
        assert hose is not None
        (self.prices if payload[0] == 0xF4 else self.prices_2)[hose] = price

    def _start_fill(self, now: float) -> None:
        hose = self.nozzle_out
        allowed = self._allowed_hose()
        if hose is None or (allowed is not None and hose != allowed):
            return  # authorized, but not for the hose in hand: nothing flows
        price = self.prices[hose]
        volume_preset = amount_preset = None
        if self.preset is not None:
            unit, value, _ = self.preset
            volume_preset, amount_preset = (value, None) if unit == "volume" else (None, value)
        limit = stop_limit(price, self.decimals, self.max_money, volume_preset, amount_preset)
        if limit.volume > self.max_money:  # the volume display is as wide as the money's
            cap = stop_limit(price, self.decimals, self.max_money, self.max_money)
            limit = StopLimit(cap.litres, cap.volume, cap.amount, False)
        meter = FlowMeter(self.flow_lpm, self.ramp_seconds, now)
        self.sale = _Sale(hose=hose, price=price)
        self._fill = _Fill(hose, price, meter, limit, self._totals[hose], now)
        self._transition(PumpEvent.MOTOR_STARTED)

    def _meter(self, fill: _Fill) -> None:
        volume = min(volume_raw(fill.meter.litres, self.decimals), fill.limit.volume)
        self.sale.volume = volume
        self.sale.money = (fill.limit.amount if fill.meter.litres >= fill.limit.litres
                           else amount_for(volume, fill.price, self.decimals))

    def _end_fill(self, event: PumpEvent, end: FillEnd, now: float) -> None:
        self._record_fill(end, now)
        self._transition(event)
        self.preset = None
        self._ended_at = now
        self._read_since_end = False

    def _record_fill(self, end: FillEnd, now: float) -> None:
        fill = self._fill
        assert fill is not None
        wrap = 10**self.mode.totals
        before = fill.totals_before
        after = ((before[0] + self.sale.volume) % wrap, (before[1] + self.sale.money) % wrap)
        self._totals[fill.hose] = after
        self._fill = None
        self.fills.append(FillRecord(
            seq=len(self.fills) + 1,
            pump=self.number,
            nozzle=fill.hose,
            grade=self.hoses[fill.hose],
            volume=self.sale.volume,
            amount=self.sale.money,
            price=fill.price,
            volume_total_before=before[0],
            volume_total_after=after[0],
            amount_total_before=before[1],
            amount_total_after=after[1],
            started_at=fill.started_at,
            ended_at=now,
            end=end,
            decimals=self.decimals,
        ))

    def _settle(self, now: float) -> None:
        if self.status not in (Status.END_A, Status.END_B):
            return
        ended = self._ended_at if self._ended_at is not None else now
        read = self._read_since_end or (not self.end.needs_read and now >= ended + self.end.hold)
        back = self.nozzle_out is None or not self.end.needs_hangup
        if read and back:
            self._transition(PumpEvent.SETTLED)
            self._must_rehang = self.nozzle_out is not None

