"""The electronic totalizers of a simulated pump: volume, amount and fillings per logical nozzle.

They are the pump's non-volatile memory (PROTOCOLS.md, CD101/DC101): a power cycle keeps them,
they only grow, and they roll over at ten digits (5 bytes of BCD) like a real counter. Values are
raw integers in the pump's units (its decimals).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from simulator.metering import Decimals, rescale

__all__ = ["TOTAL_MODULO", "Totalizer"]

TOTAL_MODULO = 10**10


class Totalizer:
    """Per-nozzle counters; `read` gives (volume, amount), rolled over."""

    def __init__(
        self, nozzles: Iterable[int], start: Mapping[int, tuple[int, int]] | None = None
    ) -> None:
        begin = start or {}
        self._volume = {n: begin.get(n, (0, 0))[0] for n in nozzles}
        self._amount = {n: begin.get(n, (0, 0))[1] for n in self._volume}
        self._fillings = dict.fromkeys(self._volume, 0)

    def read(self, nozzle: int, volume: int = 0, amount: int = 0) -> tuple[int, int]:
        """The counters of `nozzle`, plus what is flowing through it now (`volume`, `amount`)."""
        return (
            (self._volume[nozzle] + volume) % TOTAL_MODULO,
            (self._amount[nozzle] + amount) % TOTAL_MODULO,
        )

    def fillings(self, nozzle: int) -> int:
        return self._fillings[nozzle]

    def add(self, nozzle: int, volume: int, amount: int) -> None:
        """A filling ended on `nozzle`: count it and what it delivered."""
        self._volume[nozzle] += volume
        self._amount[nozzle] += amount
        self._fillings[nozzle] += 1

    def rescale(self, old: Decimals, new: Decimals) -> None:
        """The pump now counts in other decimals: keep the litres and the money."""
        for nozzle in self._volume:
            self._volume[nozzle] = rescale(self._volume[nozzle], old.volume, new.volume)
            self._amount[nozzle] = rescale(self._amount[nozzle], old.amount, new.amount)
