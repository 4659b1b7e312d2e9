"""One gauge polled over its (possibly shared) link: read its probes, count its failures.

A poll reads every register the gauge's probes use (as few requests as `plan_reads` allows)
and decodes each probe. It never raises for the gauge's sake: a failure comes back in the
result with the count of failures in a row, so the caller decides when the gauge is offline.
Logs tell changes: the first failure at error, the repeats at debug, the recovery at info.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from .link import GaugeError, ModbusLink
from .probe import ProbeMap, ProbeValues
from .registers import RegisterError, RegisterKind, WordOrder, plan_reads

log = logging.getLogger(__name__)


class GaugeDataError(GaugeError):
    """The gauge answered, but a probe's registers hold no measurement (a probe fault)."""

    reason = "invalid"


@dataclass(frozen=True)
class PollResult:
    values: Mapping[int, ProbeValues]  # by tank number; empty when the poll failed
    error: GaugeError | None = None
    failures: int = 0  # failed polls in a row, this one included


class GaugePoller:
    def __init__(
        self,
        name: str,
        link: ModbusLink,
        *,
        device_id: int,
        kind: RegisterKind,
        word_order: WordOrder,
        probes: Mapping[int, ProbeMap],
    ) -> None:
        self.name = name
        self.link = link
        self.device_id = device_id
        self.kind = kind
        self.word_order = word_order
        self.probes = dict(probes)
        self.blocks = plan_reads(r for p in self.probes.values() for r in p.registers().values())
        self.failures = 0

    async def poll(self) -> PollResult:
        try:
            values = await self._read()
        except GaugeError as exc:
            self.failures += 1
            if self.failures == 1:
                log.error("gauge %s: %s", self.name, exc)
            else:
                log.debug("gauge %s: still failing (%d): %s", self.name, self.failures, exc)
            return PollResult({}, exc, self.failures)
        if self.failures:
            log.info("gauge %s answers again after %d failed polls", self.name, self.failures)
        self.failures = 0
        return PollResult(values)

    async def _read(self) -> dict[int, ProbeValues]:
        image: dict[int, int] = {}
        for block in self.blocks:
            words = await self.link.read(self.kind, self.device_id, block)
            image.update(zip(block.addresses, words, strict=True))
        values = {}
        for tank, probe in self.probes.items():
            try:
                values[tank] = probe.decode(image, self.word_order)
            except RegisterError as exc:
                raise GaugeDataError(f"tank {tank}: {exc}") from None
        return values
