"""A Gilbarco pump as a protocol-neutral fuelling point: the operations (``domain.fuelling``).

Each operation returns once the pump showed it in its status, or raises a
``FuellingPointError``. What Gilbarco cannot do is said in the capabilities and refused with
``NotSupported``: suspend and resume (a stopped filling is resumed by authorizing again, which
the station does not use as a pause), closing a pump. The pump keeps no sales of its own:
``read_sales`` is the transaction it still shows (until the next authorization) and
``clear_sale`` has nothing to do.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal

from domain.fuelling import (
    FinishedSale,
    InvalidValue,
    NotSupported,
    PointRefused,
    PointUnreachable,
    PriceMismatch,
    Totals,
)
from domain.model import Preset
from domain.units import UnitError, from_raw, to_raw

from .answers import Transaction
from .blocks import PresetBlock, PriceChangeBlock
from .commands import PumpStatus
from .follow import IDLE_WAIT, PumpFollower
from .requests import Authorize, ReadTransaction, SendBlock, Stop

__all__ = ["GilbarcoFuellingPoint"]

log = logging.getLogger("drivers.gilbarco")

_S = PumpStatus
_READY = (_S.IDLE, _S.CALLING)
_ENDED = (_S.END_OF_SALE_A, _S.END_OF_SALE_B)

END_OF_SALE_WAIT = 5.0
"""Seconds an authorization waits for a pump to leave end of sale before it is refused."""


class GilbarcoFuellingPoint(PumpFollower):
    """One Gilbarco pump; fed bus events by its line, driven by the station through operations."""

    async def authorize(self, nozzles: frozenset[int], preset: Preset | None) -> None:
        """Preset (where asked), then AUTHORIZE until the pump shows 8 or 9.

        One nozzle of several is enforced by the preset's hose word; a fill-up on one nozzle of
        several goes as the largest money preset for that hose (the protocol has no other way
        to name a hose).
        """
        self._check_online()
        status = self._bus_status
        if status in _ENDED:
            # The sale is read; a pump may hold A/B a little longer (until the nozzle is back,
            # or for a while of its own: the notes do not know which).
            with contextlib.suppress(PointUnreachable):
                status = await self._wait_status(lambda s: s not in _ENDED, "idle",
                                                 END_OF_SALE_WAIT)
        if status is _S.AUTHORIZED:
            await self._withdraw()  # an authorization left over: the new one replaces it
            status = self._bus_status
        if status is None or status not in _READY:
            raise PointRefused(self.pump, self._not_ready(status), _code(status))
        block = self._preset_block(nozzles, preset)
        if block is not None:
            await self._ask(SendBlock(block))
        self._fill_logical = self._fill_price = None
        attempts = self._settings.authorize_attempts
        for attempt in range(1, attempts + 1):
            await self._ask(Authorize())
            try:
                await self._wait_status(lambda s: s not in (*_READY, _S.DATA_ERROR),
                                        "authorized", self._confirm_timeout)
                return
            except PointUnreachable:
                if not self._link:
                    raise
                log.warning("pump %d: no authorization shown after attempt %d of %d",
                            self.pump, attempt, attempts)
        raise PointUnreachable(self.pump, f"pump {self.pump} did not show the authorization "
                                          f"after {attempts} attempts")

    async def cancel(self) -> None:
        self._check_online()
        if self._bus_status in (_S.FUELLING, _S.STOPPED):
            raise PointRefused(self.pump, f"pump {self.pump}: fuel is flowing, too late to "
                                          "cancel", "filling")
        if self._bus_status is _S.AUTHORIZED:
            await self._withdraw()

    async def stop(self) -> None:
        """STOP at once (from 8 the pump goes to 6, from 9 to C); done once it is sent."""
        self._check_online()
        await self._ask(Stop())

    async def suspend(self) -> None:
        raise NotSupported(self.pump, "Gilbarco pumps cannot suspend a filling")

    async def resume(self) -> None:
        raise NotSupported(self.pump, "Gilbarco pumps cannot suspend a filling")

    async def close(self) -> None:
        raise NotSupported(self.pump, "Gilbarco pumps cannot be switched off by the controller")

    async def open(self) -> None:
        raise NotSupported(self.pump, "Gilbarco pumps cannot be switched off by the controller")

    async def read_sales(self) -> Sequence[FinishedSale]:
        """The transaction the pump shows: the last (or current) sale, until the next one."""
        tx = await self._ask(ReadTransaction())
        assert isinstance(tx, Transaction)
        if tx.volume == 0 and tx.money == 0:
            return ()
        d = self.decimals
        details = {"price_level": str(tx.price_level), "header": tx.header.hex(" "),
                   "unknown": tx.unknown.hex(" ")}
        return (FinishedSale(logical=tx.hose, volume=from_raw(tx.volume, d.volume),
                             amount=from_raw(tx.money, d.amount),
                             price=from_raw(tx.price, d.price), details=details),)

    async def clear_sale(self, sale: FinishedSale) -> None:
        """Nothing to do: the pump shows its sale until the next authorization."""

    async def read_totals(self, logical: int) -> Totals:
        totals = await self._read_totals()
        hose = totals.hose(logical)
        if hose is None:
            raise NotSupported(self.pump, f"pump {self.pump} reports no totals for hose "
                                          f"{logical}")
        d = self.decimals
        return Totals(logical=logical, volume=from_raw(hose.volume, d.volume),
                      amount=from_raw(hose.money, d.amount))

    async def read_pump_totals(self) -> Totals | None:
        return None  # Gilbarco counts per hose only

    async def set_prices(self, prices: Mapping[int, Decimal]) -> None:
        """Level-1 prices of the hoses that need a change, only while idle, confirmed from the
        totals block (which carries every hose's prices)."""
        self._check_online()
        places, digits = self.decimals.price, self._layout.price_digits
        try:
            raw = {h: to_raw(p, places, maximum=10**digits - 1) for h, p in prices.items()}
        except UnitError as exc:
            raise InvalidValue(self.pump, f"price: {exc}") from None
        shown = {h.hose: h.price_1 for h in (await self._read_totals()).hoses}
        missing = sorted(set(raw) - set(shown))
        if missing:
            raise PointRefused(self.pump, f"pump {self.pump} has no hose {missing[0]}", "hose")
        changes = {h: p for h, p in raw.items() if shown[h] != p}
        if not changes:
            return
        await self._wait_status(lambda s: s is _S.IDLE, "idle (prices change only then)",
                                IDLE_WAIT)
        for hose, price in sorted(changes.items()):
            await self._ask(SendBlock(PriceChangeBlock(hose, price, digits)))
        shown = {h.hose: h.price_1 for h in (await self._read_totals()).hoses}
        if any(shown.get(h) != p for h, p in raw.items()):
            raise PriceMismatch(self.pump, {h: from_raw(p, places) for h, p in raw.items()},
                                {h: from_raw(shown.get(h, 0), places) for h in raw})
        log.info("pump %d: prices %s", self.pump,
                 ", ".join(f"hose {h} {from_raw(p, places)}" for h, p in sorted(raw.items())))

    # ------------------------------------------------------------------ inside

    async def _withdraw(self) -> None:
        await self._ask(Stop())
        await self._wait_status(lambda s: s in _READY, "idle after stop", self._confirm_timeout)

    def _preset_block(self, nozzles: frozenset[int], preset: Preset | None) -> PresetBlock | None:
        configured = {n.logical for n in self._config.nozzles}
        hose = next(iter(nozzles)) if len(nozzles) == 1 and len(configured) > 1 else None
        digits = self._layout.preset_digits
        largest = 10**digits - 1
        if preset is None:
            return None if hose is None else PresetBlock("money", largest, digits, hose)
        d = self.decimals
        places = d.amount if preset.kind == "amount" else d.volume
        try:
            value = to_raw(preset.value, places, maximum=largest)
        except UnitError as exc:
            raise InvalidValue(self.pump, f"preset {preset.kind} {preset.value}: {exc}"
                               ) from None
        if preset.kind == "amount":
            return PresetBlock("money", value, digits, hose)
        return PresetBlock("volume", value, digits, hose)

    def _not_ready(self, status: PumpStatus | None) -> str:
        if status in _ENDED:
            return (f"pump {self.pump} still shows the end of the last sale (hang the nozzle "
                    "up)")
        if status is _S.DATA_ERROR:
            return f"pump {self.pump} reports a data error"
        if status in (_S.FUELLING, _S.STOPPED):
            return f"pump {self.pump} is in the middle of a filling"
        return f"pump {self.pump} is not ready ({'unknown' if status is None else status.name})"


def _code(status: PumpStatus | None) -> str:
    if status in _ENDED:
        return "end_of_sale"
    if status is _S.DATA_ERROR:
        return "data_error"
    return "busy"
