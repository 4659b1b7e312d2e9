"""Fault injection for the simulated line: what goes wrong between a pump and the controller.

Faults are set per pump or for the whole line, at run time, and are plain data; the randomness
comes from one seeded `random.Random`, so a failing chaos run can be replayed with its seed.
Power cycles and alarms are not here: they are things a pump does (`SimulatedPump.power_cycle`,
`SimulatedPump.raise_alarm`), reached through the `Simulator`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["FaultPlan", "Faults"]


@dataclass(frozen=True)
class Faults:
    """What is wrong with a pump's answers (or with the whole line's).

    - `silent`: the pump hears nothing and answers nothing (dead, unplugged, wrong address).
    - `corrupt`: probability 0..1 that an answer reaches the master damaged (flipped bits,
      or garbage instead of the frame), as on a noisy RS-485 pair.
    - `drop`: probability 0..1 that an answer loses bytes on the way: cut short at a random
      point, sometimes to nothing (a loose terminal, a collision with another talker).
    - `delay`: seconds added before each answer; beyond the master's 25 ms it is a late reply.
    """

    silent: bool = False
    corrupt: float = 0.0
    delay: float = 0.0
    drop: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.corrupt <= 1.0:
            raise ValueError(f"corrupt is a probability 0..1, not {self.corrupt}")
        if not 0.0 <= self.drop <= 1.0:
            raise ValueError(f"drop is a probability 0..1, not {self.drop}")
        if self.delay < 0:
            raise ValueError(f"delay must not be negative, not {self.delay}")

    def combined(self, other: Faults) -> Faults:
        """A pump's faults on a line that has faults of its own: the worse of each."""
        return Faults(
            silent=self.silent or other.silent,
            corrupt=max(self.corrupt, other.corrupt),
            delay=max(self.delay, other.delay),
            drop=max(self.drop, other.drop),
        )


NO_FAULTS = Faults()


class FaultPlan:
    """The faults in force, line-wide and per pump address, and the dice to apply them."""

    def __init__(self, seed: int | None = None) -> None:
        self.line = NO_FAULTS
        self.pumps: dict[int, Faults] = {}
        self.rng = random.Random(seed)

    def for_pump(self, address: int) -> Faults:
        return self.line.combined(self.pumps.get(address, NO_FAULTS))

    def set(
        self,
        address: int | None = None,
        *,
        silent: bool | None = None,
        corrupt: float | None = None,
        delay: float | None = None,
        drop: float | None = None,
    ) -> Faults:
        """Change some faults of one pump (or of the line when `address` is None)."""
        current = self.line if address is None else self.pumps.get(address, NO_FAULTS)
        updated = Faults(
            silent=current.silent if silent is None else silent,
            corrupt=current.corrupt if corrupt is None else corrupt,
            delay=current.delay if delay is None else delay,
            drop=current.drop if drop is None else drop,
        )
        if address is None:
            self.line = updated
        elif updated == NO_FAULTS:
            self.pumps.pop(address, None)
        else:
            self.pumps[address] = updated
        return updated

    def clear(self, address: int | None = None) -> None:
        """Heal one pump, or the line and every pump when `address` is None."""
        if address is None:
            self.line = NO_FAULTS
            self.pumps.clear()
        else:
            self.pumps.pop(address, None)

    def damage(self, frame: bytes, probability: float) -> bytes:
        """`frame` as it arrives over a line that damages a frame with `probability`."""
        if probability <= 0.0 or self.rng.random() >= probability:
            return frame
        if self.rng.random() < 0.75:
            # Noise flips a few bits; the master's CRC check (or parity) must catch it.
            damaged = bytearray(frame)
            for _ in range(self.rng.randint(1, 3)):
                damaged[self.rng.randrange(len(damaged))] ^= 1 << self.rng.randrange(8)
            return bytes(damaged)
        # A burst of garbage in place of the frame, sometimes with no frame end at all.
        return self.rng.randbytes(self.rng.randint(1, max(1, len(frame))))

    def cut(self, frame: bytes, probability: float) -> bytes:
        """`frame` as it arrives over a line that loses bytes with `probability`: a prefix."""
        if probability <= 0.0 or self.rng.random() >= probability:
            return frame
        return frame[: self.rng.randrange(len(frame))]
