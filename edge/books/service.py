"""The books service: what the station's books need from the running forecourt.

It sits beside the pump controllers through three narrow seams and never reaches into them:

- the gate (`PumpController.gate`): every authorization asks it first. A nozzle whose tank is
  receiving a delivery is refused (卸油中); a sale on a credit account is checked against the
  account and its limits, and a use of the account is held for it (edge/store/accounts.py);
- the non-sale recorder (`PumpController.nonsale`): a fill whose authorization was asked for
  as non-sale (a self-check, own use, a transfer) is recorded with its totals here, never as a
  sale, and the pump goes on as after a sale;
- an observer (`PumpController.observers`): an account's sale is paid on account when
  recorded, and its held use released when the authorization ends without fuel.

It also follows the ledger's events: each `price.applied` (a pump programmed with a new price
set) stores the pump's nozzle totals at that moment (docs/books.md, "Price periods").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

from domain.accounts import AccountRefused, AccountUse, NozzlePaused
from domain.fuelling import FinishedSale
from domain.model import Authorization, Preset, Review, Sale, TotalsReading
from domain.retry import SALE_RECORD
from edge.config import StationConfig
from edge.config.books import BooksConfig
from edge.ledger import Ledger
from edge.pump import PumpController
from edge.store import StoreUnavailable
from edge.store.accounts import Accounts
from edge.store.books import BooksStore, NonSaleFill
from edge.store.deliveries import Deliveries
from edge.store.months import Months

log = logging.getLogger(__name__)

FIRST_LOOK_BACK = 10_000  # events
PRICE_POLL_SECONDS = 2.0  # how soon a price change's totals are kept (they are exact anyway)
_ENDED_WITHOUT_SALE = frozenset({"unused", "failed", "cancelled", "expired"})


@dataclass
class _Ticket:
    """A gate pass: what the pump authorizes with, and the account use it holds, if any."""

    service: BooksService
    preset: Preset | None
    use_id: str | None = None

    async def bind(self, auth: Authorization) -> None:
        if self.use_id is not None:
            await self.service.ledger.write(self.service.accounts.bind, self.use_id, auth.id)

    async def release(self) -> None:
        if self.use_id is not None:
            try:
                await self.service.ledger.write(self.service.accounts.release,
                                                use_id=self.use_id)
            except StoreUnavailable as exc:
                log.error("account use %s not released (%s): it counts until the day ends",
                          self.use_id, exc)


class BooksService:
    def __init__(self, config: StationConfig, ledger: Ledger, *, zone: tzinfo,
                 clock: Callable[[], datetime]) -> None:
        self.config = config
        self.settings: BooksConfig = config.books or BooksConfig()
        self.ledger = ledger
        self.zone = zone
        self._clock = clock
        self.store = BooksStore(ledger.store)
        self.deliveries = Deliveries(self.store)
        self.months = Months(self.store)
        self.accounts = Accounts(self.store)
        self.paused: dict[int, str] = {}  # nozzle -> the receipt that paused it
        self._nonsale: set[str] = set()  # authorization ids asked for as non-sale
        self.grade_names = {g.code: g.name for g in config.grades}

    def now(self) -> datetime:
        return self._clock().astimezone(self.zone)

    async def load(self) -> None:
        """Paused nozzles and pending non-sale requests come back from the ledger (a restart
        during a delivery keeps its nozzles paused). Before the pumps are read."""
        for receipt in (await self.ledger.read(self.deliveries.open_for_tanks)).values():
            for nozzle in receipt["paused_nozzles"]:
                self.paused[nozzle] = receipt["id"]
        active = await self.ledger.read(self.ledger.store.active_authorizations)
        for auth in active:
            if await self.ledger.read(self.store.has_nonsale_request, auth.id):
                self._nonsale.add(auth.id)

    def attach(self, pumps: Mapping[int, PumpController]) -> None:
        """Hooks into every pump. Without an await in between the forecourt's start and this,
        no pump has run a job yet: its start-up already sees the books."""
        for pump in pumps.values():
            pump.gate = self
            pump.nonsale = self
            pump.observers.append(self)

    # ----------------------------------------------------------------- the gate

    async def admit(self, pump: PumpController, logical: int, preset: Preset | None, *,
                    source: str, user: str | None, account: AccountUse | None) -> _Ticket:
        nozzle = pump.by_logical[logical]
        if nozzle.number in self.paused:
            raise NozzlePaused(f"{nozzle.number}号枪所在油罐正在卸油，验收完成前暂停加油 "
                               f"(nozzle {nozzle.number} is paused for delivery receipt "
                               f"{self.paused[nozzle.number]})")
        if account is None:
            return _Ticket(self, preset)
        price = pump.prices.price(nozzle.grade)
        try:
            use_id, allowed = await self.ledger.write(
                self.accounts.hold, day=self.now().date(), kind=account.kind,
                value=account.value, signer=account.signer, user=user, nozzle=nozzle.number,
                grade=nozzle.grade, grade_name=self.grade_names.get(nozzle.grade, nozzle.grade),
                price=price, preset=preset)
        except AccountRefused as exc:
            log.info("nozzle %d: account %s %s refused: %s", nozzle.number, account.kind,
                     account.value, exc.code)
            raise
        return _Ticket(self, allowed, use_id)

    # ----------------------------------------------------------------- non-sale fills

    def expect_nonsale(self, auth_id: str) -> None:
        self._nonsale.add(auth_id)

    def claims(self, auth: Authorization) -> bool:
        return auth.id in self._nonsale

    async def record(self, pump: PumpController, *, logical: int, filling: FinishedSale,
                     before: TotalsReading | None, after: TotalsReading) -> None:
        nozzle = pump.by_logical[logical]
        auth = pump.auth
        fill = NonSaleFill(
            pump=pump.number, nozzle=nozzle.number, logical=logical, grade=nozzle.grade,
            price=filling.price or pump.prices.price(nozzle.grade), volume=filling.volume,
            amount=filling.amount, started_at=pump.fill_started_at, ended_at=pump.now(),
            authorization_id=auth.id if auth else None, before=before, after=after)
        view, created = await SALE_RECORD.call_async(
            lambda: self.ledger.write(self.store.record_nonsale, fill), log,
            f"pump {pump.number}: recording a non-sale fill", retry_on=(StoreUnavailable,))
        if auth is not None:
            self._nonsale.discard(auth.id)
        if created:
            await self.ledger.publish_new()
            log.info("pump %d nozzle %d: non-sale fill %s (%s) of %s L recorded", pump.number,
                     nozzle.number, view["id"], view["kind"], view["volume"])

    # ----------------------------------------------------------------- pump observer

    def authorization_changed(self, pump: PumpController, auth: Authorization) -> None:
        if auth.state in _ENDED_WITHOUT_SALE:
            self._nonsale.discard(auth.id)
            pump.urgent(self._release(auth.id))

    async def _release(self, auth_id: str) -> None:
        try:
            await self.ledger.write(self.accounts.release, auth_id=auth_id)
        except StoreUnavailable as exc:
            log.error("account use of authorization %s not released: %s", auth_id, exc)

    def sale_recorded(self, pump: PumpController, sale: Sale) -> None:
        if sale.authorization_id is not None:
            pump.urgent(self._sold(sale))

    async def _sold(self, sale: Sale) -> None:
        assert sale.authorization_id is not None
        try:
            found = await self.ledger.write(self.accounts.sold, auth_id=sale.authorization_id,
                                            sale_id=sale.id, volume=sale.volume,
                                            amount=sale.amount)
        except StoreUnavailable as exc:
            log.error("sale %s on account not settled on the account yet: %s", sale.id, exc)
            return
        if found is not None:
            await self.ledger.publish_new()
            log.info("sale %s on account %s, signed by %s", sale.id, found["account_id"],
                     found["signer"])

    def review_opened(self, pump: PumpController, review: Review) -> None:
        pass

    # ----------------------------------------------------------------- price periods

    async def run(self, poll: float = PRICE_POLL_SECONDS) -> None:
        """Runs for the daemon's life: nozzle totals at every applied price change, read from
        the ledger's events (from where the books left off, so a restart misses none)."""
        after = await self.ledger.read(self.store.price_totals_mark)
        if after is None:
            # The books' first start on this ledger: the recent price changes (the pumps'
            # first programming included), not years of history.
            after = max(0, await self.ledger.read(self.ledger.store.last_seq) - FIRST_LOOK_BACK)
        while True:
            events = await self.ledger.read(self.ledger.store.events_since, after, 500)
            for event in events:
                if event.type == "price.applied":
                    await self._price_applied(event.seq, event.ts, event.data)
            if events:
                after = events[-1].seq
            if len(events) < 500:
                await asyncio.sleep(poll)

    async def _price_applied(self, seq: int, at: datetime, data: Mapping[str, Any]) -> None:
        prices = data.get("prices") or {}
        try:
            pump_cfg = self.config.pump(int(str(data.get("pump"))))
        except (KeyError, TypeError, ValueError):
            return
        nozzles = {n.number: (n.grade, Decimal(str(prices.get(n.grade, "0"))))
                   for n in pump_cfg.nozzles}
        stored = await self.ledger.write(
            self.store.record_price_totals, seq=seq, price_set_id=str(data.get("price_set_id")),
            pump=pump_cfg.number, nozzles=nozzles, at=at)
        log.debug("pump %d: totals of %d nozzles kept at price set %s", pump_cfg.number, stored,
                  data.get("price_set_id"))
