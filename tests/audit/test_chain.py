"""The audit log's hash chain (docs/audit.md): written, read back, verified, tampered with."""

from __future__ import annotations

import hashlib
import itertools
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from edge.store import Store, StoreError
from edge.store.audit import GENESIS_HASH, AuditCheck, entry_hash

from .conftest import fill, tamper


def test_first_entry_hash_is_sha256_of_the_documented_canonical_json(store: Store) -> None:
    entry = store.audit_append(actor="ann", role="manager", action="pump.stop", target="2",
                               outcome="ok", details={"status": 202, "b": [1, "x"]})
    # Written by hand from docs/audit.md: sorted keys, no spaces, at in stored UTC text.
    canonical = (
        '{"action":"pump.stop","actor":"ann","at":"2026-11-22T01:15:01.000000+00:00",'
        '"details":{"b":[1,"x"],"status":202},"outcome":"ok",'
        '"prev_hash":"' + "0" * 64 + '","role":"manager","seq":1,"target":"2"}'
    )
    assert entry.seq == 1
    assert entry.prev_hash == GENESIS_HASH
    assert entry.hash == hashlib.sha256(canonical.encode()).hexdigest()


def test_entries_chain_and_read_back(store: Store) -> None:
    fill(store, 3)
    second = store.audit_append(actor="cloud", action="command.price.set", outcome="expired",
                                details={"price": Decimal("7.50")})
    entries = store.audit_entries()
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.hash
    assert entries[-1] == second
    assert entries[-1].details == {"price": "7.50"}
    assert entries[-1].role is None and entries[-1].outcome == "expired"
    assert [e.seq for e in store.audit_entries(since_seq=2, limit=1)] == [3]
    assert store.audit_verify() == AuditCheck(ok=True, entries=4)


def test_empty_log_verifies(store: Store) -> None:
    assert store.audit_verify() == AuditCheck(ok=True, entries=0)


def test_the_store_refuses_update_and_delete(store: Store, db_path: Path) -> None:
    fill(store, 2)
    conn = sqlite3.connect(db_path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE audit SET outcome = 'ok' WHERE seq = 1")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM audit WHERE seq = 2")
    finally:
        conn.close()
    assert store.audit_verify().ok


def test_tampered_details_name_the_entry(store: Store, db_path: Path) -> None:
    fill(store, 5)
    tamper(db_path, """UPDATE audit SET details = '{"amount":"300.00","method":"cash"}'
                       WHERE seq = 3""")
    check = store.audit_verify()
    assert (check.ok, check.first_broken, check.entries) == (False, 3, 2)
    assert check.reason is not None and "hash" in check.reason


def test_a_rehashed_entry_still_breaks_the_next_link(store: Store, db_path: Path) -> None:
    fill(store, 4)
    # The tamperer recomputes entry 2's own hash; entry 3 still points at the old one.
    entry = store.audit_entries(since_seq=1, limit=1)[0]
    forged = entry_hash(seq=2, at=entry.at.isoformat(timespec="microseconds"), actor="bob",
                        role=entry.role, action=entry.action, target=entry.target,
                        outcome=entry.outcome, details=entry.details, prev_hash=entry.prev_hash)
    tamper(db_path, f"UPDATE audit SET actor = 'bob', hash = '{forged}' WHERE seq = 2")
    check = store.audit_verify()
    assert (check.ok, check.first_broken) == (False, 3)
    assert check.reason is not None and "prev_hash" in check.reason


def test_a_deleted_entry_is_found(store: Store, db_path: Path) -> None:
    fill(store, 5)
    tamper(db_path, "DELETE FROM audit WHERE seq = 2")
    check = store.audit_verify()
    assert (check.ok, check.first_broken) == (False, 2)
    assert check.reason is not None and "missing" in check.reason


def test_deleting_the_newest_entries_is_found(store: Store, db_path: Path) -> None:
    fill(store, 5)
    tamper(db_path, "DELETE FROM audit WHERE seq >= 4")
    check = store.audit_verify()
    assert (check.ok, check.first_broken, check.entries) == (False, 4, 3)


def test_verify_walks_more_than_one_batch(store: Store, db_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("edge.store.audit.VERIFY_BATCH", 3)
    fill(store, 8)
    assert store.audit_verify() == AuditCheck(ok=True, entries=8)
    tamper(db_path, "UPDATE audit SET outcome = 'forbidden' WHERE seq = 7")
    check = store.audit_verify()
    assert (check.ok, check.first_broken) == (False, 7)


def test_an_entry_needs_actor_action_and_outcome(store: Store) -> None:
    with pytest.raises(ValueError):
        store.audit_append(actor="", action="x")
    with pytest.raises(ValueError):
        store.audit_append(actor="ann", action="x", outcome="")
    assert store.audit_entries() == []


def test_appending_after_reopen_continues_the_chain(db_path: Path) -> None:
    with Store.open(db_path) as first:
        fill(first, 2)
    with Store.open(db_path) as second:
        entry = second.audit_append(actor="system", action="station.start")
        assert entry.seq == 3
        assert second.audit_verify() == AuditCheck(ok=True, entries=3)


def test_a_closed_store_raises_store_error(db_path: Path) -> None:
    store = Store.open(db_path)
    store.close()
    with pytest.raises(StoreError):
        store.audit_verify()
