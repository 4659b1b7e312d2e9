"""Local sessions and what each role may do (CONTRACT section 3).

Tokens live in memory: a daemon restart logs everybody out, which is what a station expects
after a restart anyway, and no token ever sits on disk. PINs are checked by the store (hashed,
with lockout after repeated failures).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from domain.model import Role


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


_R = Role
_P = Permission

#: Who may do what. Each role's line lists everything it may do, so the table reads on its own.
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    _R.ATTENDANT: frozenset({_P.READ, _P.AUTHORIZE, _P.STOP}),
    _R.CASHIER: frozenset({_P.READ, _P.AUTHORIZE, _P.STOP, _P.PAYMENT, _P.RECEIPT}),
    _R.MANAGER: frozenset({_P.READ, _P.AUTHORIZE, _P.STOP, _P.PAYMENT, _P.RECEIPT, _P.PRICES,
                           _P.SHIFT_CLOSE, _P.USERS, _P.AUDIT}),
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


class Sessions:
    def __init__(self, ttl: timedelta, clock: Callable[[], datetime]) -> None:
        self._ttl = ttl
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, user: str, role: Role) -> Session:
        session = Session(secrets.token_urlsafe(32), user, role, self._clock() + self._ttl)
        with self._lock:
            self._expire()
            self._sessions[session.token] = session
        return session

    def get(self, token: str) -> Session | None:
        with self._lock:
            session = self._sessions.get(token)
            if session is not None and session.expires_at <= self._clock():
                del self._sessions[token]
                return None
            return session

    def close(self, token: str) -> None:
        with self._lock:
            self._sessions.pop(token, None)

    def _expire(self) -> None:
        now = self._clock()
        for token in [t for t, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[token]

    def __len__(self) -> int:
        return len(self._sessions)
