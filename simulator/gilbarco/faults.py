"""What goes wrong between a simulated Gilbarco pump and the controller (the issue's faults:
a corrupted checksum, no answer, late or cut answers). A data error (status 0) is a pump state,
set through ``GilbarcoSimulator.data_error``; it is not here.

Faults are plain data, per pump or for the whole line; the dice come from one seeded
``random.Random`` so a run can be replayed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["GilbarcoFaultPlan", "GilbarcoFaults"]


@dataclass(frozen=True)
class GilbarcoFaults:
    """- ``silent``: the pump hears nothing and answers nothing.
    - ``bad_checksum``: probability 0..1 that an answer with a checksum (a block, a hex record)
      carries a wrong one.
    - ``drop``: probability 0..1 that an answer is cut short (sometimes to nothing).
    - ``delay``: seconds added before each answer (beyond the window it is no answer).
    """

    silent: bool = False
    bad_checksum: float = 0.0
    drop: float = 0.0
    delay: float = 0.0

    def __post_init__(self) -> None:
        for name in ("bad_checksum", "drop"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} is a probability 0..1")
        if self.delay < 0:
            raise ValueError("delay must not be negative")

    def combined(self, other: GilbarcoFaults) -> GilbarcoFaults:
        return GilbarcoFaults(
            silent=self.silent or other.silent,
            bad_checksum=max(self.bad_checksum, other.bad_checksum),
            drop=max(self.drop, other.drop),
            delay=max(self.delay, other.delay),
        )


NO_FAULTS = GilbarcoFaults()


class GilbarcoFaultPlan:
    """The faults in force, line-wide and per pump number, and the dice to apply them."""

    def __init__(self, seed: int | None = None) -> None:
        self.line = NO_FAULTS
        self.pumps: dict[int, GilbarcoFaults] = {}
        self.rng = random.Random(seed)

    def for_pump(self, pump: int) -> GilbarcoFaults:
        return self.line.combined(self.pumps.get(pump, NO_FAULTS))

    def set(
        self,
        pump: int | None = None,
        *,
        silent: bool | None = None,
        bad_checksum: float | None = None,
        drop: float | None = None,
        delay: float | None = None,
    ) -> GilbarcoFaults:
        """Change some faults of one pump (or of the line when ``pump`` is None)."""
        current = self.line if pump is None else self.pumps.get(pump, NO_FAULTS)
        updated = GilbarcoFaults(
            silent=current.silent if silent is None else silent,
            bad_checksum=current.bad_checksum if bad_checksum is None else bad_checksum,
            drop=current.drop if drop is None else drop,
            delay=current.delay if delay is None else delay,
        )
        if pump is None:
            self.line = updated
        elif updated == NO_FAULTS:
            self.pumps.pop(pump, None)
        else:
            self.pumps[pump] = updated
        return updated

    def clear(self, pump: int | None = None) -> None:
        if pump is None:
            self.line = NO_FAULTS
            self.pumps.clear()
        else:
            self.pumps.pop(pump, None)

    def apply(self, answer: bytes, faults: GilbarcoFaults) -> bytes:
        """``answer`` as the master receives it under ``faults``."""
        if faults.bad_checksum and self.rng.random() < faults.bad_checksum:
            answer = _break_checksum(answer)
        if faults.drop and answer and self.rng.random() < faults.drop:
            answer = answer[: self.rng.randrange(len(answer))]
        return answer


def _break_checksum(answer: bytes) -> bytes:
    damaged = bytearray(answer)
    if len(answer) > 2 and answer[-1] == 0xF0:  # a block: ... FB E<lrc> F0
        damaged[-2] = 0xE0 | ((answer[-2] + 1) & 0x0F)
    elif len(answer) > 4 and answer[-1] == 0x8A:  # hex records: ... S S CR LF (bit 7 set)
        damaged[-3] = ord("0") | 0x80 if answer[-3] != ord("0") | 0x80 else ord("1") | 0x80
    return bytes(damaged)
