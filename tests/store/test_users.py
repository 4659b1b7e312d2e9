from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from domain.model import Role
from edge.store import Store, UserLocked

from .conftest import T0, FakeClock, peek

PIN = "90817263"


def file_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_pins_are_stored_as_salted_scrypt_hashes(store: Store, db_path: Path) -> None:
    store.upsert_user("li", role=Role.CASHIER, pin=PIN)
    store.upsert_user("wang", role=Role.ATTENDANT, pin=PIN)
    assert PIN.encode() not in file_bytes(db_path)
    hashes = [h for (h,) in peek(db_path, "SELECT pin_hash FROM users ORDER BY name")]
    assert all(h.startswith("scrypt$") for h in hashes)
    assert hashes[0] != hashes[1]  # same PIN, different salt


def test_right_pin_gives_the_user_wrong_pin_none(store: Store) -> None:
    created = store.upsert_user("li", role=Role.CASHIER, pin=PIN)
    assert created.role is Role.CASHIER
    assert created.created_at == T0
    assert store.verify_pin("li", PIN) == created
    assert store.verify_pin("li", "1234") is None
    assert store.verify_pin("nobody", PIN) is None


def test_pin_format_is_checked(store: Store) -> None:
    for bad in ("123", "1234567890123", "12a4", "", "１２３４"):  # the last: full-width digits
        with pytest.raises(ValueError):
            store.upsert_user("li", role=Role.CASHIER, pin=bad)
    with pytest.raises(ValueError):
        store.upsert_user(" li", role=Role.CASHIER, pin=PIN)
    assert store.list_users() == []


def test_lockout_after_max_attempts_then_unlock_after_the_period(
    store: Store, clock: FakeClock
) -> None:
    store.upsert_user("li", role=Role.CASHIER, pin=PIN)
    for _ in range(2):
        assert store.verify_pin("li", "0000", max_attempts=3) is None
    with pytest.raises(UserLocked) as locking:
        store.verify_pin("li", "0000", max_attempts=3)
    until = T0 + timedelta(minutes=15)
    assert locking.value.until == until

    clock.advance(timedelta(minutes=14))
    with pytest.raises(UserLocked) as still:  # even the right PIN
        store.verify_pin("li", PIN, max_attempts=3)
    assert still.value.until == until
    user = store.get_user("li")
    assert user is not None and user.locked_until == until

    clock.advance(timedelta(minutes=1))
    unlocked = store.verify_pin("li", PIN, max_attempts=3)
    assert unlocked is not None and unlocked.locked_until is None


def test_a_right_pin_resets_the_count(store: Store) -> None:
    store.upsert_user("li", role=Role.CASHIER, pin=PIN)
    for _ in range(3):
        assert store.verify_pin("li", "0000", max_attempts=3) is None
        assert store.verify_pin("li", "0000", max_attempts=3) is None
        assert store.verify_pin("li", PIN, max_attempts=3) is not None


def test_a_new_pin_lifts_a_lockout(store: Store) -> None:
    store.upsert_user("li", role=Role.CASHIER, pin=PIN)
    with pytest.raises(UserLocked):
        store.verify_pin("li", "0000", max_attempts=1, lockout=timedelta(hours=1))
    updated = store.upsert_user("li", role=Role.MANAGER, pin="5555")
    assert updated.locked_until is None
    assert updated.role is Role.MANAGER
    assert updated.created_at == T0
    assert store.verify_pin("li", "5555") == updated
    assert store.verify_pin("li", PIN) is None


def test_users_are_listed_by_name(store: Store) -> None:
    store.upsert_user("zhao", role=Role.ADMIN, pin=PIN)
    store.upsert_user("an", role=Role.FINANCE, pin=PIN)
    assert [(u.name, u.role) for u in store.list_users()] == [
        ("an", Role.FINANCE),
        ("zhao", Role.ADMIN),
    ]
    assert store.get_user("qian") is None


def test_while_locked_the_pin_is_not_even_checked(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.upsert_user("li", role=Role.CASHIER, pin=PIN)
    with pytest.raises(UserLocked):
        store.verify_pin("li", "0000", max_attempts=1)

    def must_not_hash(pin: str, stored: str | None) -> bool:
        raise AssertionError("a locked user's PIN was hashed")

    monkeypatch.setattr("edge.store.users.pin_matches", must_not_hash)
    with pytest.raises(UserLocked):
        store.verify_pin("li", PIN, max_attempts=1)
