from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from edge.store import Store

from .conftest import T0, FakeClock, peek


def test_no_prices_before_seeding(store: Store) -> None:
    assert store.current_price_set() == (None, {})


def test_config_prices_are_seeded_once_and_new_grades_added(store: Store, db_path: Path) -> None:
    store.seed_prices({"92": Decimal("7.50"), "95": Decimal("8.02")})
    assert store.current_price_set() == ("config", {"92": Decimal("7.50"), "95": Decimal("8.02")})
    store.apply_price_set(
        "ps-1", {"92": Decimal("7.62")}, source="cloud", effective_at=T0 + timedelta(hours=1)
    )
    # A restart with the old config and a new grade: the cloud's price stays.
    store.seed_prices({"92": Decimal("7.50"), "95": Decimal("8.02"), "0": Decimal("7.20")})
    assert store.current_price_set() == (
        "ps-1",
        {"0": Decimal("7.20"), "92": Decimal("7.62"), "95": Decimal("8.02")},
    )


def test_price_changes_keep_history(store: Store, db_path: Path, clock: FakeClock) -> None:
    store.seed_prices({"92": Decimal("7.50")})
    clock.advance(timedelta(minutes=5))
    store.apply_price_set(
        "ps-1", {"92": Decimal("7.62"), "95": Decimal("8.10")}, source="cloud", effective_at=T0
    )
    rows = peek(
        db_path,
        "SELECT price_set_id, grade, old_price, new_price, source, applied_at "
        "FROM price_changes ORDER BY id",
    )
    assert rows == [
        ("config", "92", None, "7.50", "config", "2026-11-22T01:15:00.000000+00:00"),
        ("ps-1", "92", "7.50", "7.62", "cloud", "2026-11-22T01:20:00.000000+00:00"),
        ("ps-1", "95", None, "8.10", "cloud", "2026-11-22T01:20:00.000000+00:00"),
    ]


def test_bad_prices_change_nothing(store: Store) -> None:
    store.seed_prices({"92": Decimal("7.50")})
    with pytest.raises(ValueError):
        store.apply_price_set(
            "ps-1", {"92": Decimal("7.62"), "95": Decimal(0)}, source="cloud", effective_at=T0
        )
    with pytest.raises(ValueError):
        store.apply_price_set("ps-2", {}, source="cloud", effective_at=T0)
    assert store.current_price_set() == ("config", {"92": Decimal("7.50")})
