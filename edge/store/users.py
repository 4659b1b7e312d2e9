"""Local users and their PINs.

PINs are short, so the hash has to be slow: scrypt (RFC 7914) with a random 16-byte salt per
user, stored as "scrypt$N$r$p$salt$hash" so the cost can be raised later without breaking old
rows. Hashing takes tens of milliseconds, so callers do it outside the store's lock (see
`hash_pin`/`pin_matches`) and only read or write rows under it.

Lockout: after `max_attempts` wrong PINs in a row the user is locked until now + lockout;
while locked the PIN is not even checked. A right PIN resets the count.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import sqlite3
from datetime import datetime, timedelta
from typing import Any

from domain.model import Role, User
from edge.store.codec import opt_text_time, text_time, time_text

_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_DIGEST_BYTES = 32
_PIN = re.compile(r"[0-9]{4,12}")
# A fixed hash to check unknown names against, so that the answer takes as long as for a
# known name and does not tell which names exist.
_DUMMY_SALT = b"forecourt-nobody"


def check_pin_format(pin: str) -> None:
    if not isinstance(pin, str) or _PIN.fullmatch(pin) is None:
        raise ValueError("a PIN is 4 to 12 digits")


def check_name(name: str) -> None:
    if not isinstance(name, str) or not 1 <= len(name) <= 64 or name != name.strip():
        raise ValueError("a user name is 1 to 64 characters without leading or trailing spaces")
    if any(not ch.isprintable() for ch in name):
        raise ValueError("a user name cannot contain control characters")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _scrypt(pin: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(pin.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length)


def hash_pin(pin: str) -> str:
    salt = os.urandom(16)
    digest = _scrypt(pin, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _DIGEST_BYTES)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def pin_matches(pin: str, stored: str | None) -> bool:
    """Constant-time check of `pin` against a stored hash; None checks a dummy and fails."""
    if stored is None:
        _scrypt(pin, _DUMMY_SALT, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _DIGEST_BYTES)
        return False
    scheme, n, r, p, salt, digest = stored.split("$")
    if scheme != "scrypt":
        raise ValueError(f"unknown PIN hash scheme {scheme!r}")
    expected = base64.b64decode(digest)
    actual = _scrypt(pin, base64.b64decode(salt), int(n), int(r), int(p), len(expected))
    return hmac.compare_digest(actual, expected)


def _user(row: tuple[Any, ...], now: datetime) -> User:
    name, role, created, locked = row
    until = opt_text_time(locked)
    return User(
        name=name,
        role=Role(role),
        created_at=text_time(created),
        locked_until=until if until is not None and until > now else None,
    )


def get(conn: sqlite3.Connection, now: datetime, name: str) -> User | None:
    row = conn.execute(
        "SELECT name, role, created_at, locked_until FROM users WHERE name = ?", (name,)
    ).fetchone()
    return None if row is None else _user(row, now)


def list_all(conn: sqlite3.Connection, now: datetime) -> list[User]:
    rows = conn.execute("SELECT name, role, created_at, locked_until FROM users ORDER BY name")
    return [_user(r, now) for r in rows]


def upsert(conn: sqlite3.Connection, now: datetime, name: str, role: Role, pin_hash: str) -> User:
    """Creates the user or sets a new role and PIN; a new PIN also lifts a lockout."""
    stamp = time_text(now)
    conn.execute(
        "INSERT INTO users (name, role, pin_hash, failed_attempts, locked_until, created_at, "
        "updated_at) VALUES (?, ?, ?, 0, NULL, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET role = excluded.role, pin_hash = excluded.pin_hash, "
        "failed_attempts = 0, locked_until = NULL, updated_at = excluded.updated_at",
        (name, str(role), pin_hash, stamp, stamp),
    )
    user = get(conn, now, name)
    assert user is not None
    return user


def credentials(conn: sqlite3.Connection, name: str) -> tuple[str, datetime | None] | None:
    """(PIN hash, locked until) of a user, or None for an unknown name."""
    row = conn.execute(
        "SELECT pin_hash, locked_until FROM users WHERE name = ?", (name,)
    ).fetchone()
    return None if row is None else (row[0], opt_text_time(row[1]))


def record_attempt(
    conn: sqlite3.Connection,
    now: datetime,
    name: str,
    *,
    success: bool,
    max_attempts: int,
    lockout: timedelta,
) -> tuple[User | None, datetime | None]:
    """Counts one PIN attempt: (the user, None) on success, (None, locked until) when the user
    is (now) locked, (None, None) for a wrong PIN that leaves attempts."""
    row = conn.execute(
        "SELECT failed_attempts, locked_until FROM users WHERE name = ?", (name,)
    ).fetchone()
    if row is None:  # removed meanwhile
        return None, None
    locked = opt_text_time(row[1])
    if locked is not None and locked > now:
        return None, locked
    if success:
        conn.execute(
            "UPDATE users SET failed_attempts = 0, locked_until = NULL WHERE name = ?", (name,)
        )
        return get(conn, now, name), None
    failures = row[0] + 1
    if failures >= max_attempts:
        until = now + lockout
        conn.execute(
            "UPDATE users SET failed_attempts = 0, locked_until = ? WHERE name = ?",
            (time_text(until), name),
        )
        return None, until
    conn.execute(
        "UPDATE users SET failed_attempts = ?, locked_until = NULL WHERE name = ?",
        (failures, name),
    )
    return None, None
