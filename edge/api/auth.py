"""Local sessions and what each role may do (CONTRACT section 3).

Tokens live in memory: a daemon restart logs everybody out, which is what a station expects
after a restart anyway, and no token ever sits on disk. PINs are checked by the login desk
(edge/api/logins.py), off the ledger's writer thread and behind the login throttle.

A session remembers its user's stamp (the row's `updated_at`) and ends when the stamp moves on:
a new role or PIN, or the user disabled, through the API (at once: `end_user`) or through the
command line while the daemon runs (seen by `refresh`, which reads every user's stamp in one
query at most once a second, whatever the number of requests).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from domain.model import Role

log = logging.getLogger(__name__)

#: How old the known user stamps may be before a request reads them again.
RECHECK_SECONDS = 1.0


class Permission(StrEnum):
    READ = "read"
    AUTHORIZE = "authorize"
    STOP = "stop"
    PAYMENT = "payment"
    RECEIPT = "receipt"
    PRICES = "prices"
    SHIFT_CLOSE = "shift_close"
    USERS = "users"
    AUDIT = "audit"
    SERVICE = "service"  # release a pump from out of service, settle recovery reviews


_R = Role
_P = Permission

#: Who may do what. Each role's line lists everything it may do, so the table reads on its own.
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    _R.ATTENDANT: frozenset({_P.READ, _P.AUTHORIZE, _P.STOP}),
    _R.CASHIER: frozenset({_P.READ, _P.AUTHORIZE, _P.STOP, _P.PAYMENT, _P.RECEIPT}),
    _R.MANAGER: frozenset({_P.READ, _P.AUTHORIZE, _P.STOP, _P.PAYMENT, _P.RECEIPT, _P.PRICES,
                           _P.SHIFT_CLOSE, _P.USERS, _P.AUDIT, _P.SERVICE}),
    _R.FINANCE: frozenset({_P.READ, _P.AUDIT}),
    _R.ADMIN: frozenset(Permission),
}


def may(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


@dataclass(frozen=True)
class Session:
    token: str
    user: str
    role: Role
    expires_at: datetime
    stamp: str = ""  # the user's updated_at when they logged in
    opened: float = 0.0  # time.monotonic() at login


@dataclass
class LoginCounters:
    """Logins since the daemon started, by outcome (GET /metrics)."""

    opened: int = 0
    wrong_pin: int = 0  # a known user, a wrong PIN (or a disabled user)
    unknown_user: int = 0
    throttled: int = 0  # refused by the login throttle before any PIN was checked (429)
    busy: int = 0  # refused because too many PINs were being checked already (503)

    def failures(self) -> dict[str, int]:
        return {"wrong_pin": self.wrong_pin, "unknown_user": self.unknown_user,
                "throttled": self.throttled, "busy": self.busy}


StampLoader = Callable[[], Awaitable[dict[str, str]]]


class Sessions:
    def __init__(self, ttl: timedelta, clock: Callable[[], datetime]) -> None:
        self._ttl = ttl
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self.counters = LoginCounters()
        # The users' stamps as last read, and when that read started (monotonic).
        self._stamps: dict[str, str] = {}
        self._stamps_as_of = float("-inf")
        self._refreshing = asyncio.Lock()

    def open(self, user: str, role: Role, stamp: str = "") -> Session:
        session = Session(secrets.token_urlsafe(32), user, role, self._clock() + self._ttl,
                          stamp, time.monotonic())
        with self._lock:
            self._expire()
            self._sessions[session.token] = session
        return session

    def get(self, token: str) -> Session | None:
        """The session of `token` while it is valid (by the stamps known now)."""
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            if session.expires_at <= self._clock() or not self._current(session):
                del self._sessions[token]
                return None
            return session

    def _current(self, session: Session) -> bool:
        # A session opened after the last read of the stamps began is judged by the next
        # read: its stamp may be newer than what that read saw.
        if session.opened >= self._stamps_as_of:
            return True
        return self._stamps.get(session.user) == session.stamp

    async def refresh(self, load: StampLoader, *, max_age: float = RECHECK_SECONDS) -> None:
        """Reads every user's stamp again when the known ones are older than `max_age`;
        concurrent callers share one read. A read that fails keeps the stamps known."""
        if time.monotonic() - self._stamps_as_of < max_age:
            return
        async with self._refreshing:
            started = time.monotonic()
            if started - self._stamps_as_of < max_age:
                return  # another request read them meanwhile
            try:
                stamps = await load()
            except Exception as exc:  # the next request tries again
                log.warning("cannot read the users' stamps, sessions judged by the last "
                            "ones read: %s", exc)
                return
            with self._lock:
                self._stamps = stamps
                self._stamps_as_of = started

    def end_user(self, user: str) -> int:
        """Ends every session of `user` now; returns how many there were."""
        with self._lock:
            tokens = [t for t, s in self._sessions.items() if s.user == user]
            for token in tokens:
                del self._sessions[token]
        return len(tokens)

    def close(self, token: str) -> None:
        with self._lock:
            self._sessions.pop(token, None)

    def _expire(self) -> None:
        now = self._clock()
        for token in [t for t, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[token]

    def __len__(self) -> int:
        return len(self._sessions)
