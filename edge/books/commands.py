"""The cloud's commands for credit accounts (docs/cloud-commands.md): `account.upsert` creates
or changes an account, `account.block` blocks or unblocks one. Signed and checked by the inbox
like every command; refusals are `CommandError`s."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from edge.books.service import BooksService
from edge.store.accounts import Limits
from edge.store.books import BooksError
from sync.inbox import CommandError, Handler
from sync.schemas import CommandData

_ID = r"^[A-Za-z0-9_-]{1,64}$"
_QUANTITY = r"^[0-9]{1,7}(\.[0-9]{1,3})?$"
_Name = Annotated[str, Field(min_length=1, max_length=64)]


class AccountLimits(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    grades: list[Annotated[str, Field(min_length=1, max_length=16)]] | None = None
    amount: Annotated[str, Field(pattern=_QUANTITY)] | None = None
    volume: Annotated[str, Field(pattern=_QUANTITY)] | None = None
    fills: Annotated[int, Field(ge=1, le=1000)] | None = None


class AccountUpsert(CommandData):
    """`account.upsert`: the account as the cloud keeps it (its cards and plates replace the
    station's)."""

    account_id: Annotated[str, Field(pattern=_ID)]
    name: _Name
    cards: list[_Name] = Field(default_factory=list, max_length=100)
    plates: list[_Name] = Field(default_factory=list, max_length=100)
    limits: AccountLimits = AccountLimits()


class AccountBlock(CommandData):
    """`account.block`: block (or, with `blocked: false`, unblock) an account."""

    account_id: Annotated[str, Field(pattern=_ID)]
    blocked: bool = True
    reason: Annotated[str, Field(min_length=1, max_length=500)] | None = None


ACCOUNT_SCHEMAS: dict[str, type[CommandData]] = {
    "account.upsert": AccountUpsert,
    "account.block": AccountBlock,
}


def account_handlers(books: BooksService) -> dict[str, Handler]:
    async def upsert(data: AccountUpsert) -> dict[str, Any]:
        limits = data.limits
        try:
            saved = await books.ledger.write(
                books.accounts.upsert, account_id=data.account_id, name=data.name,
                cards=data.cards, plates=data.plates, source="cloud",
                limits=Limits(grades=None if limits.grades is None else tuple(limits.grades),
                              amount=None if limits.amount is None else Decimal(limits.amount),
                              volume=None if limits.volume is None else Decimal(limits.volume),
                              fills=limits.fills))
        except BooksError as exc:
            raise CommandError(exc.code, exc.message) from None
        await books.ledger.publish_new()
        return {"account_id": saved["id"], "status": saved["status"]}

    async def block(data: AccountBlock) -> dict[str, Any]:
        if data.blocked and data.reason is None:
            raise CommandError("invalid_data", "a block needs a reason")
        try:
            saved = await books.ledger.write(books.accounts.set_blocked, data.account_id,
                                             blocked=data.blocked, reason=data.reason)
        except BooksError as exc:
            raise CommandError(exc.code, exc.message) from None
        await books.ledger.publish_new()
        return {"account_id": saved["id"], "status": saved["status"]}

    return {"account.upsert": upsert, "account.block": block}
