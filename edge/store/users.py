"""Local users: their rows, PIN hashes and the rules for their names.

PINs are short, so the hash has to be slow: scrypt (RFC 7914) with a random 16-byte salt per
user, stored as "scrypt$N$r$p$salt$hash" so the cost can be raised later without breaking old
rows. Hashing takes tens of milliseconds: the store never hashes under its lock, and the daemon
never hashes on the ledger's writer thread (edge/api/logins.py runs `pin_matches` and
`hash_pin` on worker threads of its own choosing and hands the store a finished hash).

Wrong PINs are not counted here: login throttling lives in the daemon's memory
(edge/api/throttle.py), so a restart lifts it and nothing a stranger types is written per try.
The old `failed_attempts` and `locked_until` columns are no longer read or written.

A user's `updated_at` changes with every change of role, PIN or disabled state: it is the stamp
a session remembers, and a session whose user's stamp moved on has ended (edge/api/auth.py).

Names (docs/security.md, "Logins, sessions and users"): 1 to 64 printable characters, in their
NFKC form, from one script (Chinese names are welcome; `李a` or a Latin name with a Cyrillic
letter are not), and not confusable with another user's name by Unicode's confusable skeletons
(UTS #39, computed by ICU's spoof checker through PyICU), case ignored: `rоot` (Cyrillic о) is
refused beside `root`, and so is `Root`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import re
import sqlite3
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from domain.model import Role, User
from edge.store import meta
from edge.store.codec import opt_text_time, text_time, time_text
from edge.store.errors import UnknownUser, translate

_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_DIGEST_BYTES = 32
_PIN = re.compile(r"[0-9]{4,12}")
# A fixed hash to check unknown names against, so that the answer takes as long as for a
# known name and does not tell which names exist.
_DUMMY_SALT = b"forecourt-nobody"
# meta rows "login.unlock:<name>" = when a person lifted that user's login throttling from
# the command line; the daemon applies each one once (edge/api/logins.py).
_UNLOCK = "login.unlock:"
_UNLOCK_END = "login.unlock;"  # ";" follows ":" in code point order: the range of those keys


class UserNameRefused(ValueError):
    """A name the station will not give a user; `code` says why (`invalid_user` or
    `user_name_confusable`), `existing` names the user it looks like."""

    def __init__(self, message: str, *, code: str = "invalid_user",
                 existing: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.existing = existing


@dataclass(frozen=True)
class LoginRecord:
    """What a login needs to know of a user; never leaves the daemon."""

    name: str
    role: Role
    pin_hash: str
    stamp: str  # updated_at as stored: the session's stamp
    disabled: bool


@dataclass(frozen=True)
class Account:
    """A user as the users screen shows them (no hash)."""

    name: str
    role: Role
    created_at: datetime
    updated_at: datetime
    disabled_at: datetime | None


# ----------------------------------------------------------------- PINs


def check_pin_format(pin: str) -> None:
    if not isinstance(pin, str) or _PIN.fullmatch(pin) is None:
        raise ValueError("a PIN is 4 to 12 digits")


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


# ----------------------------------------------------------------- names


@functools.cache
def _spoof_checker() -> Any:
    # Imported on first use: ICU's data is only needed when a user is saved.
    import icu

    checker = icu.SpoofChecker()
    # One script per name (a resolved script set that is not empty, UTS #39 section 5.2:
    # Han with Bopomofo, Hiragana/Katakana or Hangul counts as one), no invisible characters,
    # no digits from two systems.
    checker.setRestrictionLevel(icu.URestrictionLevel.SINGLE_SCRIPT_RESTRICTIVE)
    checker.setChecks(icu.USpoofChecks.RESTRICTION_LEVEL | icu.USpoofChecks.INVISIBLE
                      | icu.USpoofChecks.MIXED_NUMBERS)
    return checker


def name_key(name: str) -> str:
    """The name's confusable skeleton (UTS #39 section 4), case folded first: two names with
    the same key look alike to a person and are not both given."""
    folded = unicodedata.normalize("NFKC", name.casefold())
    skeleton: str = _spoof_checker().getSkeleton(0, folded)
    return skeleton


def check_name(name: str) -> None:
    """Raises UserNameRefused for a name no user may have, whoever else exists."""
    if not isinstance(name, str) or not 1 <= len(name) <= 64 or name != name.strip():
        raise UserNameRefused(
            "a user name is 1 to 64 characters without leading or trailing spaces")
    if any(not ch.isprintable() for ch in name):
        raise UserNameRefused("a user name cannot contain control or invisible characters")
    normal = unicodedata.normalize("NFKC", name)
    if normal != name:
        raise UserNameRefused(f"write the name in its ordinary form: {normal!r}")
    if _spoof_checker().check(name) != 0:
        raise UserNameRefused(
            "a user name is written in one script (Chinese, Latin, ...), not a mix of them")


def check_not_confusable(conn: sqlite3.Connection, name: str) -> None:
    """Raises UserNameRefused (code `user_name_confusable`) when another user's name looks
    like `name`; the same name is an update, not a look-alike."""
    key = name_key(name)
    for (other,) in conn.execute("SELECT name FROM users WHERE name != ?", (name,)):
        if name_key(other) == key:
            raise UserNameRefused(f"{name!r} looks like the existing user {other!r}",
                                  code="user_name_confusable", existing=other)


# ----------------------------------------------------------------- rows


def _user(row: tuple[Any, ...]) -> User:
    name, role, created = row
    # locked_until: wrong PINs are throttled in the daemon's memory now, never stored.
    return User(name=name, role=Role(role), created_at=text_time(created), locked_until=None)


def _account(row: tuple[Any, ...]) -> Account:
    name, role, created, updated, disabled = row
    return Account(name=name, role=Role(role), created_at=text_time(created),
                   updated_at=text_time(updated), disabled_at=opt_text_time(disabled))


def get(conn: sqlite3.Connection, name: str) -> User | None:
    row = conn.execute(
        "SELECT name, role, created_at FROM users WHERE name = ?", (name,)
    ).fetchone()
    return None if row is None else _user(row)


def list_all(conn: sqlite3.Connection) -> list[User]:
    rows = conn.execute("SELECT name, role, created_at FROM users ORDER BY name")
    return [_user(r) for r in rows]


_ACCOUNT = "SELECT name, role, created_at, updated_at, disabled_at FROM users"


def account(conn: sqlite3.Connection, name: str) -> Account | None:
    row = conn.execute(f"{_ACCOUNT} WHERE name = ?", (name,)).fetchone()
    return None if row is None else _account(row)


def accounts(conn: sqlite3.Connection) -> list[Account]:
    return [_account(r) for r in conn.execute(f"{_ACCOUNT} ORDER BY name")]


def save(conn: sqlite3.Connection, now: datetime, name: str, role: Role, pin_hash: str) -> User:
    """Creates the user or sets a new role and PIN (a change: their sessions end). Raises
    UserNameRefused for a new name that looks like an existing one."""
    check_not_confusable(conn, name)
    stamp = time_text(now)
    conn.execute(
        "INSERT INTO users (name, role, pin_hash, failed_attempts, locked_until, created_at, "
        "updated_at) VALUES (?, ?, ?, 0, NULL, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET role = excluded.role, pin_hash = excluded.pin_hash, "
        "updated_at = excluded.updated_at",
        (name, str(role), pin_hash, stamp, stamp),
    )
    user = get(conn, name)
    assert user is not None
    return user


def set_disabled(conn: sqlite3.Connection, now: datetime, name: str, disabled: bool) -> Account:
    """Disables (their sessions end, logins are refused) or enables a user; doing what is
    already done changes nothing. Raises UnknownUser."""
    found = account(conn, name)
    if found is None:
        raise UnknownUser(name)
    if (found.disabled_at is not None) == disabled:
        return found
    stamp = time_text(now)
    conn.execute("UPDATE users SET disabled_at = ?, updated_at = ? WHERE name = ?",
                 (stamp if disabled else None, stamp, name))
    changed = account(conn, name)
    assert changed is not None
    return changed


def login_record(conn: sqlite3.Connection, name: str) -> LoginRecord | None:
    row = conn.execute(
        "SELECT name, role, pin_hash, updated_at, disabled_at FROM users WHERE name = ?",
        (name,),
    ).fetchone()
    if row is None:
        return None
    return LoginRecord(name=row[0], role=Role(row[1]), pin_hash=row[2], stamp=row[3],
                       disabled=row[4] is not None)


def stamps(conn: sqlite3.Connection) -> dict[str, str]:
    """name -> stamp of every user who may have a session (disabled users are left out)."""
    rows = conn.execute("SELECT name, updated_at FROM users WHERE disabled_at IS NULL")
    return {name: stamp for name, stamp in rows}


def request_unlock(conn: sqlite3.Connection, now: datetime, name: str) -> None:
    """Leaves word for the daemon to lift `name`'s login throttling. Raises UnknownUser."""
    if get(conn, name) is None:
        raise UnknownUser(name)
    meta.put(conn, _UNLOCK + name, time_text(now))


def unlock_requests(conn: sqlite3.Connection) -> dict[str, str]:
    """name -> when its latest unlock was asked for (stored time text)."""
    rows = conn.execute("SELECT key, value FROM meta WHERE key >= ? AND key < ?",
                        (_UNLOCK, _UNLOCK_END))
    return {key[len(_UNLOCK):]: value for key, value in rows}


class UserReader:
    """What logins and sessions read of the users, on a read-only connection of its own per
    read: in WAL mode it reads while the ledger writes, so a login or a session check never
    waits behind a sale being committed, nor behind a write stuck on a locked database (the
    store's own connection is shared under one lock with the writer thread). Any thread may
    call it; each call opens and closes its connection (well under a millisecond)."""

    def __init__(self, path: Path, *, busy_timeout_ms: int = 2000) -> None:
        self.path = path
        self._busy_timeout = busy_timeout_ms / 1000

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                   timeout=self._busy_timeout)
        except sqlite3.Error as exc:
            raise translate(exc) from exc
        try:
            yield conn
        except sqlite3.Error as exc:
            raise translate(exc) from exc
        finally:
            conn.close()

    def login_record(self, name: str) -> LoginRecord | None:
        with self._reading() as conn:
            return login_record(conn, name)

    def stamps(self) -> dict[str, str]:
        with self._reading() as conn:
            return stamps(conn)

    def unlock_requests(self) -> dict[str, str]:
        with self._reading() as conn:
            return unlock_requests(conn)
