"""Feeding one station pump from its nodes' events, in order (``PointRunner``).

The line routes each node event to the pumps standing on that node; a pump's runner handles
them one at a time: bringing a node up when it comes online (read every fuelling point's state,
Open_FP where it is Closed, then the pump is announced online), following status, running
transaction, buffer and error messages, and telling the station what they mean. A sale the
pump made on its own (stand-alone mode) is read from the buffer before the next message is
told, so that the station hears of the sale before it hears the point is idle again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from domain.fuelling import (
    AlarmKind,
    FillingEnded,
    FuellingPointError,
    NozzleDown,
    NozzleUp,
    PointAlarm,
    PointAlarmCleared,
    PointOffline,
    PointOnline,
    PointRestarted,
    PumpSale,
    RunningFigures,
)
from domain.retry import PUMP_STARTUP

from .address import ErrorAddress, FuellingPointAddress, Lna, TransactionAddress
from .codec import Answer, Unsolicited
from .errors import IfsfProtocolError
from .events import ConfigurationNeeded, LanEvent, NodeOffline, NodeOnline, Polled, Received
from .follow import (
    AlarmsSeen,
    Ended,
    ErrorSeen,
    FpFollower,
    Lifted,
    Outcome,
    Running,
    StandAlone,
    StateSeen,
)
from .ids import ErrorCode, FpId, FpState, TrId
from .point import IfsfFuellingPoint
from .sales import read_one

__all__ = ["PointRunner"]

log = logging.getLogger("drivers.ifsf")

Spawn = Callable[[Coroutine[Any, Any, None], str], None]


@dataclass(frozen=True)
class _Retry:
    node: Lna
    attempt: int


class PointRunner:
    """The in-order event handling of one ``IfsfFuellingPoint``."""

    def __init__(self, point: IfsfFuellingPoint, online: Callable[[Lna], bool],
                 spawn: Spawn) -> None:
        self.point = point
        self._online = online  # whether the network has the node online now
        self._spawn = spawn
        self._queue: asyncio.Queue[LanEvent | _Retry] = asyncio.Queue()

    def feed(self, event: LanEvent) -> None:
        self._queue.put_nowait(event)

    async def run(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._handle(item)
            except FuellingPointError as exc:
                log.warning("pump %d: %s", self.point.pump, exc)
            except IfsfProtocolError as exc:
                # A message that makes no sense (a state out of range, a nozzle bitmask naming
                # several nozzles): told, and the next one is followed as usual.
                log.warning("pump %d: a message from the dispenser not understood: %s",
                            self.point.pump, exc)

    # ------------------------------------------------------------ node events

    async def _handle(self, item: LanEvent | _Retry) -> None:
        point = self.point
        if isinstance(item, NodeOnline | _Retry):
            attempt = item.attempt if isinstance(item, _Retry) else 0
            if self._online(item.node) and item.node not in point.nodes_up:
                await self._bring_up(item.node, attempt)
        elif isinstance(item, NodeOffline):
            self._node_down(item.node, item.reason)
        elif isinstance(item, ConfigurationNeeded):
            if item.node in point.nodes_up:
                # The node restarted (power cycle): its points are Closed again.
                was = point.announced
                point.nodes_up.discard(item.node)
                for stale in self._followers(item.node):
                    stale.reset()
                await self._bring_up(item.node, 0, restarted=was)
        elif isinstance(item, Polled):
            for message in item.messages:
                if isinstance(message, Answer) and isinstance(message.address,
                                                              FuellingPointAddress):
                    polled = point.follower(item.node, message.address.fp)
                    if polled is not None:
                        await self._outcomes(polled, polled.status(message.items))
        elif isinstance(item, Received):
            await self._message(item.node, item.message)

    async def _bring_up(self, node: Lna, attempt: int, restarted: bool = False) -> None:
        point = self.point
        try:
            for follower in self._followers(node):
                await self._outcomes(follower, follower.status(await point.read_status(follower)))
                if follower.state is FpState.CLOSED:
                    await point.command(follower, FpId.OPEN_FP, "open")
                    follower.opened()
                    await self._outcomes(follower,
                                         follower.status(await point.read_status(follower)))
                elif follower.state is FpState.INOPERATIVE:
                    log.warning("pump %d: node %s FP %d is inoperative (a refused price or a "
                                "fault); it sells again once a person opens it", point.pump,
                                node, follower.member.fp)
        except FuellingPointError as exc:
            delay = PUMP_STARTUP.wait().delay(attempt + 1)
            log.log(logging.WARNING if attempt == 0 else logging.DEBUG,
                    "pump %d: bringing node %s up failed (%s); again in %.1f s", point.pump,
                    node, exc, delay)
            asyncio.get_running_loop().call_later(delay, self._queue.put_nowait,
                                                  _Retry(node, attempt + 1))
            return
        point.nodes_up.add(node)
        if restarted and point.announced:
            point.emit(PointRestarted(point.pump))
        if point.nodes_up >= point.nodes and not point.announced:
            await self._announce()

    async def _announce(self) -> None:
        point = self.point
        point.announced = True
        log.info("pump %d online (IFSF %s)", point.pump, point.address())
        point.emit(PointOnline(point.pump, await point.identity(), point.capabilities))
        point.update_state(force=True)
        for follower in point.followers:
            logical = follower.station_logical(follower.lifted)
            if logical is not None:
                point.emit(NozzleUp(point.pump, logical))

    def _node_down(self, node: Lna, reason: str) -> None:
        point = self.point
        point.nodes_up.discard(node)
        for follower in self._followers(node):
            follower.reset()
        if point.announced:
            point.announced = False
            point.update_state()
            point.emit(PointOffline(point.pump, f"node {node}: {reason}"))

    # ------------------------------------------------------------ messages

    async def _message(self, node: Lna, message: Unsolicited) -> None:
        address = message.address
        if isinstance(address, FuellingPointAddress | TransactionAddress | ErrorAddress):
            follower = self.point.follower(node, address.fp)
        else:
            follower = None
        if follower is None:
            return
        kind = message.message_id
        items = message.items
        if isinstance(address, FuellingPointAddress) and kind == FpId.FP_STATUS_MESSAGE:
            await self._outcomes(follower, follower.status(items))
        elif isinstance(address, FuellingPointAddress) and (
                kind == FpId.RUNNING_TRANSACTION_MESSAGE):
            await self._outcomes(follower, follower.running(items))
        elif isinstance(address, TransactionAddress) and kind == TrId.BUFFER_STATUS_MESSAGE:
            await self._outcomes(follower, follower.buffer(items))
        elif isinstance(address, ErrorAddress):
            await self._outcomes(follower, follower.error(address.error, items))
        else:
            log.debug("pump %d: message %s on %s from %s not followed", self.point.pump, kind,
                      address, node)

    async def _outcomes(self, follower: FpFollower, outcomes: list[Outcome]) -> None:
        point = self.point
        pump = point.pump
        told = point.announced
        for outcome in outcomes:
            if isinstance(outcome, Lifted) and told:
                if outcome.logical is not None:
                    point.emit(NozzleUp(pump, outcome.logical))
                else:
                    point.emit(NozzleDown(pump, outcome.previous))
            elif isinstance(outcome, StateSeen):
                if not outcome.expected:
                    log.info("pump %d: node %s FP %d went %s -> %s, a change the state table "
                             "does not explain (taken as the dispenser says)", pump,
                             follower.member.node, follower.member.fp,
                             outcome.previous.name if outcome.previous else "?",
                             outcome.state.name)
                point.update_state()
                if outcome.state in (FpState.STARTED, FpState.FUELLING):
                    self._withdraw_others(follower)
            elif isinstance(outcome, Running) and told:
                point.emit(RunningFigures(pump, outcome.volume, outcome.amount, outcome.logical))
            elif isinstance(outcome, Ended) and told:
                point.emit(FillingEnded(pump, outcome.logical))
            elif isinstance(outcome, StandAlone):
                await self._stand_alone(follower, outcome)
            elif isinstance(outcome, ErrorSeen) and told:
                self._error(follower, outcome)
            elif isinstance(outcome, AlarmsSeen) and told:
                if outcome.alarms is None:
                    point.emit(PointAlarmCleared(pump, AlarmKind.OTHER))
                else:
                    point.emit(PointAlarm(pump, AlarmKind.OTHER, outcome.alarms.hex(),
                                          "the dispenser reports fuelling point alarms"))

    async def _stand_alone(self, follower: FpFollower, outcome: StandAlone) -> None:
        point = self.point
        member = follower.member
        log.warning("pump %d: node %s FP %d sold transaction %04d by itself (released by %s)",
                    point.pump, member.node, member.fp, outcome.sequence,
                    outcome.controller or "nobody")
        try:
            sale = await read_one(point.talk, follower, outcome.sequence,
                                  point.settings.controller)
        except FuellingPointError as exc:
            log.warning("pump %d: transaction %04d not read (%s); it stays in the buffer and "
                        "is found at the next start-up", point.pump, outcome.sequence, exc)
            return
        if sale is not None and point.announced:
            point.emit(PumpSale(point.pump, sale))

    def _error(self, follower: FpFollower, outcome: ErrorSeen) -> None:
        point = self.point
        report = outcome.report
        code = report.error_type if report.error_type is not None else report.error
        where = f"node {follower.member.node} FP {follower.member.fp}"
        if code == ErrorCode.PRICE_REFUSED:
            point.emit(PointAlarm(point.pump, AlarmKind.PRICE, "0x37",
                                  f"{where} refused a price change and is out of service "
                                  "until a person opens it"))
        elif code in (ErrorCode.PRICE_CHANGED, ErrorCode.UNKNOWN_PRODUCT,
                      ErrorCode.BOARD_NO_ANSWER):
            log.info("pump %d: %s: price change result 0x%02X", point.pump, where, code)
        else:
            point.emit(PointAlarm(point.pump, AlarmKind.OTHER, f"0x{code:02X}",
                                  f"{where} reports error 0x{code:02X}"))

    def _withdraw_others(self, active: FpFollower) -> None:
        """DIT: one nozzle's node started; releases of the pump's other nodes are taken back."""
        for follower in self.point.followers:
            if follower is not active and follower.released and (
                    follower.state is FpState.AUTHORISED):
                self._spawn(self.point.terminate(follower, quiet=True),
                            f"withdraw-{follower.member.node}")

    def _followers(self, node: Lna) -> list[FpFollower]:
        return [f for f in self.point.followers if f.member.node == node]
