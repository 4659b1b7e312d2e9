"""Named retry policies: one shape for every wait between two attempts, run by tenacity.

Every policy waits `first` seconds after the first failure, twice that after the second, and so
on up to `cap`; each wait is that figure times a factor drawn from `spread` (0.8 to 1.2: +-20 %;
0.5 to 1.0: "equal jitter") and never more than `cap`, so stations, pumps or printers that failed
together do not all come back in the same instant.

    LINE_RECONNECT   a serial port (or serial server) that cannot be opened or dropped
    BROKER_RECONNECT the cloud's MQTT broker
    PRINTER_RETRY    a receipt printer that is off, out of paper or unreachable
    PUMP_STARTUP     reading a pump that came online, until it is read (never gives up while it
                     stays online: the caller says when to stop)
    SALE_RECORD      recording a finished sale while storage refuses writes (never gives up: a
                     sale is never dropped)
    SERVICE_RESTART  restarting a peripheral service of the daemon that died

Use them through tenacity, which runs the loop, sleeps, stops and logs:

    retrying = PUMP_STARTUP.async_retrying(log, "pump 3: start-up read",
                                           retry_on=(PumpError,), until=lambda: not online)
    await retrying(read_pump)

Where tenacity cannot run the loop (a thread that waits on a stop flag, a worker that a person can
wake), `policy.wait()` is the same tenacity wait strategy, called with the failure count.

Logging follows the house rule: the first failure at error (or the level given), repeats at debug,
the recovery at info (`RetryLog`; `call`/`call_async` log the recovery themselves).

Importable by every layer: drivers, sync and the daemon use the same policies.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypedDict, TypeVar, Unpack

import tenacity
from tenacity import RetryCallState
from tenacity.retry import retry_base, retry_if_exception_type
from tenacity.stop import stop_base

__all__ = [
    "BROKER_RECONNECT",
    "LINE_RECONNECT",
    "POLICIES",
    "PRINTER_RETRY",
    "PUMP_STARTUP",
    "SALE_RECORD",
    "SERVICE_RESTART",
    "RetryLog",
    "RetryOptions",
    "RetryPolicy",
    "wait_doubling",
]

T = TypeVar("T")

_MAX_EXPONENT = 62  # 2**62 times any wait is past every cap: no overflow however long it fails


class wait_doubling(tenacity.wait.wait_base):
    """tenacity wait strategy: `first` doubling up to `cap`, each wait spread over `spread`.

    The n-th wait (after the n-th failure in a row) is min(cap, c * (low + (high - low) * u))
    with c = min(cap, first * 2**(n-1)), (low, high) = spread and u uniform in [0, 1) from `rand`.
    """

    def __init__(self, first: float, cap: float, spread: tuple[float, float],
                 rand: Callable[[], float] = random.random) -> None:
        self.first = first
        self.cap = cap
        self.spread = spread
        self._rand = rand

    def delay(self, failures: int, rand: float | None = None) -> float:
        """The wait after `failures` failures in a row (1, 2, ...); `rand` in [0, 1) fixes the
        jitter (tests), else it is drawn."""
        exponent = min(max(0, failures - 1), _MAX_EXPONENT)
        nominal = min(self.cap, self.first * 2.0 ** exponent)
        u = self._rand() if rand is None else rand
        low, high = self.spread
        return min(self.cap, nominal * (low + (high - low) * u))

    def __call__(self, retry_state: RetryCallState) -> float:
        return self.delay(retry_state.attempt_number)


class _stop_when(stop_base):
    def __init__(self, until: Callable[[], bool]) -> None:
        self._until = until

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._until()


def _describe(outcome: tenacity.Future | None) -> str:
    if outcome is None:
        return "no outcome"
    if outcome.failed:
        exc = outcome.exception()
        return str(exc) or type(exc).__name__
    return f"returned {outcome.result()!r}"


class RetryLog:
    """tenacity's `before_sleep` hook that logs changes, not repetitions.

    The first failure of a run of failures is logged at `level` (error unless told), the later
    ones at debug; `recovered` logs at info once an attempt succeeds after failures.
    """

    def __init__(self, logger: logging.Logger, what: str, *, level: int = logging.ERROR) -> None:
        self.logger = logger
        self.what = what
        self.level = level

    def __call__(self, retry_state: RetryCallState) -> None:
        wait = retry_state.next_action.sleep if retry_state.next_action is not None else 0.0
        reason = _describe(retry_state.outcome)
        if retry_state.attempt_number == 1:
            self.logger.log(self.level, "%s failed: %s; retrying in %.1f s", self.what, reason,
                            wait)
        else:
            self.logger.debug("%s failed again (attempt %d): %s; retrying in %.1f s", self.what,
                              retry_state.attempt_number, reason, wait)

    def recovered(self, attempts: int) -> None:
        if attempts > 1:
            self.logger.info("%s works again after %d attempts", self.what, attempts)


class RetryOptions(TypedDict, total=False):
    """What a caller may add to a policy when it runs it."""

    retry_on: tuple[type[BaseException], ...]  # errors worth another attempt (Exception)
    retry: retry_base  # or a tenacity retry condition (on results, say) instead
    until: Callable[[], bool]  # stop trying as soon as this says so (the pump went offline)
    level: int  # the first failure's log level (error)
    log_failures: bool  # False where the caller logs changes itself (alarms)
    rand: Callable[[], float]  # the jitter's source, in [0, 1)
    on_give_up: Callable[[RetryCallState], Any]  # what a retry on results returns on giving up


@dataclass(frozen=True)
class RetryPolicy:
    """A named way of retrying: waits from `first` doubling to `cap` seconds, each times a factor
    drawn from `spread`; `attempts` tries at most, or never give up (None)."""

    name: str
    first: float
    cap: float
    spread: tuple[float, float] = (0.8, 1.2)
    attempts: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.first <= self.cap:
            raise ValueError(f"{self.name}: need 0 < first <= cap, got {self.first} and "
                             f"{self.cap}")
        low, high = self.spread
        if not 0 < low <= high:
            raise ValueError(f"{self.name}: the spread needs 0 < low <= high, got {self.spread}")
        if self.attempts is not None and self.attempts < 1:
            raise ValueError(f"{self.name}: attempts must be at least 1, got {self.attempts}")

    def but(self, **changes: Any) -> RetryPolicy:
        """The same policy with some numbers changed (a configured cap, quicker tests)."""
        return replace(self, **changes)

    def wait(self, rand: Callable[[], float] = random.random) -> wait_doubling:
        return wait_doubling(self.first, self.cap, self.spread, rand)

    def stop(self, until: Callable[[], bool] | None = None) -> stop_base:
        """Never, or after `attempts`, or as soon as `until()` says so, whichever comes first."""
        stop: stop_base = (tenacity.stop_never if self.attempts is None
                           else tenacity.stop_after_attempt(self.attempts))
        return stop if until is None else stop | _stop_when(until)

    def _options(self, logger: logging.Logger, what: str,
                 options: RetryOptions) -> dict[str, Any]:
        retry = options.get("retry")
        level = options.get("level", logging.ERROR)
        return {
            "wait": self.wait(options.get("rand", random.random)),
            "stop": self.stop(options.get("until")),
            "retry": retry if retry is not None
            else retry_if_exception_type(options.get("retry_on", (Exception,))),
            "before_sleep": RetryLog(logger, what, level=level)
            if options.get("log_failures", True) else None,
            # The caller sees the real error when it gives up, not tenacity's RetryError; a
            # retry on results (not errors) says what giving up returns instead.
            "reraise": True,
            "retry_error_callback": options.get("on_give_up"),
        }

    def retrying(self, logger: logging.Logger, what: str, *,
                 sleep: Callable[[float], None] = time.sleep,
                 **options: Unpack[RetryOptions]) -> tenacity.Retrying:
        """A tenacity `Retrying` for blocking code (threads); `sleep` may wait on a stop flag."""
        return tenacity.Retrying(sleep=sleep, **self._options(logger, what, options))

    def async_retrying(self, logger: logging.Logger, what: str, *,
                       sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                       **options: Unpack[RetryOptions]) -> tenacity.AsyncRetrying:
        """A tenacity `AsyncRetrying`; cancelling the caller cancels the wait at once."""
        return tenacity.AsyncRetrying(sleep=sleep, **self._options(logger, what, options))

    def call(self, fn: Callable[[], T], logger: logging.Logger, what: str, *,
             sleep: Callable[[float], None] = time.sleep,
             **options: Unpack[RetryOptions]) -> T:
        """`fn()` until it succeeds (or the policy gives up: its last error is raised), the
        recovery logged at info."""
        retrying = self.retrying(logger, what, sleep=sleep, **options)
        result = retrying(fn)
        RetryLog(logger, what).recovered(int(retrying.statistics.get("attempt_number", 1)))
        return result

    async def call_async(self, fn: Callable[[], Awaitable[T]], logger: logging.Logger,
                         what: str, *,
                         sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                         **options: Unpack[RetryOptions]) -> T:
        """`await fn()` until it succeeds (or the policy gives up), the recovery logged."""
        retrying = self.async_retrying(logger, what, sleep=sleep, **options)

        async def attempt() -> T:
            # tenacity awaits only a coroutine *function*; a lambda returning a coroutine
            # would be taken for a plain function and its coroutine returned unawaited.
            return await fn()

        result: T = await retrying(attempt)
        RetryLog(logger, what).recovered(int(retrying.statistics.get("attempt_number", 1)))
        return result


_EQUAL_JITTER = (0.5, 1.0)  # half the wait fixed, half random: never later than the schedule

LINE_RECONNECT = RetryPolicy("line reconnect", first=0.5, cap=30.0, spread=_EQUAL_JITTER)
BROKER_RECONNECT = RetryPolicy("broker reconnect", first=0.5, cap=30.0, spread=_EQUAL_JITTER)
PRINTER_RETRY = RetryPolicy("printer retry", first=1.0, cap=60.0)
PUMP_STARTUP = RetryPolicy("pump start-up", first=1.0, cap=30.0)
SALE_RECORD = RetryPolicy("sale record", first=0.5, cap=10.0)
SERVICE_RESTART = RetryPolicy("service restart", first=1.0, cap=60.0)

POLICIES = {p.name: p for p in (LINE_RECONNECT, BROKER_RECONNECT, PRINTER_RETRY, PUMP_STARTUP,
                                SALE_RECORD, SERVICE_RESTART)}
