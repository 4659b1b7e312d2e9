"""A pump's start-up, after the controller or the pump (re)started or the line came back.

Nothing may be sold on a pump before this has run: the pump's totals are compared with the last
the store recorded, and fuel that left a nozzle while nothing recorded it becomes a sale, once,
flagged recovered (from the pump's last filling when it covers the totals delta, from the
totalizers otherwise, with a discrepancy event). Then the prices are programmed and read back.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from domain.model import Authorization, TotalsReading, decimal_str
from domain.units import MAX_RAW_3, from_raw, to_raw
from drivers.dart import CD1, CD5, DC103, PumpCommand, PumpStatus

if TYPE_CHECKING:
    from edge.pump import PumpController

log = logging.getLogger("edge.pump")


async def reconcile_totals(pump: PumpController, reading: TotalsReading, logical: int,
                           last_fill: tuple[Decimal, Decimal],
                           active: list[Authorization]) -> None:
    """Compare a nozzle's totals with the last we recorded: recover what happened meanwhile."""
    store = pump.ledger.store
    previous = await pump.ledger.read(store.last_totals, pump.number, reading.nozzle)
    if previous is None:
        await pump.ledger.write(store.record_totals,
                                _with_source(reading, "baseline"))
        return
    delta_volume = reading.volume_total - previous.volume_total
    delta_amount = reading.amount_total - previous.amount_total
    if delta_volume == 0:
        return
    if delta_volume < 0:
        await pump.ledger.append_event("reconciliation.discrepancy", {
            "kind": "totals_went_back", "pump": pump.number, "nozzle": reading.nozzle,
            "previous": str(previous.volume_total), "now": str(reading.volume_total)})
        await pump.ledger.write(store.record_totals, _with_source(reading, "rebaseline"))
        return
    # Fuel left this nozzle while nobody recorded it: rebuild the sale from the pump.
    volume, amount = last_fill
    discrepancies: list[dict[str, Any]] = []
    if volume != delta_volume:
        discrepancies.append({
            "kind": "rebuilt_from_totals", "pump": pump.number, "nozzle": reading.nozzle,
            "last_filling_volume": decimal_str(volume, pump._dv),
            "totals_delta_volume": str(delta_volume),
            "message": "the pump's last filling does not cover the totals delta; "
                       "sale rebuilt from the totalizers"})
        volume, amount = delta_volume, delta_amount
    auth = _authorization_for(pump, logical, active)
    pump.auth = auth
    price = pump.pump_price or pump.prices.price(pump._by_logical[logical].grade)
    sale = pump._new_sale(logical=logical, volume=volume, amount=amount, price=price,
                          before=previous, after=reading, recovered=True,
                          extra=discrepancies)
    recorded, created = await pump.ledger.record_sale(sale)
    if created:
        pump._told_sale(recorded)
        log.warning("pump %d: recovered sale %s (%s L, %s) that ended while it could not "
                    "be recorded (controller down, line down or power cut)", pump.number,
                    recorded.id, recorded.volume, recorded.amount)
    pump.auth = None

def _authorization_for(pump: PumpController, logical: int,
                       active: list[Authorization]) -> Authorization | None:
    number = pump._by_logical[logical].number
    for auth in reversed(active):
        if auth.nozzle in (None, number):
            return auth
    return None


async def program_prices(pump: PumpController, status: PumpStatus) -> None:
    """CD5 with every nozzle's price, then read back (DC103) before allowing sales."""
    highest = max(pump._by_logical)
    raw: list[int] = []
    for logical in range(1, highest + 1):
        nozzle = pump._by_logical.get(logical)
        price = pump.prices.price(nozzle.grade) if nozzle else None
        raw.append(to_raw(price, pump._dp, maximum=MAX_RAW_3) if price else 0)
    price_set_id = pump.prices.price_set_id
    await pump.line.command(pump.address, [CD5(tuple(raw))])
    expected = tuple(raw)
    if pump.policy.price_readback:
        readback = await pump._ask([CD1(PumpCommand.RETURN_PRICES)], DC103)
        got = tuple(readback.prices[: len(expected)])
    else:
        got = expected  # configured off: the pump is trusted to have taken CD5
    pump.prices_ok = got == expected
    if not pump.prices_ok:
        await pump.ledger.append_event("pump.alarm", {
            "pump": pump.number, "kind": "price_readback_mismatch",
            "expected": [decimal_str(from_raw(p, pump._dp), pump._dp) for p in expected],
            "read_back": [decimal_str(from_raw(p, pump._dp), pump._dp) for p in got],
            "message": "the pump does not show the prices it was sent; sales are refused"})
        log.error("pump %d: price read-back mismatch %s != %s", pump.number, got, expected)
    elif price_set_id is not None and price_set_id != pump.price_set_id:
        pump.price_set_id = price_set_id
        prices = {n.grade: from_raw(raw[n.logical - 1], pump._dp)
                  for n in pump._by_logical.values()}
        known = await pump.ledger.read(pump.ledger.store.pump_price_set, pump.number)
        if known != price_set_id:
            await pump.ledger.write(pump.ledger.store.record_pump_prices, pump.number,
                                    price_set_id, prices)
            await pump.ledger.publish_new()
    if status is PumpStatus.NOT_PROGRAMMED:
        # The pump leaves "not programmed" by itself once it has prices, sometimes later.
        try:
            await pump._wait_status(tuple(s for s in PumpStatus
                                          if s is not PumpStatus.NOT_PROGRAMMED), 5.0)
        except TimeoutError:
            log.warning("pump %d still not programmed after its prices", pump.number)


def _with_source(reading: TotalsReading, source: str) -> TotalsReading:
    return TotalsReading(pump=reading.pump, nozzle=reading.nozzle,
                         volume_total=reading.volume_total, amount_total=reading.amount_total,
                         read_at=reading.read_at, source=source)


__all__ = ["PumpController"]
