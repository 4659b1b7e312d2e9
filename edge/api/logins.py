"""The login desk: `POST /api/v1/session` from the address that asks to the session it gets.

A login must never slow the forecourt down. So:

- the throttle (edge/api/throttle.py) answers first, from memory, before anything is read or
  hashed: a flood from one address is refused at once (429 `login_throttled`);
- PINs are hashed on worker threads of the event loop's pool, never on the ledger's writer
  thread that records sales: at most `workers` hashes at once (one on a two-core station PC, so
  a flood leaves the other core to the forecourt), at most `waiting` more queued, and addresses
  that never logged in share a budget of STRANGER_CHECKS_PER_SECOND; beyond that a login is
  refused (503 `login_busy`) rather than queued;
- a refusal that checked no PIN (429, 503) is answered late (a second; more while many are
  held, so that refusals leave at about 50 a second), so that a client that waits for its
  answers (most scripts do) floods a trickle;
- the user's row is read on a read-only connection of its own (`UserReader`), which neither
  writes nor waits behind the ledger's writer;
- nothing is written per failed try of a name nobody has: those, and the throttled and busy
  refusals, are counted (GET /metrics) and summed up in one audit entry at most once a minute
  (`session.failures`, written with the next login after the minute). A wrong PIN of a known
  user is one `session.failed` entry, written after the answer has left, so the answer takes
  as long whether the name exists or not; the throttle bounds how many there can be.

An unknown name, a wrong PIN and a disabled user get the same answer (401 `bad_credentials`),
after the same scrypt work, and the throttle counts every name alike: the answers never tell
which names exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from edge.api.auth import LoginCounters, Session, Sessions
from edge.api.throttle import LoginThrottle, ThrottlePolicy
from edge.audit import SYSTEM, record
from edge.store.users import UserReader, hash_pin, pin_matches

if TYPE_CHECKING:
    from edge.config import Api
    from edge.ledger import Ledger

log = logging.getLogger(__name__)

#: How often failures that are not written one by one are summed up in the audit log.
SUMMARY_SECONDS = 60.0
#: How often the desk looks for unlocks asked from the command line.
UNLOCK_POLL_SECONDS = 1.0
#: Addresses named in a summary entry (the ones with most refusals).
SUMMARY_ADDRESSES = 10
#: A refusal without a PIN check (429, 503) is answered late: a second, longer while many are
#: held so that refusals leave at about HOLD_RATE a second whatever the number of flooding
#: clients, never longer than HOLD_LONGEST; beyond HOLD_AT_MOST held, at once.
HOLD_SECONDS = 1.0
HOLD_LONGEST = 10.0
HOLD_RATE = 50.0
HOLD_AT_MOST = 1024
#: PIN checks for addresses that never logged in, all of them together: a steady rate and a
#: burst. scrypt is slow on purpose (and memory-hard: it crowds the caches of a small PC), so
#: strangers get a share of it, not all of it; consoles that logged in are not counted here.
STRANGER_CHECKS_PER_SECOND = 2.0
STRANGER_CHECKS_BURST = 6.0

Defer = Callable[..., Any]  # BackgroundTasks.add_task: runs after the answer has left


class LoginRefused(Exception):
    """A login that gets no session: the answer's status, code and message; `retry_after`
    (seconds) goes into the Retry-After header."""

    def __init__(self, status: int, code: str, message: str,
                 retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.retry_after = retry_after


def bad_credentials() -> LoginRefused:
    return LoginRefused(401, "bad_credentials", "unknown user or wrong PIN")


def default_workers() -> int:
    """PIN hashes at once: all cores but one (one at least, two at most)."""
    return max(1, min(2, (os.cpu_count() or 2) - 1))


def throttle_policy(api: Api) -> ThrottlePolicy:
    return ThrottlePolicy(pair_attempts=api.pin_lockout_attempts,
                          address_attempts=api.pin_address_attempts,
                          longest_wait=api.pin_lockout.total_seconds())


class PinChecker:
    """PIN hashes on the loop's worker threads, `workers` at once, `waiting` more queued."""

    def __init__(self, workers: int | None = None, waiting: int = 8) -> None:
        self.workers = workers or default_workers()
        self.capacity = self.workers + waiting
        self._slots = asyncio.Semaphore(self.workers)
        self._admitted = 0

    @property
    def admitted(self) -> int:
        return self._admitted

    def has_room(self) -> bool:
        return self._admitted < self.capacity

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        """Holds one of the `capacity` places while a login reads and hashes."""
        self._admitted += 1
        try:
            yield
        finally:
            self._admitted -= 1

    async def matches(self, pin: str, stored: str | None) -> bool:
        async with self._slots:
            return await asyncio.get_running_loop().run_in_executor(
                None, pin_matches, pin, stored)

    async def hash(self, pin: str) -> str:
        async with self._slots:
            return await asyncio.get_running_loop().run_in_executor(None, hash_pin, pin)


class Budget:
    """A token bucket: `rate` a second, `burst` at most; time is passed in."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst = rate, burst
        self._tokens = burst
        self._at = now

    def take(self, now: float) -> bool:
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class LoginDesk:
    def __init__(self, *, ledger: Ledger, sessions: Sessions, policy: ThrottlePolicy,
                 checker: PinChecker | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 summary_every: float = SUMMARY_SECONDS) -> None:
        self.ledger = ledger
        self.reader = UserReader(ledger.store.path)
        self.sessions = sessions
        self.throttle = LoginThrottle(policy)
        self.checker = checker or PinChecker()
        self.clock = clock
        self.summary_every = summary_every
        self._unlocks_seen: dict[str, str] = {}
        self._unlocks_polled = float("-inf")
        self._polling = False
        # Counted since the last summary entry: what is not written one by one.
        self._summary_from = clock()
        self._untold: Counter[str] = Counter()
        self._untold_addresses: Counter[str] = Counter()
        self._held = 0
        self._strangers = Budget(STRANGER_CHECKS_PER_SECOND, STRANGER_CHECKS_BURST, clock())

    @property
    def counters(self) -> LoginCounters:
        return self.sessions.counters

    async def open_session(self, address: str, name: str, pin: str, defer: Defer) -> Session:
        """A session for `name`, or LoginRefused. `defer` takes audit writes that may wait
        until the answer has left."""
        await self._apply_unlocks()
        self._summary_due(defer)
        now = self.clock()
        verdict = self.throttle.check(now, address, name)
        if not verdict.allowed:
            self._untell("throttled", address)
            self.counters.throttled += 1
            wait = max(1, math.ceil(verdict.retry_after))
            log.debug("login of %r from %s throttled (%s) for %d s", name, address,
                      verdict.reason, wait)
            await self._hold(verdict.retry_after)
            raise LoginRefused(429, "login_throttled",
                               f"too many wrong PINs; try again in {wait} s", wait)
        if not self.checker.has_room() or (
                not self.throttle.trusted(now, address) and not self._strangers.take(now)):
            self._untell("busy", address)
            self.counters.busy += 1
            await self._hold(HOLD_LONGEST)
            raise LoginRefused(503, "login_busy",
                               "too many logins at once; try again in a moment", 1)
        with self.checker.admit():  # no await since has_room(): there is room
            self.throttle.begin(now, address, name)
            found = await asyncio.to_thread(self.reader.login_record, name)
            right = await self.checker.matches(pin, None if found is None else found.pin_hash)
        if found is None:
            self._untell("unknown_user", address)
            self.counters.unknown_user += 1
            raise bad_credentials()
        if not right or found.disabled:
            self.counters.wrong_pin += 1
            defer(record, self.ledger, actor=name, action="session.failed",
                  outcome="user_disabled" if right else "bad_credentials",
                  details={"address": address})
            raise bad_credentials()
        self.throttle.succeeded(self.clock(), address, name)
        self.counters.opened += 1
        session = self.sessions.open(found.name, found.role, found.stamp)
        await record(self.ledger, actor=found.name, role=found.role.value,
                     action="session.open", details={"address": address})
        return session

    async def _hold(self, at_most: float) -> None:
        """Answers a refusal late, never later than `at_most` (when it could be tried again):
        a client that sends its next login when it has the answer to the last (most scripts
        do) then sends one a second, or fewer while many are held, instead of hundreds, and
        the forecourt keeps the event loop. A held refusal costs a timer and its connection;
        beyond HOLD_AT_MOST held at once, refusals are answered at once."""
        if self._held >= HOLD_AT_MOST:
            return
        seconds = min(at_most, HOLD_LONGEST, max(HOLD_SECONDS, self._held / HOLD_RATE))
        self._held += 1
        try:
            await asyncio.sleep(seconds)
        finally:
            self._held -= 1

    async def read_stamps(self) -> dict[str, str]:
        """Every user's session stamp (Sessions.refresh), read beside the writer."""
        return await asyncio.to_thread(self.reader.stamps)

    def unlock(self, name: str) -> int:
        """Lifts the throttling of `name`; how many addresses were waiting for it."""
        return self.throttle.unlock(name)

    def status(self, name: str) -> tuple[int, float | None]:
        """(addresses over their free attempts for `name`, seconds until addresses that never
        logged in may try it again; None while they may)."""
        now = self.clock()
        over, until = self.throttle.name_status(now, name)
        return over, None if until is None else until - now

    # ------------------------------------------------------------- unlocks from the CLI

    async def _apply_unlocks(self) -> None:
        now = self.clock()
        if self._polling or now - self._unlocks_polled < UNLOCK_POLL_SECONDS:
            return
        self._polling = True
        try:
            asked = await asyncio.to_thread(self.reader.unlock_requests)
        except Exception as exc:  # tried again with the next login
            log.warning("cannot read the unlocks asked from the command line: %s", exc)
            return
        finally:
            self._polling = False
            self._unlocks_polled = now
        for name, at in asked.items():
            if self._unlocks_seen.get(name) != at:
                self._unlocks_seen[name] = at
                if self.throttle.unlock(name):
                    log.info("login throttling of %r lifted from the command line", name)

    # ------------------------------------------------------------- the summary entry

    def _untell(self, what: str, address: str) -> None:
        self._untold[what] += 1
        self._untold_addresses[address] += 1

    def _summary_due(self, defer: Defer) -> None:
        now = self.clock()
        if now - self._summary_from < self.summary_every:
            return
        if self._untold:
            seconds = round(now - self._summary_from)
            details: dict[str, Any] = {
                "seconds": seconds, **{k: v for k, v in sorted(self._untold.items())},
                "addresses": dict(self._untold_addresses.most_common(SUMMARY_ADDRESSES)),
                "address_count": len(self._untold_addresses)}
            defer(record, self.ledger, actor=SYSTEM, action="session.failures",
                  outcome="counted", details=details)
        self._summary_from = now
        self._untold.clear()
        self._untold_addresses.clear()

