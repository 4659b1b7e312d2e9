"""The audit log: who did what, when, and how it ended, in a hash chain.

Each entry's hash is sha256 over a canonical JSON of its fields and the previous entry's hash
(64 zeros before the first), so changing an entry changes its hash and every later prev_hash
stops matching. Rows are only ever inserted: triggers refuse UPDATE and DELETE, and whoever
drops them to tamper with a row still leaves a chain that `verify` shows broken.

The `audit_seq` counter row remembers how many entries were written, so that removing the
newest entries (which leaves a chain that is intact as far as it goes) is found too.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.model import rfc3339
from edge.store.codec import text_time, time_text

GENESIS_HASH = "0" * 64
# verify reads this many rows per read transaction, so that a long log does not hold the
# store's lock (and the sales waiting on it) for the whole check.
VERIFY_BATCH = 1000

_COLUMNS = "seq, at, actor, role, action, target, outcome, details, prev_hash, hash"


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    role: str | None
    action: str
    target: str | None
    outcome: str
    details: dict[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS_HASH
    hash: str = ""

    def to_api(self, zone: Any = None) -> dict[str, Any]:
        at = self.at.astimezone(zone) if zone is not None else self.at
        return {"seq": self.seq, "at": rfc3339(at), "actor": self.actor, "role": self.role,
                "action": self.action, "target": self.target, "outcome": self.outcome,
                "details": self.details, "prev_hash": self.prev_hash, "hash": self.hash}


@dataclass(frozen=True)
class AuditCheck:
    """The outcome of `verify`: `first_broken` is the seq of the first entry that is altered or
    missing, None when the chain is intact."""

    ok: bool
    entries: int
    first_broken: int | None = None
    reason: str | None = None


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return rfc3339(value)
    raise TypeError(f"cannot put {type(value).__name__} in an audit entry")


def canonical_details(details: dict[str, Any] | None) -> str:
    """Details as stored: JSON with sorted keys and no spaces (decimals as plain text)."""
    return json.dumps(storable(details or {}), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, default=_json_default)


def storable_text(text: str) -> str:
    """`text` as UTF-8 can hold it: a lone surrogate (JSON's "\\udc00", which a refused
    request may carry) becomes the six characters of its escape. Every entry is hashed and
    stored as UTF-8, so text that cannot be UTF-8 would otherwise keep the entry out of the log.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def storable(value: Any) -> Any:
    """`value` with every string in it (dict keys too) made `storable_text`."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value


def entry_hash(
    *,
    seq: int,
    at: str,
    actor: str,
    role: str | None,
    action: str,
    target: str | None,
    outcome: str,
    details: dict[str, Any],
    prev_hash: str,
) -> str:
    """sha256 (hex) of the canonical JSON of an entry; `at` is the stored UTC text."""
    body = {"seq": seq, "at": at, "actor": actor, "role": role, "action": action,
            "target": target, "outcome": outcome, "details": details, "prev_hash": prev_hash}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _counter(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM counters WHERE name = 'audit_seq'").fetchone()
    return 0 if row is None else int(row[0])


def _entry(row: tuple[Any, ...]) -> AuditEntry:
    seq, at, actor, role, action, target, outcome, details, prev_hash, hash_ = row
    return AuditEntry(seq=seq, at=text_time(at), actor=actor, role=role, action=action,
                      target=target, outcome=outcome, details=json.loads(details),
                      prev_hash=prev_hash, hash=hash_)


def append(
    conn: sqlite3.Connection,
    now: datetime,
    *,
    actor: str,
    action: str,
    outcome: str,
    role: str | None = None,
    target: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Appends one entry chained to the newest; call inside a write transaction."""
    if not actor or not action or not outcome:
        raise ValueError("an audit entry needs an actor, an action and an outcome")
    actor, action, outcome = storable_text(actor), storable_text(action), storable_text(outcome)
    role = None if role is None else storable_text(role)
    target = None if target is None else storable_text(target)
    text = canonical_details(details)
    parsed: dict[str, Any] = json.loads(text)
    seq = _counter(conn) + 1
    last = conn.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    prev_hash = GENESIS_HASH if last is None else str(last[0])
    at = time_text(now)
    digest = entry_hash(seq=seq, at=at, actor=actor, role=role, action=action, target=target,
                        outcome=outcome, details=parsed, prev_hash=prev_hash)
    conn.execute(
        f"INSERT INTO audit ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, at, actor, role, action, target, outcome, text, prev_hash, digest),
    )
    conn.execute("UPDATE counters SET value = ? WHERE name = 'audit_seq'", (seq,))
    return AuditEntry(seq=seq, at=text_time(at), actor=actor, role=role, action=action,
                      target=target, outcome=outcome, details=parsed, prev_hash=prev_hash,
                      hash=digest)


def since(conn: sqlite3.Connection, since_seq: int, limit: int) -> list[AuditEntry]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", (since_seq, limit)
    )
    return [_entry(r) for r in rows]


@dataclass
class Verifier:
    """Checks the chain batch by batch (`feed`), then the count (`finish`)."""

    expected_seq: int = 1
    prev_hash: str = GENESIS_HASH
    entries: int = 0
    broken: AuditCheck | None = None

    def feed(self, rows: list[tuple[Any, ...]]) -> None:
        for row in rows:
            if self.broken is not None:
                return
            self._check(row)

    def _fail(self, seq: int, reason: str) -> None:
        self.broken = AuditCheck(ok=False, entries=self.entries, first_broken=seq, reason=reason)

    def _check(self, row: tuple[Any, ...]) -> None:
        seq, at, actor, role, action, target, outcome, details, prev_hash, hash_ = row
        if seq != self.expected_seq:
            missing = self.expected_seq
            last = f"{missing}" if seq == missing + 1 else f"{missing} to {seq - 1}"
            self._fail(missing, f"entry {last} missing (the next one is {seq})")
            return
        if prev_hash != self.prev_hash:
            self._fail(seq, "prev_hash does not match the hash of the entry before")
            return
        try:
            parsed = json.loads(details)
            digest = entry_hash(seq=seq, at=at, actor=actor, role=role, action=action,
                                target=target, outcome=outcome, details=parsed,
                                prev_hash=prev_hash)
        except (TypeError, ValueError):
            self._fail(seq, "the entry cannot be read")
            return
        if digest != hash_:
            self._fail(seq, "the entry's contents do not match its hash")
            return
        self.entries += 1
        self.expected_seq = seq + 1
        self.prev_hash = hash_

    def finish(self, written: int) -> AuditCheck:
        if self.broken is not None:
            return self.broken
        if written >= self.expected_seq:
            self._fail(self.expected_seq, f"{written - self.entries} newest entries missing "
                       f"({written} were written)")
            assert self.broken is not None
            return self.broken
        return AuditCheck(ok=True, entries=self.entries)


def batch(conn: sqlite3.Connection, after_seq: int, limit: int) -> list[tuple[Any, ...]]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
    )
    return list(rows)


def written(conn: sqlite3.Connection) -> int:
    """How many entries were ever appended (the counter, not the rows left)."""
    return _counter(conn)
