"""The `data` of each cloud command, checked strictly before anything runs.

Strict on purpose: a command moves fuel or money, so an unknown key, a number where a decimal
string belongs, or a time without an offset is refused (`invalid_data`) rather than guessed at.
Money, volumes and prices are JSON strings ("300.00"): a JSON number is a binary float on most
cloud stacks, and 7.1 as a float is not 7.10 yuan. Accepted values come out as `Decimal`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    model_validator,
)

from domain.accounts import AccountUse
from domain.bounds import INT64, SEQ
from domain.model import Preset

__all__ = [
    "SCHEMAS",
    "CommandData",
    "DataRequest",
    "OrderCancel",
    "OrderCreate",
    "PresetData",
    "PriceScheduleData",
    "parse_rfc3339",
]

# The pump wire format bounds these (DART): an amount or volume is 4 BCD bytes (999999.99 at
# most), a price 3 BCD bytes (9999.99).
_MONEY = re.compile(r"(0|[1-9][0-9]{0,5})(\.[0-9]{1,2})?")
_PRICE = re.compile(r"(0|[1-9][0-9]{0,3})\.[0-9]{2,3}")
# RFC 3339 section 5.6 date-time: the offset is required ("Z" or +hh:mm).
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _decimal(pattern: re.Pattern[str], example: str) -> Any:
    def parse(value: object) -> Decimal:
        if not isinstance(value, str):
            raise ValueError(f'must be a decimal string such as "{example}", not a JSON number')
        if not pattern.fullmatch(value):
            raise ValueError(f'{value!r} is not a decimal string such as "{example}"')
        number = Decimal(value)
        if number <= 0:
            raise ValueError("must be more than zero")
        return number

    return BeforeValidator(parse)


def parse_rfc3339(value: object) -> datetime:
    """An RFC 3339 date-time with its offset ("2026-11-22T09:15:00+08:00"); ValueError else."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError(f"must be an RFC 3339 time with an offset, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.upper())
    except ValueError:
        raise ValueError(f"not a real date and time: {value!r}") from None
    assert parsed.tzinfo is not None
    try:
        parsed.astimezone(UTC)  # 9999-12-31T23:59:59-01:00 has no UTC time to store
    except OverflowError:
        raise ValueError(f"out of range: {value!r}") from None
    return parsed


# Money and volumes: up to 2 decimals (CONTRACT: "300.00"). Prices: 2 or 3 decimals, as a pump
# may price in tenths of a fen.
Money = Annotated[Decimal, _decimal(_MONEY, "300.00")]
Price = Annotated[Decimal, _decimal(_PRICE, "7.50")]
Time = Annotated[datetime, BeforeValidator(parse_rfc3339)]
# Ids chosen by the cloud end up in events, logs and file names: keep them plain.
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
PriceSetId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
GradeCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,16}$")]


def _not_empty(prices: dict[str, Decimal]) -> dict[str, Decimal]:
    if not prices:
        raise ValueError("needs at least one grade")
    return prices


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class CommandData(_Strict):
    """What every command's data carries: until when it may still be run."""

    expires_at: Time


class PresetData(_Strict):
    amount: Money | None = None
    volume: Money | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> PresetData:
        if (self.amount is None) == (self.volume is None):
            raise ValueError("give exactly one of amount or volume")
        return self

    def to_preset(self) -> Preset:
        if self.amount is not None:
            return Preset("amount", self.amount)
        assert self.volume is not None
        return Preset("volume", self.volume)


class AccountData(_Strict):
    """A fleet's credit account (挂账) an app order fuels on: its limits are checked at the
    pump like an attendant's sale on account (docs/books.md)."""

    kind: Literal["card", "plate"]
    value: Annotated[str, Field(min_length=1, max_length=32)]
    signer: Annotated[str, Field(min_length=1, max_length=64)]

    def to_use(self) -> AccountUse:
        return AccountUse(self.kind, self.value, self.signer)


class OrderCreate(CommandData):
    """`order.create`: an app order, prepaid; the station checks and authorizes it."""

    order_id: Identifier
    nozzle: Annotated[int, Field(ge=1, le=999)]
    grade: GradeCode
    price: Price
    preset: PresetData
    paid: Money
    account: AccountData | None = None


class OrderCancel(CommandData):
    """`order.cancel`: only before fuelling starts."""

    order_id: Identifier


# Not "PriceSchedule": that is the stored record (domain.model), made from this once checked.
class PriceScheduleData(CommandData):
    """`price.schedule`: these prices from `effective_at` (grades not named keep theirs)."""

    price_set_id: PriceSetId
    effective_at: Time
    prices: Annotated[dict[GradeCode, Price], Field(max_length=64), AfterValidator(_not_empty)]


def _bounded_integers(value: JsonValue, where: str = "args") -> JsonValue:
    """Every integer in `value`, however deep, within SQLite's INTEGER: an argument reaches the
    store as it is, and 2**63 there is an OverflowError, not an answer (domain/bounds.py)."""
    if isinstance(value, int) and not isinstance(value, bool):
        INT64.check(value, where)
    elif isinstance(value, dict):
        for key, item in value.items():
            _bounded_integers(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _bounded_integers(item, f"{where}[{index}]")
    return value


def _bounded_args(args: dict[str, JsonValue]) -> dict[str, JsonValue]:
    _bounded_integers(args)
    return args


class DataRequest(CommandData):
    """`data.request`: the cloud pulls station data; anything else it needs goes in `args`."""

    what: Literal["sales", "shift", "tanks", "totals"]
    since_seq: Annotated[int, Field(ge=SEQ.low, le=SEQ.high)] | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 100
    args: Annotated[dict[str, JsonValue], AfterValidator(_bounded_args)] = Field(
        default_factory=dict)


SCHEMAS: dict[str, type[CommandData]] = {
    "order.create": OrderCreate,
    "order.cancel": OrderCancel,
    "price.schedule": PriceScheduleData,
    "data.request": DataRequest,
}
