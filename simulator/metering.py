"""Metering for the simulated pump: pump units, money arithmetic and the flow of one filling.

DART carries no decimal point (PROTOCOLS.md, "Decimal points are not on the wire"): volume, amount
and unit price are integers in the pump's own units, fixed by its configured decimals. Everything
here works on those raw integers, with `Decimal` wherever a fraction appears; no float touches a
volume or an amount. Time is the only float, and it is converted exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

__all__ = [
    "DEFAULT_DECIMALS",
    "MAX_RAW",
    "Decimals",
    "FlowMeter",
    "StopLimit",
    "amount_for",
    "litres_for_amount",
    "raw_to_decimal",
    "rescale",
    "stop_limit",
    "volume_raw",
]

# DC2 carries volume and amount as 4 bytes of packed BCD: eight digits.
MAX_RAW = 99_999_999

_ONE = Decimal(1)
_SIXTY = Decimal(60)


@dataclass(frozen=True)
class Decimals:
    """Where the pump puts the decimal point; 2/2/2 means centilitres, fen and fen per litre."""

    volume: int = 2
    amount: int = 2
    price: int = 2

    def __post_init__(self) -> None:
        for name in ("volume", "amount", "price"):
            value = getattr(self, name)
            if not 0 <= value <= 3:
                raise ValueError(f"{name} decimals must be 0..3, not {value}")


DEFAULT_DECIMALS = Decimals()


def raw_to_decimal(raw: int, places: int) -> Decimal:
    """`1333` with 2 places is `Decimal("13.33")`."""
    return Decimal(raw).scaleb(-places)


def rescale(raw: int, places: int, new_places: int) -> int:
    """`raw` at `places` decimals expressed at `new_places`, truncated: 1333 (2) is 13330 (3)."""
    factor: int = 10 ** abs(new_places - places)
    return raw * factor if new_places >= places else raw // factor


def amount_for(volume: int, price: int, decimals: Decimals) -> int:
    """Amount of `volume` at unit `price`, rounded half-up to the amount step (all raw)."""
    shift = decimals.amount - decimals.volume - decimals.price
    exact = (Decimal(volume) * Decimal(price)).scaleb(shift)
    return int(exact.quantize(_ONE, rounding=ROUND_HALF_UP))


def litres_for_amount(amount: int, price: int, decimals: Decimals) -> Decimal:
    """Litres that cost exactly `amount` at `price` (raw in, litres out); price must be > 0."""
    return raw_to_decimal(amount, decimals.amount) / raw_to_decimal(price, decimals.price)


def volume_raw(litres: Decimal, decimals: Decimals) -> int:
    """What the meter shows for `litres`: truncated to the volume step, as a pulse counter does."""
    return int(litres.scaleb(decimals.volume).to_integral_value(rounding=ROUND_FLOOR))


def _seconds(now: float) -> Decimal:
    # Decimal(float) is exact, so integrating over float timestamps loses nothing on the way in.
    return Decimal(now)


class FlowMeter:
    """Litres delivered through one nozzle, integrated over time.

    A real dispenser opens its valve slowly: the flow rises linearly from 0 to `rate` over
    `ramp` seconds after each start (or resume), then stays at `rate`. Given the cumulative
    delivery since the flow started, G(x) = F x^2 / 2R for x <= R and F (x - R/2) after it, the
    litres between two ticks are G(b) - G(a), whatever the tick spacing, and the moment a limit is
    crossed can be solved exactly instead of being rounded to the next tick.
    """

    def __init__(self, rate_lpm: Decimal, ramp: Decimal, now: float) -> None:
        if rate_lpm < 0 or ramp < 0:
            raise ValueError("flow rate and ramp must not be negative")
        self.litres = Decimal(0)
        self._rate = rate_lpm / _SIXTY  # litres per second
        self._ramp = ramp
        self._origin: Decimal | None = _seconds(now)  # None while the valve is closed
        self._last = _seconds(now)

    @property
    def flowing(self) -> bool:
        return self._origin is not None

    def set_rate(self, rate_lpm: Decimal, now: float) -> None:
        """Change the flow rate from `now` on (the caller has advanced the meter to `now`)."""
        if rate_lpm < 0:
            raise ValueError("flow rate must not be negative")
        self.advance(now)
        self._rate = rate_lpm / _SIXTY

    def close(self, now: float) -> None:
        """Valve shut (suspend): no more flow until `open`."""
        self.advance(now)
        self._origin = None

    def open(self, now: float) -> None:
        """Valve reopened: the slow start begins again."""
        self.advance(now)
        self._origin = _seconds(now)

    def advance(self, now: float, limit: Decimal | None = None) -> float | None:
        """Deliver up to `now`; stop at `limit` litres and return when it was reached, else None."""
        end = _seconds(now)
        start = self._last
        if end <= start:
            return None
        self._last = end
        if self._origin is None:
            return None
        origin = self._origin
        before = self._cumulative(start - origin)
        after = self._cumulative(end - origin)
        if limit is not None and self.litres + (after - before) >= limit:
            needed = limit - self.litres + before
            # A limit already behind us (e.g. a zero preset) is reached at the start of the step.
            reached = start if needed <= before else origin + self._inverse(needed)
            self.litres = limit
            self._origin = None
            self._last = reached
            return float(reached)
        self.litres += after - before
        return None

    def _cumulative(self, elapsed: Decimal) -> Decimal:
        if elapsed <= 0:
            return Decimal(0)
        if self._ramp == 0:
            return self._rate * elapsed
        if elapsed <= self._ramp:
            return self._rate * elapsed * elapsed / (2 * self._ramp)
        return self._rate * (elapsed - self._ramp / 2)

    def _inverse(self, cumulative: Decimal) -> Decimal:
        if self._ramp == 0:
            return cumulative / self._rate
        if cumulative <= self._rate * self._ramp / 2:
            return (2 * self._ramp * cumulative / self._rate).sqrt()
        return cumulative / self._rate + self._ramp / 2


@dataclass(frozen=True)
class StopLimit:
    """Where a filling stops: after `litres`, showing exactly `volume` and `amount` (raw)."""

    litres: Decimal
    volume: int
    amount: int
    preset: bool  # False: the pump's maximum amount (or a full meter), not the customer's preset


def stop_limit(
    price: int,
    decimals: Decimals,
    max_amount: int,
    preset_volume: int | None = None,
    preset_amount: int | None = None,
) -> StopLimit:
    """The first limit a filling at `price` reaches: preset volume or amount, maximum amount,
    or the eight digits of the display."""
    d = decimals
    full = StopLimit(
        raw_to_decimal(MAX_RAW, d.volume), MAX_RAW, amount_for(MAX_RAW, price, d), False
    )
    candidates = [full]
    if preset_volume is not None:
        litres = raw_to_decimal(preset_volume, d.volume)
        candidates.append(
            StopLimit(litres, preset_volume, amount_for(preset_volume, price, d), True)
        )
    for amount, preset in ((preset_amount, True), (max_amount, False)):
        if amount is not None and price > 0:
            litres = litres_for_amount(amount, price, d)
            # The valve shuts at the amount; the meter shows the volume truncated to its step,
            # so 100.00 at 7.50 ends as 13.33 L for exactly 100.00.
            candidates.append(StopLimit(litres, volume_raw(litres, d), amount, preset))
    return min(candidates, key=lambda limit: (limit.litres, not limit.preset))
