"""Conversions between the pump's raw integers and Decimal quantities.

Decimal points are not on the DART wire (PROTOCOLS.md): ``1175`` is 11.75 or 1.175 depending on
the pump's configured decimals, so every conversion takes the pump's decimals explicitly.
"""

from __future__ import annotations

from decimal import Decimal

MAX_RAW_4 = 99_999_999  # 4 BCD bytes (CD3/CD4, DC2)
MAX_RAW_3 = 999_999  # 3 BCD bytes (prices)


class UnitError(ValueError):
    """A quantity the pump cannot represent (too many decimals, too large, not positive)."""


def from_raw(raw: int, decimals: int) -> Decimal:
    return Decimal(raw).scaleb(-decimals)


def to_raw(value: Decimal, decimals: int, *, maximum: int = MAX_RAW_4) -> int:
    scaled = value.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise UnitError(f"{value} has more than {decimals} decimal places")
    raw = int(scaled)
    if raw <= 0:
        raise UnitError(f"{value} must be greater than zero")
    if raw > maximum:
        raise UnitError(f"{value} is larger than the pump can take")
    return raw


def step(decimals: int) -> Decimal:
    """The smallest quantity at these decimals: 0.01 for 2."""
    return Decimal(1).scaleb(-decimals)
