"""Users in the store: PIN hashes, names (one script, no look-alikes), disabling, the stamp a
session remembers, and unlocks asked from the command line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from domain.model import Role
from edge.store import Store, UnknownUser
from edge.store.users import UserNameRefused, name_key, pin_matches

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


def test_the_login_record_carries_the_hash_that_matches_the_pin(store: Store) -> None:
    created = store.upsert_user("li", role=Role.CASHIER, pin=PIN)
    assert created.role is Role.CASHIER
    assert created.created_at == T0
    found = store.user_login("li")
    assert found is not None and found.role is Role.CASHIER and not found.disabled
    assert pin_matches(PIN, found.pin_hash)
    assert not pin_matches("1234", found.pin_hash)
    assert store.user_login("nobody") is None
    assert not pin_matches(PIN, None)  # an unknown name costs a hash too, and fails


def test_pin_format_is_checked(store: Store) -> None:
    for bad in ("123", "1234567890123", "12a4", "", "１２３４"):  # the last: full-width digits
        with pytest.raises(ValueError):
            store.upsert_user("li", role=Role.CASHIER, pin=bad)
    with pytest.raises(ValueError):
        store.upsert_user(" li", role=Role.CASHIER, pin=PIN)
    assert store.list_users() == []


def test_nothing_about_wrong_pins_is_stored(store: Store, db_path: Path) -> None:
    # Throttling lives in the daemon's memory: the columns of the old persistent lockout stay
    # as they were written, and no user is ever shown locked by the store.
    store.upsert_user("li", role=Role.CASHIER, pin=PIN)
    assert peek(db_path, "SELECT failed_attempts, locked_until FROM users") == [(0, None)]
    user = store.get_user("li")
    assert user is not None and user.locked_until is None


def test_a_new_pin_or_role_moves_the_stamp_on(store: Store, clock: FakeClock) -> None:
    store.upsert_user("li", role=Role.CASHIER, pin=PIN)
    first = store.user_stamps()["li"]
    clock.advance(timedelta(seconds=1))
    updated = store.upsert_user("li", role=Role.MANAGER, pin="5555")
    assert updated.role is Role.MANAGER and updated.created_at == T0
    second = store.user_stamps()["li"]
    assert second != first
    clock.advance(timedelta(seconds=1))
    store.upsert_user("li", role=Role.MANAGER, pin="5555")  # the same PIN again: a new hash
    assert store.user_stamps()["li"] not in (first, second)
    found = store.user_login("li")
    assert found is not None and found.stamp == store.user_stamps()["li"]


def test_a_disabled_user_has_no_stamp_and_is_enabled_again(store: Store,
                                                             clock: FakeClock) -> None:
    store.upsert_user("li", role=Role.CASHIER, pin=PIN)
    store.upsert_user("wang", role=Role.ATTENDANT, pin=PIN)
    before = store.user_stamps()
    clock.advance(timedelta(seconds=1))
    disabled = store.set_user_disabled("li", True)
    assert disabled.disabled_at == T0 + timedelta(seconds=1)
    assert set(store.user_stamps()) == {"wang"}
    found = store.user_login("li")
    assert found is not None and found.disabled
    # Disabling twice changes nothing.
    clock.advance(timedelta(seconds=1))
    assert store.set_user_disabled("li", True) == disabled
    enabled = store.set_user_disabled("li", False)
    assert enabled.disabled_at is None
    assert store.user_stamps()["li"] != before["li"]  # sessions from before stay ended
    assert store.user_stamps()["wang"] == before["wang"]
    with pytest.raises(UnknownUser):
        store.set_user_disabled("nobody", True)


def test_users_are_listed_by_name(store: Store) -> None:
    store.upsert_user("zhao", role=Role.ADMIN, pin=PIN)
    store.upsert_user("an", role=Role.FINANCE, pin=PIN)
    assert [(u.name, u.role) for u in store.list_users()] == [
        ("an", Role.FINANCE),
        ("zhao", Role.ADMIN),
    ]
    assert [(a.name, a.disabled_at) for a in store.user_accounts()] == [
        ("an", None), ("zhao", None)]
    assert store.get_user("qian") is None
    assert store.user_account("qian") is None


# ----------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["王小明", "李 明", "张三-1", "li", "Li Ming", "wang2",
                                  "Вася", "阿依古丽"])
def test_names_in_one_script_are_welcome(store: Store, name: str) -> None:
    assert store.upsert_user(name, role=Role.ATTENDANT, pin=PIN).name == name


@pytest.mark.parametrize("name", [
    "李a",  # Han and Latin
    "r\u043eot",  # Latin with a Cyrillic о
    "a\u03b1b",  # Latin with a Greek alpha
    "li\u200bming",  # an invisible zero-width space
    "ｒｏｏｔ",  # full-width letters: not the ordinary (NFKC) form
    "e\u0301",  # a combining accent: not the ordinary (NFC/NFKC) form
    "1\u0663",  # digits of two systems
], ids=["han-latin", "cyrillic-o", "greek-alpha", "zero-width", "full-width", "decomposed",
        "mixed-digits"])
def test_mixed_or_disguised_names_are_refused(store: Store, name: str) -> None:
    with pytest.raises(UserNameRefused) as refused:
        store.upsert_user(name, role=Role.ATTENDANT, pin=PIN)
    assert refused.value.code == "invalid_user"
    assert store.list_users() == []


@pytest.mark.parametrize(("existing", "lookalike", "code"), [
    ("root", "r\u043eot", "invalid_user"),  # a Cyrillic о among Latin letters: mixed scripts
    ("poe", "\u0440\u043e\u0435", "user_name_confusable"),  # all Cyrillic р о е: one script
    ("boss", "Boss", "user_name_confusable"),  # case
    ("m", "rn", "user_name_confusable"),  # r and n side by side look like m (UTS #39's data)
], ids=["cyrillic-o", "whole-cyrillic", "case", "rn-m"])
def test_a_name_like_an_existing_one_is_refused(store: Store, existing: str, lookalike: str,
                                                code: str) -> None:
    store.upsert_user(existing, role=Role.MANAGER, pin=PIN)
    with pytest.raises(UserNameRefused) as refused:
        store.upsert_user(lookalike, role=Role.ADMIN, pin=PIN)
    assert refused.value.code == code
    assert [u.name for u in store.list_users()] == [existing]


def test_the_same_name_is_an_update_not_a_lookalike(store: Store) -> None:
    store.upsert_user("王小明", role=Role.MANAGER, pin=PIN)
    store.upsert_user("王小明", role=Role.CASHIER, pin=PIN)
    assert [(u.name, u.role) for u in store.list_users()] == [("王小明", Role.CASHIER)]


def test_the_skeleton_check_names_the_user_it_resembles(store: Store) -> None:
    store.upsert_user("poe", role=Role.MANAGER, pin=PIN)
    with pytest.raises(UserNameRefused) as refused:
        store.upsert_user("\u0440\u043e\u0435", role=Role.ADMIN, pin=PIN)  # Cyrillic р о е
    assert refused.value.code == "user_name_confusable"
    assert refused.value.existing == "poe"
    assert name_key("\u0440\u043e\u0435") == name_key("poe") == name_key("POE")
    assert name_key("王小明") != name_key("王小名")


def test_save_user_takes_a_finished_hash(store: Store) -> None:
    from edge.store.users import hash_pin

    user = store.save_user("li", role=Role.CASHIER, pin_hash=hash_pin(PIN))
    assert user.name == "li"
    found = store.user_login("li")
    assert found is not None and pin_matches(PIN, found.pin_hash)
    with pytest.raises(UserNameRefused):
        store.save_user("李a", role=Role.CASHIER, pin_hash=hash_pin(PIN))


# ----------------------------------------------------------------- unlocks from the CLI


def test_unlock_requests_are_left_for_the_daemon(store: Store, clock: FakeClock) -> None:
    store.upsert_user("li", role=Role.CASHIER, pin=PIN)
    store.upsert_user("boss", role=Role.MANAGER, pin=PIN)
    assert store.user_unlock_requests() == {}
    store.request_user_unlock("li")
    first = store.user_unlock_requests()
    assert set(first) == {"li"}
    clock.advance(timedelta(seconds=1))
    store.request_user_unlock("li")
    store.request_user_unlock("boss")
    second = store.user_unlock_requests()
    assert set(second) == {"li", "boss"} and second["li"] != first["li"]
    with pytest.raises(UnknownUser):
        store.request_user_unlock("nobody")
    # An unlock is no change of the user: their sessions go on.
    stamps = store.user_stamps()
    store.request_user_unlock("li")
    assert store.user_stamps() == stamps


def test_the_user_reader_reads_while_a_write_holds_the_database(store: Store,
                                                                db_path: Path) -> None:
    import sqlite3

    from edge.store.users import UserReader

    store.upsert_user("li", role=Role.CASHIER, pin=PIN)
    store.request_user_unlock("li")
    reader = UserReader(db_path, busy_timeout_ms=100)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # a write in progress (or a locked disk) elsewhere
    blocker.execute("UPDATE users SET role = 'admin'")  # not committed: not seen
    try:
        found = reader.login_record("li")
        assert found is not None and found.role is Role.CASHIER
        assert pin_matches(PIN, found.pin_hash)
        assert reader.stamps() == store.user_stamps()
        assert set(reader.unlock_requests()) == {"li"}
        assert reader.login_record("nobody") is None
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
