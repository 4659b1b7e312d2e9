from __future__ import annotations

import tempfile
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.ids import IdMaker
from edge.store import Store
from edge.store.codec import dec_key

from .conftest import T0, FakeClock, Pump

decimals = st.decimals(
    allow_nan=False, allow_infinity=False, min_value=0, max_value=10**9, places=3
)


@given(decimals, decimals)
def test_fill_keys_are_equal_exactly_when_the_numbers_are(a: Decimal, b: Decimal) -> None:
    assert (dec_key(a) == dec_key(b)) == (a == b)
    assert dec_key(a) == dec_key(a.quantize(Decimal("0.00001")))  # trailing zeros added


def test_ids_are_uuid7_unique_and_sorted_even_within_a_millisecond() -> None:
    maker = IdMaker()
    made = [maker.new(T0) for _ in range(10_000)]
    made += [maker.new(T0 + timedelta(seconds=1)) for _ in range(10)]
    made += [maker.new(T0 - timedelta(seconds=5)) for _ in range(10)]  # clock stepped back
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert {UUID(i).version for i in made} == {7}


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 3), st.booleans()), max_size=25))
def test_recorded_fills_are_each_one_sale_with_gapless_seqs(
    steps: list[tuple[int, bool]],
) -> None:
    """Fills on three nozzles, each maybe recorded twice: one sale per fill, seq 1..n."""
    clock = FakeClock()
    pumps = {n: Pump(pump=1, nozzle=n, clock=clock) for n in (1, 2, 3)}
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "s.db", clock=clock) as s:
        fills = []
        for nozzle, repeat in steps:
            new = pumps[nozzle].fill("20.00", "150.00")
            fills.append(s.record_sale(new)[0])
            if repeat:
                # The same fill again, its totalizer written with another exponent.
                volume = new.totals_after.volume_total.quantize(Decimal("0.001"))
                again = replace(new.totals_after, volume_total=volume)
                assert s.record_sale(replace(new, totals_after=again)) == (fills[-1], False)
        assert [sale.seq for sale in fills] == list(range(1, len(steps) + 1))
        assert [e.seq for e in s.events_since(0, limit=100)] == list(range(1, len(steps) + 1))
        assert s.sales(limit=100) == fills
