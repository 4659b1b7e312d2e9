"""The login throttle on its own (edge/api/throttle.py): time is a number passed in."""

from __future__ import annotations

import pytest

from edge.api.throttle import LoginThrottle, ThrottlePolicy, Verdict

POLICY = ThrottlePolicy(pair_attempts=5, address_attempts=20, user_addresses=3,
                        first_wait=1.0, longest_wait=900.0, trusted_interval=5.0,
                        forget_after=3600.0)
STRANGER, OFFICE, TABLET = "10.0.0.66", "10.0.0.2", "10.0.0.3"


def wrong(throttle: LoginThrottle, now: float, address: str, name: str) -> Verdict:
    """One try with a wrong PIN, when the throttle lets it through."""
    verdict = throttle.check(now, address, name)
    if verdict.allowed:
        throttle.begin(now, address, name)
    return verdict


def right(throttle: LoginThrottle, now: float, address: str, name: str) -> Verdict:
    verdict = throttle.check(now, address, name)
    if verdict.allowed:
        throttle.begin(now, address, name)
        throttle.succeeded(now, address, name)
    return verdict


def test_five_wrong_pins_are_free_then_the_waits_double_up_to_the_cap() -> None:
    throttle = LoginThrottle(POLICY)
    for _ in range(5):
        assert wrong(throttle, 0.0, STRANGER, "boss").allowed
    refused = throttle.check(0.0, STRANGER, "boss")
    assert not refused.allowed and refused.reason == "pair"
    assert refused.retry_after == pytest.approx(1.0)
    now = 0.0
    waits = []
    for _ in range(12):
        verdict = throttle.check(now, STRANGER, "boss")
        assert not verdict.allowed
        now += verdict.retry_after
        assert wrong(throttle, now, STRANGER, "boss").allowed
        waits.append(verdict.retry_after)
    assert waits[:5] == pytest.approx([1.0, 2.0, 4.0, 8.0, 16.0])
    assert max(waits) == pytest.approx(900.0) and waits[-1] == pytest.approx(900.0)


def test_one_stranger_never_keeps_the_manager_out_at_another_address() -> None:
    throttle = LoginThrottle(POLICY)
    now = 0.0
    # A stranger tries the manager's name as fast as the throttle lets them, for a day.
    while now < 24 * 3600:
        verdict = throttle.check(now, STRANGER, "boss")
        if verdict.allowed:
            throttle.begin(now, STRANGER, "boss")
        else:
            now += verdict.retry_after
        # The manager, at the office PC that never logged in before, is never refused.
        assert throttle.check(now, OFFICE, "boss").allowed
    over, strangers_refused_until = throttle.name_status(now, "boss")
    assert over == 1 and strangers_refused_until is None


def test_the_right_pin_starts_the_pair_again_and_trusts_the_address() -> None:
    throttle = LoginThrottle(POLICY)
    for _ in range(4):
        wrong(throttle, 0.0, OFFICE, "boss")
    assert right(throttle, 0.0, OFFICE, "boss").allowed
    assert throttle.trusted(0.0, OFFICE)
    for _ in range(5):  # five free again
        assert wrong(throttle, 1.0, OFFICE, "boss").allowed
    assert not throttle.check(1.0, OFFICE, "boss").allowed


def test_one_address_spraying_names_waits_for_every_name() -> None:
    throttle = LoginThrottle(POLICY)
    for index in range(20):
        assert wrong(throttle, 0.0, STRANGER, f"guess{index}").allowed
    refused = throttle.check(0.0, STRANGER, "someone-new")
    assert not refused.allowed and refused.reason == "address"
    # Another address is not concerned.
    assert throttle.check(0.0, OFFICE, "someone-new").allowed


def test_unknown_and_known_names_are_counted_alike() -> None:
    # The throttle never asks whether a user exists: the same tries give the same verdicts.
    def run(name: str) -> list[Verdict]:
        throttle = LoginThrottle(POLICY)
        return [wrong(throttle, t * 0.5, STRANGER, name) for t in range(40)]
    assert run("boss") == run("nobody-at-all")


def test_an_attack_from_many_addresses_refuses_strangers_and_slows_trusted_consoles() -> None:
    throttle = LoginThrottle(POLICY)
    assert right(throttle, 0.0, OFFICE, "boss").allowed  # the manager logged in this morning
    attackers = [f"10.0.1.{n}" for n in range(1, 4)]
    for address in attackers:
        for _ in range(5):
            wrong(throttle, 10.0, address, "boss")
    over, until = throttle.name_status(10.0, "boss")
    assert over == 3 and until == pytest.approx(10.0 + 3600.0)
    # A fresh address (a fourth attacker, or a tablet that never logged in) is refused.
    fresh = throttle.check(11.0, "10.0.1.99", "boss")
    assert not fresh.allowed and fresh.reason == "user"
    assert not throttle.check(11.0, TABLET, "boss").allowed
    # The office PC is only slowed: one try now, the next after the trusted interval.
    assert wrong(throttle, 11.0, OFFICE, "boss").allowed
    slowed = throttle.check(12.0, OFFICE, "boss")
    assert not slowed.allowed and slowed.retry_after == pytest.approx(4.0)
    assert right(throttle, 16.0, OFFICE, "boss").allowed
    # Other names are not concerned.
    assert throttle.check(11.0, TABLET, "att").allowed
    # An hour without tries from the attackers, and strangers may try again.
    assert throttle.check(10.0 + 3600.0, TABLET, "boss").allowed


def test_unlock_lifts_every_address_and_the_refusal_of_strangers() -> None:
    throttle = LoginThrottle(POLICY)
    for address in (STRANGER, "10.0.1.1", "10.0.1.2"):
        for _ in range(6):
            wrong(throttle, 0.0, address, "boss")
    assert not throttle.check(0.0, TABLET, "boss").allowed
    assert throttle.unlock("boss") == 3
    assert throttle.check(0.0, STRANGER, "boss").allowed
    assert throttle.check(0.0, TABLET, "boss").allowed
    assert throttle.name_status(0.0, "boss") == (0, None)
    # The addresses' own counters (every name) are another matter: not lifted.
    for index in range(15):  # 5 counted for boss (the 6th was refused) + 15 = 20
        wrong(throttle, 0.0, STRANGER, f"n{index}")
    assert throttle.check(0.0, STRANGER, "boss").reason == "address"


def test_counters_are_forgotten_after_an_idle_hour() -> None:
    throttle = LoginThrottle(POLICY)
    for _ in range(8):
        throttle.begin(0.0, STRANGER, "boss")
    assert not throttle.check(4.0, STRANGER, "boss").allowed  # 8 s after the 8th
    # An hour later the pair starts again: five free tries, not one.
    for _ in range(5):
        assert wrong(throttle, 3600.0, STRANGER, "boss").allowed
    assert not throttle.check(3600.0, STRANGER, "boss").allowed


def test_the_tables_stay_bounded() -> None:
    throttle = LoginThrottle(ThrottlePolicy(max_entries=50))
    for index in range(500):
        throttle.begin(float(index), f"10.1.{index // 250}.{index % 250}", f"name{index}")
    assert len(throttle._pairs) <= 50 and len(throttle._addresses) <= 50
    assert sum(len(v) for v in throttle._over.values()) <= 50
