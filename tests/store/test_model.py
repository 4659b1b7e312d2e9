from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from domain.model import (
    Payment,
    Preset,
    Sale,
    decimal_str,
    money,
    quantity_str,
    rfc3339,
    sale_to_api,
)

CST = timezone(timedelta(hours=8))


def make_sale(**overrides: object) -> Sale:
    fields: dict[str, object] = {
        "id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        "seq": 42,
        "pump": 1,
        "nozzle": 3,
        "logical": 2,
        "grade": "92",
        "price": Decimal("7.5"),
        "volume": Decimal("40"),
        "amount": Decimal("300"),
        "price_set_id": "ps-7",
        "started_at": datetime(2026, 11, 22, 9, 13, tzinfo=CST),
        "ended_at": datetime(2026, 11, 22, 9, 15, tzinfo=CST),
        "authorization_id": "auth-1",
        "order_id": None,
        "recovered": False,
        "totals_volume_before": Decimal("12345.670"),
        "totals_volume_after": Decimal("12385.670"),
        "totals_amount_before": Decimal("92592.5"),
        "totals_amount_after": Decimal("92892.5"),
        "payments": (),
    }
    fields.update(overrides)
    return Sale(**fields)  # type: ignore[arg-type]


def test_money_rounds_half_up() -> None:
    assert money(Decimal("7.625")) == Decimal("7.63")
    assert money(Decimal("7.624")) == Decimal("7.62")
    assert money("2.5", 0) == Decimal("3")
    assert money(3) == Decimal("3.00")
    assert str(money("0.005")) == "0.01"


def test_money_refuses_floats_and_garbage() -> None:
    with pytest.raises(TypeError):
        money(7.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        money("seven")
    with pytest.raises(ValueError):
        money("NaN")


def test_decimal_str_has_two_places_and_no_exponent() -> None:
    assert decimal_str(Decimal("300")) == "300.00"
    assert decimal_str(Decimal("1E+3")) == "1000.00"
    assert decimal_str(Decimal("40.005")) == "40.01"
    assert decimal_str(Decimal("0.1"), 3) == "0.100"


def test_quantity_str_keeps_the_pumps_decimals() -> None:
    assert quantity_str(Decimal("2.700")) == "2.700"  # a pump counting millilitres
    assert quantity_str(Decimal("1.539")) == "1.539"
    assert quantity_str(Decimal("40")) == "40.00"
    assert quantity_str(Decimal("40.5")) == "40.50"
    assert quantity_str(Decimal("12.34")) == "12.34"


def test_a_three_decimal_sale_shows_three_decimals() -> None:
    api = sale_to_api(make_sale(volume=Decimal("2.700"), price=Decimal("1.539")))
    assert (api["volume"], api["price"]) == ("2.700", "1.539")


def test_rfc3339_keeps_the_offset_and_refuses_naive() -> None:
    assert rfc3339(datetime(2026, 11, 22, 9, 15, tzinfo=CST)) == "2026-11-22T09:15:00+08:00"
    assert rfc3339(datetime(2026, 11, 22, 1, 15, tzinfo=UTC)) == "2026-11-22T01:15:00+00:00"
    with pytest.raises(ValueError):
        rfc3339(datetime(2026, 11, 22, 9, 15))


def test_preset_must_be_positive_amount_or_volume() -> None:
    assert Preset("amount", Decimal("100.00")).value == Decimal("100.00")
    with pytest.raises(ValueError):
        Preset("amount", Decimal(0))
    with pytest.raises(ValueError):
        Preset("litres", Decimal(20))  # type: ignore[arg-type]


def test_sale_to_api_is_the_contract_shape() -> None:
    payment = Payment(
        "pay-1", "s", "wechat", Decimal("100"), "li", datetime(2026, 11, 22, 1, 16, tzinfo=UTC)
    )
    api = sale_to_api(make_sale(payments=(payment,)))
    assert api == {
        "id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        "seq": 42,
        "number": None,
        "pump": 1,
        "nozzle": 3,
        "grade": "92",
        "volume": "40.00",
        "amount": "300.00",
        "price": "7.50",
        "started_at": "2026-11-22T09:13:00+08:00",
        "ended_at": "2026-11-22T09:15:00+08:00",
        "order_id": None,
        "paid": False,
        "payments": [
            {
                "id": "pay-1",
                "method": "wechat",
                "amount": "100.00",
                "user": "li",
                "created_at": "2026-11-22T01:16:00+00:00",
            }
        ],
        "recovered": False,
        "authorization_id": "auth-1",
        "price_set_id": "ps-7",
        "flags": [],
        # Totalizers as read, with the pump's own decimals.
        "totals": {
            "volume_before": "12345.670",
            "volume_after": "12385.670",
            "amount_before": "92592.5",
            "amount_after": "92892.5",
        },
    }
    json.dumps(api)  # JSON-native all the way down


def test_sale_to_api_without_start_or_totals_before() -> None:
    api = sale_to_api(make_sale(started_at=None, totals_volume_before=None,
                                totals_amount_before=None))  # fmt: skip
    assert api["started_at"] is None
    assert api["totals"]["volume_before"] is None
    assert api["totals"]["amount_before"] is None


def test_paid_is_the_sum_of_payments_against_the_amount() -> None:
    at = datetime(2026, 11, 22, tzinfo=UTC)
    part = Payment("p1", "s", "cash", Decimal("200.00"), None, at)
    rest = Payment("p2", "s", "card", Decimal("100.00"), None, at)
    assert not make_sale().paid
    assert not make_sale(payments=(part,)).paid
    assert make_sale(payments=(part,)).due == Decimal("100.00")
    assert make_sale(payments=(part, rest)).paid
    assert make_sale(amount=Decimal(0)).paid
