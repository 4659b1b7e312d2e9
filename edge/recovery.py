"""A pump's start-up reconciliation: what happened at its nozzles while nothing recorded it.

Run after the controller or the pump (re)started or the line came back, before anything is
sold. For every nozzle the pump's totals are compared with the last reading the ledger holds;
fuel that left a nozzle meanwhile becomes a sale only with **two witnesses that agree**
(PROTOCOLS.md, DART, "Field lessons"): a finished filling the pump still reports for that
nozzle that is not already a recorded sale, and that nozzle's totals delta, equal within the
sale check's tolerance. A pump-wide counter is never a witness (on a one-nozzle pump and on
firmware that answers one counter for every nozzle it is the same meter). With one witness, or
witnesses that disagree, the jump is put up for review: a person settles it, and no sale is
invented.

``plan_recovery`` only reads the pump and the ledger and returns a ``RecoveryPlan``; the
controller writes it. Nothing here reaches into the controller.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.equipment import NozzleConfig, PumpConfig
from domain.fuelling import FinishedSale, FuellingPoint
from domain.model import Authorization, Sale, TotalsReading
from domain.units import step

__all__ = ["Rebaseline", "RecoveredSale", "RecoveryPlan", "ReviewNeeded", "plan_recovery"]

log = logging.getLogger("edge.pump")


@dataclass(frozen=True)
class RecoveredSale:
    """A filling both witnesses agree on: recorded as a sale, flagged recovered."""

    logical: int
    filling: FinishedSale
    before: TotalsReading
    after: TotalsReading


@dataclass(frozen=True)
class ReviewNeeded:
    """A totals jump without two agreeing witnesses: a person accepts or dismisses it."""

    logical: int
    kind: str  # "one_witness" (no filling for it) or "witnesses_disagree"
    before: TotalsReading
    after: TotalsReading
    filling: FinishedSale | None


@dataclass(frozen=True)
class Rebaseline:
    """A reading to record as the nozzle's new reference (first reading, or totals that went
    back), with the discrepancy it is, if any."""

    reading: TotalsReading
    discrepancy: dict[str, Any] | None = None


@dataclass
class RecoveryPlan:
    sales: list[RecoveredSale] = field(default_factory=list)
    reviews: list[ReviewNeeded] = field(default_factory=list)
    readings: list[Rebaseline] = field(default_factory=list)
    # Buffered fillings the ledger already holds (recorded before a crash, not yet cleared at
    # the pump): cleared once the plan is written.
    recorded: list[FinishedSale] = field(default_factory=list)


@dataclass(frozen=True)
class Ledgerside:
    """What recovery reads from the ledger (the controller passes its store's reads)."""

    last_totals: Callable[[int], Awaitable[TotalsReading | None]]  # by station nozzle number
    last_sale: Callable[[], Awaitable[Sale | None]]  # the pump's latest sale
    sale_by_key: Callable[[str], Awaitable[Sale | None]]  # by the pump's own sale key


async def plan_recovery(point: FuellingPoint, pump: PumpConfig, ledger: Ledgerside, *,
                        active: Sequence[Authorization], now: Callable[[], datetime],
                        tolerance_steps: int, volume_decimals: int) -> RecoveryPlan:
    """Read the pump's finished fillings and every nozzle's totals; decide what to record."""
    plan = RecoveryPlan()
    fillings = list(await point.read_sales())
    unrecorded: list[FinishedSale] = []
    for filling in fillings:
        if await _recorded(filling, ledger, active):
            if filling.key is not None:
                plan.recorded.append(filling)
        else:
            unrecorded.append(filling)
    tolerance = step(volume_decimals) * tolerance_steps
    moved: list[tuple[NozzleConfig, TotalsReading, TotalsReading]] = []
    for nozzle in sorted(pump.nozzles, key=lambda n: n.logical):
        totals = await point.read_totals(nozzle.logical)
        reading = TotalsReading(pump=pump.number, nozzle=nozzle.number,
                                volume_total=totals.volume,
                                amount_total=totals.amount if totals.amount is not None
                                else Decimal(0), read_at=now(), source="start")
        previous = await ledger.last_totals(nozzle.number)
        if previous is None:
            plan.readings.append(Rebaseline(_source(reading, "baseline")))
            continue
        delta = reading.volume_total - previous.volume_total
        if delta == 0:
            continue
        if delta < 0:
            plan.readings.append(Rebaseline(_source(reading, "rebaseline"), {
                "kind": "totals_went_back", "pump": pump.number, "nozzle": nozzle.number,
                "previous": str(previous.volume_total), "now": str(reading.volume_total),
                "message": "the nozzle's totals are lower than the last reading (a reset or "
                           "a board swap?); the new reading is the reference from now on"}))
            continue
        moved.append((nozzle, previous, reading))
    # A filling the pump reports without its nozzle (a DART pump that has not said since the
    # restart which nozzle was used) belongs to the one nozzle whose totals moved by as much;
    # when several did, it belongs to none of them for sure, and each goes to review.
    unattributed = [f for f in unrecorded if f.logical is None]
    for filling in unattributed:
        matches = [n for n, before, after in moved
                   if abs(after.volume_total - before.volume_total - filling.volume) <= tolerance]
        unrecorded.remove(filling)
        if len(matches) == 1:
            unrecorded.append(replace(filling, logical=matches[0].logical))
    for nozzle, previous, reading in moved:
        delta = reading.volume_total - previous.volume_total
        mine = [f for f in unrecorded if f.logical == nozzle.logical]
        agreeing = _agreeing(mine, delta, tolerance)
        if agreeing:
            plan.sales.extend(_chain(nozzle.logical, agreeing, previous, reading))
            for filling in agreeing:
                unrecorded.remove(filling)
        else:
            plan.reviews.append(ReviewNeeded(
                logical=nozzle.logical, kind="witnesses_disagree" if mine else "one_witness",
                before=previous, after=_source(reading, "review"),
                filling=mine[-1] if mine else None))
    return plan


def _agreeing(fillings: list[FinishedSale], delta: Decimal,
              tolerance: Decimal) -> list[FinishedSale]:
    """The fillings that account for the totals delta: all of them, or a single one."""
    if fillings and abs(sum((f.volume for f in fillings), Decimal(0)) - delta) <= tolerance:
        return fillings
    for filling in reversed(fillings):
        if abs(filling.volume - delta) <= tolerance:
            return [filling]
    return []


def _chain(logical: int, fillings: list[FinishedSale], before: TotalsReading,
           after: TotalsReading) -> list[RecoveredSale]:
    """Several buffered fillings on one nozzle: each gets the totals it moved them to, so each
    sale's totals pair is its own (the last one ends at the reading itself)."""
    sales = []
    start = before
    for index, filling in enumerate(fillings):
        last = index == len(fillings) - 1
        end = after if last else TotalsReading(
            after.pump, after.nozzle, start.volume_total + filling.volume,
            start.amount_total + filling.amount, after.read_at, "derived")
        sales.append(RecoveredSale(logical, filling, start, end))
        start = end
    return sales


async def _recorded(filling: FinishedSale, ledger: Ledgerside,
                    active: Sequence[Authorization]) -> bool:
    """Whether the ledger already holds this filling as a sale."""
    if filling.key is not None:
        return await ledger.sale_by_key(filling.key) is not None
    # A pump without sale keys (DART) reports its last filling until the next one. It is the
    # last recorded sale when the figures match and nothing was authorized after that sale: a
    # new filling needs an authorization, and authorizations are durable before they are sent.
    last = await ledger.last_sale()
    if last is None or (last.volume, last.amount) != (filling.volume, filling.amount):
        return False
    if filling.logical is not None and filling.logical != last.logical:
        return False
    return not any(auth.created_at > last.ended_at for auth in active)


def _source(reading: TotalsReading, source: str) -> TotalsReading:
    return TotalsReading(pump=reading.pump, nozzle=reading.nozzle,
                         volume_total=reading.volume_total, amount_total=reading.amount_total,
                         read_at=reading.read_at, source=source)
