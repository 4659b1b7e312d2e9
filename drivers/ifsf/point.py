"""An IFSF dispenser side as a protocol-neutral fuelling point (``domain.fuelling``).

A station pump stands on one IFSF fuelling point (a Censtar TQC node has up to 4) or, on a DIT
dispenser, on one node per nozzle; each is a ``Member`` followed by an ``FpFollower``. Everything
IFSF stops here: the nine states become ``PointState``s (a DIT pump shows its busiest node's),
status and running transaction messages become nozzle and figure events, the transaction buffer
gives the finished sales with the pump's own key, error codes become ``AlarmKind``s.

The sale, the IFSF way (PROTOCOLS.md, IFSF "A sale as PetroChina's controller runs it"):
``authorize`` writes the preset, the nozzle mask, our controller id and Release_FP in one
message and returns once the point shows it released; the point's messages tell the rest;
``read_sales`` reads the unpaid transactions and ``clear_sale`` writes Clear_Transaction once
the sale is durable. The messages of a pump are handled in order by its ``run`` task
(``drivers.ifsf.events``), which may ask the node meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal

from domain.equipment import PumpConfig
from domain.fuelling import (
    Capabilities,
    FinishedSale,
    Identity,
    InvalidValue,
    PointEvent,
    PointRefused,
    PointState,
    PointUnreachable,
    StateChanged,
    Totals,
    TotalsScope,
)
from domain.model import Preset

from .address import FuellingPointAddress, Lna
from .codec import DataItem
from .config import FullMode, IfsfLineSettings, IfsfPumpSettings, members
from .errors import IfsfLocalError, IfsfProtocolError
from .follow import FpFollower
from .ids import FpId, FpState
from .messages import FpStatus, release_items
from .prices import NodePrices
from .sales import clear_sale, program_prices, read_sales, read_totals
from .states import NEUTRAL, FpEvent, check_command
from .talk import Talk

__all__ = ["IfsfFuellingPoint", "busiest"]

log = logging.getLogger("drivers.ifsf")

_STATUS_IDS = (FpId.FP_STATE, FpId.LOG_NOZ_STATE, FpId.ASSIGN_CONTR_ID)
_RANK = (PointState.FUELLING, PointState.SUSPENDED, PointState.STARTED, PointState.STOPPED,
         PointState.AUTHORIZED, PointState.CALLING, PointState.IDLE, PointState.CLOSED,
         PointState.INOPERATIVE)
_RELEASED = (FpState.AUTHORISED, FpState.STARTED, FpState.SUSPENDED_STARTED, FpState.FUELLING,
             FpState.SUSPENDED_FUELLING)


def busiest(states: Sequence[FpState | None]) -> PointState | None:
    """The pump's state: its busiest fuelling point's (unknown while any is unknown)."""
    if not states or any(s is None for s in states):
        return None
    neutral = [NEUTRAL[s] for s in states if s is not None]
    return min(neutral, key=_RANK.index)


class IfsfFuellingPoint:
    """One station pump on IFSF fuelling points; fed by its line, driven by the station."""

    def __init__(self, config: PumpConfig, settings: IfsfLineSettings, talk: Talk,
                 prices: Mapping[Lna, NodePrices], emit: Callable[[PointEvent], None]) -> None:
        self.config = config
        self.settings = settings
        self.talk = talk
        self.node_prices = prices
        self.emit = emit
        self.members = members(config)
        self.followers = [FpFollower(m, settings.controller, settings.nozzle_form)
                          for m in self.members]
        self.nodes = frozenset(m.node for m in self.members)
        self.nodes_up: set[Lna] = set()  # nodes brought up (their points read and opened)
        self.announced = False
        self._state: PointState | None = None
        self._grades = {n.logical: n.grade for n in config.nozzles}

    # ------------------------------------------------------------------ FuellingPoint: facts

    @property
    def pump(self) -> int:
        return self.config.number

    @property
    def online(self) -> bool:
        return self.announced

    @property
    def state(self) -> PointState | None:
        return self._state

    @property
    def capabilities(self) -> Capabilities:
        nozzles = (frozenset(range(1, len(self.members) + 1)) if self.dit
                   else frozenset(range(1, 9)))
        return Capabilities(
            nozzles=nozzles, totals=TotalsScope.NOZZLE, totals_amount=True,
            price_readback=True, suspend=True,
            full_needs_preset=self.settings.full is not FullMode.RELEASE,
            decimals=None, sale_buffer=True, sells_by_itself=True,
            checks=("price read back from the dispenser node (IFSF product price)",))

    def detail(self) -> Mapping[str, object]:
        return {
            "protocol": "ifsf",
            "fuelling_points": [
                {"node": str(f.member.node), "fp": f.member.fp,
                 "state": f.state.name.lower() if f.state is not None else None,
                 "released": f.released, "price_refused": f.price_refused}
                for f in self.followers],
        }

    def address(self) -> str:
        if len(self.members) == 1:
            member = self.members[0]
            return f"{member.node}/FP{member.fp}"
        return "+".join(str(m.node) for m in self.members)

    @property
    def dit(self) -> bool:
        """A node per nozzle (DIT), rather than one fuelling point of a node (TQC)."""
        settings = self.config.settings
        return isinstance(settings, IfsfPumpSettings) and bool(settings.nodes)

    async def identity(self) -> Identity:
        return Identity(protocol="ifsf", address=self.address(),
                        details={"layout": "dit" if self.dit else "tqc",
                                 "nodes": ",".join(str(m.node) for m in self.members)})

    # ------------------------------------------------------------------ state

    def update_state(self, *, force: bool = False) -> None:
        """Recompute the pump's state; tell it when it changed (or ``force``: on announce)."""
        state = busiest([f.state for f in self.followers])
        if state is not self._state or force:
            self._state = state
            if self.announced and state is not None:
                raw = ",".join(f.state.name.lower() for f in self.followers if f.state)
                self.emit(StateChanged(self.pump, state, raw))

    def follower(self, node: Lna, fp: int) -> FpFollower | None:
        for follower in self.followers:
            if follower.member.node == node and follower.member.fp == fp:
                return follower
        return None

    def _member_of(self, logical: int) -> tuple[FpFollower, int]:
        for follower in self.followers:
            ifsf = follower.member.nozzles.get(logical)
            if ifsf is not None:
                return follower, ifsf
        raise InvalidValue(self.pump, f"pump {self.pump} has no logical nozzle {logical}")

    def _check_online(self, followers: Sequence[FpFollower] | None = None) -> None:
        for follower in followers or self.followers:
            if follower.member.node not in self.nodes_up:
                raise PointUnreachable(self.pump, f"pump {self.pump}: node "
                                                  f"{follower.member.node} is offline")

    async def read_status(self, follower: FpFollower) -> tuple[DataItem, ...]:
        """The fuelling point's state, lifted nozzles and owner, as items for its follower."""
        member = follower.member
        answer = await self.talk.answer(member.node, FuellingPointAddress(member.fp),
                                        _STATUS_IDS, "reading the fuelling point's state")
        return answer.items

    # ------------------------------------------------------------------ operations

    async def authorize(self, nozzles: frozenset[int], preset: Preset | None) -> None:
        targets: list[tuple[FpFollower, frozenset[int]]] = []
        for follower in self.followers:
            mine = frozenset(i for s, i in follower.member.nozzles.items() if s in nozzles)
            if mine:
                targets.append((follower, mine))
        if not targets:
            raise InvalidValue(self.pump, f"pump {self.pump} has none of nozzles "
                                          f"{sorted(nozzles)}")
        self._check_online([f for f, _ in targets])
        for follower, _ in targets:
            if follower.price_refused:
                raise PointRefused(self.pump, f"pump {self.pump}: node {follower.member.node} "
                                   "refused its price (0x37); a person must open it", "0x37")
            try:
                check_command(follower.state, FpEvent.RELEASE_FP)
            except IfsfLocalError as exc:
                raise PointRefused(self.pump, f"pump {self.pump}: {exc}", "state") from None
        released: list[FpFollower] = []
        try:
            for follower, mine in targets:
                await self._release(follower, mine, preset)
                released.append(follower)
        except BaseException:
            for follower in released:  # all or none: take back what went out
                await self.terminate(follower, quiet=True)
            raise

    def _items(self, follower: FpFollower, mine: frozenset[int],
               preset: Preset | None) -> tuple[DataItem, ...]:
        d = self.config.decimals
        amount = volume = None
        if preset is not None and preset.kind == "amount":
            amount = preset.value
        elif preset is not None:
            volume = preset.value
        elif self.settings.full is FullMode.PRESET or (
                self.settings.full is FullMode.AUTO and follower.state is not FpState.CALLING):
            # A release without a preset is refused unless the nozzle is up: "full" is the
            # largest preset instead.
            amount = self.settings.full_preset_amount
        try:
            return release_items(self.settings.controller, mine, amount=amount, volume=volume,
                                 amount_places=d.amount, volume_places=d.volume)
        except IfsfLocalError as exc:
            raise InvalidValue(self.pump, f"preset: {exc}") from None

    async def _release(self, follower: FpFollower, mine: frozenset[int],
                       preset: Preset | None) -> None:
        member = follower.member
        items = self._items(follower, mine, preset)
        await self.talk.write(member.node, FuellingPointAddress(member.fp), items, "release")
        follower.released_by_us()
        try:
            status = FpStatus.from_items(await self.read_status(follower))
        except IfsfProtocolError as exc:
            raise PointUnreachable(self.pump, f"pump {self.pump}: the state after the release "
                                              f"not understood: {exc}") from None
        if status.state not in _RELEASED:
            follower.withdrawn()
            raise PointRefused(self.pump, f"pump {self.pump}: the release was acknowledged but "
                               f"node {member.node} FP {member.fp} shows "
                               f"{status.state.name if status.state else 'no state'}",
                               "not_released")

    async def command(self, follower: FpFollower, command: FpId, what: str) -> None:
        member = follower.member
        await self.talk.write(member.node, FuellingPointAddress(member.fp),
                              (DataItem(command),), what)

    async def terminate(self, follower: FpFollower, *, quiet: bool = False) -> None:
        member = follower.member
        try:
            ack = await self.talk.write_ack(member.node, FuellingPointAddress(member.fp),
                                            (DataItem(FpId.TERMINATE_FP),), "stop")
        except PointUnreachable:
            if quiet:
                return
            raise
        follower.withdrawn()
        if not ack.accepted and ack.refused().get(FpId.TERMINATE_FP) != 3 and not quiet:
            raise PointRefused(self.pump, f"pump {self.pump}: stop refused by node "
                                          f"{member.node}", f"status={ack.status}")

    async def cancel(self) -> None:
        self._check_online()
        if any(f.state in (FpState.FUELLING, FpState.SUSPENDED_FUELLING)
               for f in self.followers):
            raise PointRefused(self.pump, f"pump {self.pump}: fuel is flowing, too late to "
                                          "cancel", "filling")
        for follower in self.followers:
            if follower.state in _RELEASED or follower.released:
                await self.terminate(follower)

    async def stop(self) -> None:
        """Terminate_FP on every fuelling point of the pump (a refusal "nothing to stop",
        code 3, is no failure)."""
        self._check_online()
        failures: list[PointUnreachable] = []
        for follower in self.followers:
            try:
                await self.terminate(follower)
            except PointUnreachable as exc:
                failures.append(exc)
        if failures:
            raise failures[0]

    async def suspend(self) -> None:
        await self._active(FpId.SUSPEND_FP, "suspend",
                           (FpState.STARTED, FpState.FUELLING))

    async def resume(self) -> None:
        await self._active(FpId.RESUME_FP, "resume",
                           (FpState.SUSPENDED_STARTED, FpState.SUSPENDED_FUELLING))

    async def _active(self, command: FpId, what: str, states: tuple[FpState, ...]) -> None:
        self._check_online()
        for follower in self.followers:
            if follower.state in states:
                await self.command(follower, command, what)
                return
        raise PointRefused(self.pump, f"pump {self.pump}: nothing to {what}", "state")

    async def close(self) -> None:
        self._check_online()
        for follower in self.followers:
            await self.command(follower, FpId.CLOSE_FP, "close")

    async def open(self) -> None:
        """Open_FP on every fuelling point: also how a person puts back in service a point
        that refused a price (0x37)."""
        self._check_online()
        for follower in self.followers:
            await self.command(follower, FpId.OPEN_FP, "open")
            follower.opened()

    async def read_sales(self) -> Sequence[FinishedSale]:
        self._check_online()
        return await read_sales(self.talk, self.followers, self.settings.controller)

    async def clear_sale(self, sale: FinishedSale) -> None:
        self._check_online()
        await clear_sale(self.talk, self.members, sale, self.settings.nozzle_form)

    async def read_totals(self, logical: int) -> Totals:
        follower, ifsf = self._member_of(logical)
        self._check_online([follower])
        d = self.config.decimals
        return await read_totals(self.talk, follower, logical, ifsf, d.volume, d.amount)

    async def read_pump_totals(self) -> Totals | None:
        return None  # IFSF has per-nozzle totals only; no pump-wide counter to check

    async def set_prices(self, prices: Mapping[int, Decimal]) -> None:
        """Each nozzle's grade is a product on its node: its price is written there (once per
        product), taken when every fuelling point of the node is idle, and read back."""
        self._check_online()
        products = self.settings.products
        for follower in self.followers:
            if follower.price_refused:
                raise PointRefused(self.pump, f"pump {self.pump}: node {follower.member.node} "
                                   f"FP {follower.member.fp} refused a price (0x37) and is out "
                                   "of service until a person opens it", "0x37")
            wanted: dict[int, Decimal] = {}
            logicals: dict[int, list[int]] = {}
            for logical in follower.member.nozzles:
                price = prices.get(logical)
                grade = self._grades.get(logical)
                if price is None or grade is None:
                    continue
                product = products.get(grade)
                if product is None:
                    raise InvalidValue(self.pump, f"grade {grade} has no IFSF product number")
                if wanted.setdefault(product, price) != price:
                    raise InvalidValue(self.pump, f"product {product} cannot have two prices "
                                                  "on one node")
                logicals.setdefault(product, []).append(logical)
            if wanted:
                await program_prices(self.talk, follower, self.node_prices[follower.member.node],
                                     wanted, logicals, self.config.decimals.price,
                                     self.settings.price_wait.total_seconds())
