"""What the simulator records: completed fillings, the ground truth a controller's sales are
checked against, and the error for things nobody can do at a real dispenser."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from simulator.metering import Decimals, raw_to_decimal

__all__ = ["FillEnd", "FillRecord", "SimulationError"]


class SimulationError(Exception):
    """Something a person cannot do at a real dispenser (e.g. lift a second nozzle)."""


class FillEnd(Enum):
    """Why a filling ended."""

    NOZZLE_IN = "nozzle_in"
    PRESET = "preset"
    MAX_AMOUNT = "max_amount"
    STOP = "stop"
    SWITCH_OFF = "switch_off"
    POWER_FAILURE = "power_failure"


@dataclass(frozen=True)
class FillRecord:
    """One completed filling: what really left the nozzle.

    Volume, amount, price and totals are raw pump units (see `decimals`); the `*_decimal`
    properties give litres, yuan and yuan per litre. Times are the simulator clock's `now`.
    """

    seq: int  # 1, 2, ... per pump
    pump: int
    nozzle: int
    grade: int
    volume: int
    amount: int
    price: int
    volume_total_before: int
    volume_total_after: int
    amount_total_before: int
    amount_total_after: int
    started_at: float
    ended_at: float
    end: FillEnd
    decimals: Decimals

    @property
    def volume_decimal(self) -> Decimal:
        return raw_to_decimal(self.volume, self.decimals.volume)

    @property
    def amount_decimal(self) -> Decimal:
        return raw_to_decimal(self.amount, self.decimals.amount)

    @property
    def price_decimal(self) -> Decimal:
        return raw_to_decimal(self.price, self.decimals.price)
