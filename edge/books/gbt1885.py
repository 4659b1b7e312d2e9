"""Standard volume at 20 °C (标准体积), as GB/T 1885-1998 "石油计量表" computes it for refined
products.

GB/T 1885-1998 is the Chinese adoption of ISO 91-2:1991, whose 20 °C tables (59B/60B for
refined products) are derived from the 1980 petroleum measurement tables at 15 °C (ASTM
D1250-80 / API MPMS 11.1, Table 54B). No maintained Python library implements them (PyPI has
none; docs/books.md says what was looked for), so this module implements the published
procedure, in Decimal, and nothing else:

1. The thermal expansion coefficient at 15 °C from the density at 15 °C, ρ15 in kg/m³, by
   product range (Table 54B, "generalized products")::

       α15 = K0 / ρ15² + K1 / ρ15                     (gasolines, jet fuels, fuel oils)
       α15 = A + B / ρ15²                             (the transition zone)

2. The correction of a volume at t °C to 15 °C::

       CTL15(t) = exp(-α15 · Δt · (1 + 0.8 · α15 · Δt)),   Δt = t - 15

3. For a base of 20 °C (ISO 91-2): ρ15 is the density whose CTL15(20) takes it to the given
   ρ20 (ρ20 = ρ15 · CTL15(20), solved by iteration), and

       VCF20(t) = CTL15(t) / CTL15(20)

   so that VCF20(20) = 1 exactly. The standard volume is V20 = Vt · VCF20(t).

The printed tables round VCF to four decimals (表60B); this module does the same, and
computes with 28 significant digits before that.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

__all__ = ["DensityOutOfRange", "Product", "alpha15", "ctl15", "density15", "standard_volume",
           "vcf20"]

_Q4 = Decimal("0.0001")
_CONVERGED = Decimal("0.000001")  # kg/m³: far below the tables' 0.1 kg/m³ steps


class DensityOutOfRange(ValueError):
    """A density the refined-products tables do not cover (653..1075 kg/m³ at 15 °C)."""


@dataclass(frozen=True)
class Product:
    """One density range of Table 54B and its constants (ASTM D1250-80)."""

    name: str
    low: Decimal  # ρ15, kg/m³, inclusive
    high: Decimal  # exclusive (the last range: inclusive)
    k0: Decimal = Decimal(0)
    k1: Decimal = Decimal(0)
    a: Decimal | None = None  # the transition zone's α15 = A + B / ρ15²
    b: Decimal | None = None


PRODUCTS = (
    Product("gasoline", Decimal("653.0"), Decimal("770.5"), Decimal("346.4228"),
            Decimal("0.4388")),
    Product("transition", Decimal("770.5"), Decimal("778.0"), a=Decimal("-0.00336312"),
            b=Decimal("2680.32")),
    Product("jet", Decimal("778.0"), Decimal("839.0"), Decimal("594.5418"), Decimal(0)),
    Product("fuel_oil", Decimal("839.0"), Decimal("1075.0"), Decimal("186.9696"),
            Decimal("0.4862")),
)


def product(rho15: Decimal) -> Product:
    for found in PRODUCTS:
        if found.low <= rho15 < found.high or (found is PRODUCTS[-1] and rho15 == found.high):
            return found
    raise DensityOutOfRange(f"a density of {rho15} kg/m³ at 15 °C is outside the tables "
                            f"({PRODUCTS[0].low}..{PRODUCTS[-1].high})")


def alpha15(rho15: Decimal) -> Decimal:
    """The thermal expansion coefficient at 15 °C (per °C)."""
    found = product(rho15)
    with localcontext() as ctx:
        ctx.prec = 28
        if found.a is not None and found.b is not None:
            return found.a + found.b / (rho15 * rho15)
        return found.k0 / (rho15 * rho15) + found.k1 / rho15


def ctl15(t: Decimal, rho15: Decimal) -> Decimal:
    """The factor that takes a volume at t °C to 15 °C (unrounded)."""
    alpha = alpha15(rho15)
    with localcontext() as ctx:
        ctx.prec = 28
        dt = t - 15
        return (-alpha * dt * (1 + Decimal("0.8") * alpha * dt)).exp()


def density15(rho20: Decimal) -> Decimal:
    """ρ15 from ρ20 (kg/m³): the density that CTL15(20) takes to ρ20."""
    if not (Decimal(600) <= rho20 <= Decimal(1100)):
        raise DensityOutOfRange(f"a density of {rho20} kg/m³ at 20 °C is not a fuel's")
    with localcontext() as ctx:
        ctx.prec = 28
        rho15 = rho20
        for _ in range(50):
            following = rho20 / ctl15(Decimal(20), rho15)
            if abs(following - rho15) < _CONVERGED:
                return following
            rho15 = following
    return rho15


def vcf20(t: Decimal, rho20: Decimal) -> Decimal:
    """The volume correction factor to 20 °C (表60B), four decimals."""
    if not (Decimal(-50) <= t <= Decimal(100)):
        raise ValueError(f"a product temperature of {t} °C is not one a tank holds")
    rho15 = density15(rho20)
    with localcontext() as ctx:
        ctx.prec = 28
        factor = ctl15(t, rho15) / ctl15(Decimal(20), rho15)
    return factor.quantize(_Q4, rounding=ROUND_HALF_UP)


def standard_volume(volume: Decimal, t: Decimal, rho20: Decimal,
                    places: int = 2) -> Decimal:
    """V20 = Vt · VCF20(t), in litres with `places` decimals."""
    return (volume * vcf20(t, rho20)).quantize(Decimal(1).scaleb(-places),
                                               rounding=ROUND_HALF_UP)
