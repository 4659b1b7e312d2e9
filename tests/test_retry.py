"""The named retry policies (domain/retry.py), run by tenacity with its own sleep hook: no real
waiting, the waits are recorded."""

from __future__ import annotations

import asyncio
import logging

import pytest

from domain.retry import (
    BROKER_RECONNECT,
    LINE_RECONNECT,
    POLICIES,
    PRINTER_RETRY,
    PUMP_STARTUP,
    SALE_RECORD,
    SERVICE_RESTART,
    RetryPolicy,
    wait_doubling,
)

log = logging.getLogger("tests.retry")


class Flaky:
    """Fails `failures` times with OSError, then returns "done"."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise OSError(f"failure {self.calls}")
        return "done"


def nominal(policy: RetryPolicy, count: int) -> list[float]:
    return [min(policy.cap, policy.first * 2.0 ** n) for n in range(count)]


def assert_jittered(waits: list[float], policy: RetryPolicy) -> None:
    low, high = policy.spread
    for wait, expected in zip(waits, nominal(policy, len(waits)), strict=True):
        assert expected * low <= wait <= min(policy.cap, expected * high)
    assert max(waits) <= policy.cap


# ------------------------------------------------------------------------ the wait strategy


def test_waits_double_from_first_to_the_cap() -> None:
    wait = wait_doubling(1.0, 60.0, (0.8, 1.2))
    assert [wait.delay(n, 0.5) for n in (1, 2, 3, 4, 6, 7, 8, 1000)] == [
        1.0, 2.0, 4.0, 8.0, 32.0, 60.0, 60.0, 60.0]


def test_jitter_spreads_each_wait_and_never_passes_the_cap() -> None:
    wait = wait_doubling(10.0, 60.0, (0.8, 1.2))
    assert wait.delay(1, 0.0) == pytest.approx(8.0)
    assert wait.delay(1, 0.999999) == pytest.approx(12.0, abs=1e-4)
    assert wait.delay(10, 0.999999) == 60.0
    assert wait.delay(10**9, 0.999999) == 60.0  # no overflow however long the outage


def test_policy_numbers_are_checked() -> None:
    with pytest.raises(ValueError):
        RetryPolicy("bad", first=0, cap=1)
    with pytest.raises(ValueError):
        RetryPolicy("bad", first=2, cap=1)
    with pytest.raises(ValueError):
        RetryPolicy("bad", first=1, cap=2, spread=(0.0, 1.0))
    with pytest.raises(ValueError):
        RetryPolicy("bad", first=1, cap=2, spread=(1.2, 0.8))
    with pytest.raises(ValueError):
        RetryPolicy("bad", first=1, cap=2, attempts=0)


def test_every_policy_is_named_jittered_and_capped() -> None:
    assert set(POLICIES) == {"line reconnect", "broker reconnect", "printer retry",
                             "pump start-up", "sale record", "service restart"}
    for policy in POLICIES.values():
        low, high = policy.spread
        assert low < high  # jittered
        assert policy.cap >= policy.first


# ------------------------------------------------------------------------ each policy


@pytest.mark.parametrize("policy", list(POLICIES.values()), ids=list(POLICIES))
def test_each_policy_waits_as_named_until_it_works(policy: RetryPolicy) -> None:
    slept: list[float] = []
    flaky = Flaky(12)
    result = policy.call(flaky, log, policy.name, retry_on=(OSError,), sleep=slept.append)
    assert result == "done"
    assert flaky.calls == 13
    assert len(slept) == 12
    assert_jittered(slept, policy)


def test_pump_startup_is_about_a_second_doubling_to_thirty() -> None:
    slept: list[float] = []
    PUMP_STARTUP.call(Flaky(8), log, "pump 1", retry_on=(OSError,), sleep=slept.append,
                      rand=lambda: 0.5)
    assert slept == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_pump_startup_never_gives_up_while_the_pump_is_online() -> None:
    online = True
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        nonlocal online
        slept.append(seconds)
        if len(slept) == 200:
            online = False  # the pump went offline: start-up stops trying

    flaky = Flaky(10**6)
    with pytest.raises(OSError, match="failure 201"):
        PUMP_STARTUP.call(flaky, log, "pump 1", retry_on=(OSError,), sleep=sleep,
                          until=lambda: not online)
    assert flaky.calls == 201
    assert max(slept) <= 30.0
    assert min(slept[10:]) >= 30.0 * PUMP_STARTUP.spread[0]


def test_sale_record_is_half_a_second_doubling_to_ten_and_never_gives_up() -> None:
    slept: list[float] = []
    flaky = Flaky(500)
    assert SALE_RECORD.call(flaky, log, "sale", retry_on=(OSError,), sleep=slept.append,
                            rand=lambda: 0.5) == "done"
    assert slept[:6] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]
    assert set(slept[5:]) == {10.0}
    assert len(slept) == 500


def test_other_errors_are_not_retried() -> None:
    slept: list[float] = []

    def broken() -> None:
        raise KeyError("a defect")

    with pytest.raises(KeyError):
        SALE_RECORD.call(broken, log, "sale", retry_on=(OSError,), sleep=slept.append)
    assert slept == []


def test_a_policy_with_attempts_gives_up_with_the_real_error() -> None:
    slept: list[float] = []
    with pytest.raises(OSError, match="failure 3"):
        PRINTER_RETRY.but(attempts=3).call(Flaky(10), log, "printer", retry_on=(OSError,),
                                           sleep=slept.append)
    assert len(slept) == 2


def test_but_changes_numbers_and_keeps_the_name() -> None:
    quick = LINE_RECONNECT.but(first=0.05, cap=0.2)
    assert (quick.name, quick.first, quick.cap, quick.spread) == (
        "line reconnect", 0.05, 0.2, LINE_RECONNECT.spread)


# ------------------------------------------------------------------------ logging


def test_first_failure_at_error_repeats_at_debug_recovery_at_info(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="tests.retry")
    BROKER_RECONNECT.call(Flaky(4), log, "broker", retry_on=(OSError,), sleep=lambda s: None)
    records = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "tests.retry"]
    levels = [level for level, _ in records]
    assert levels == [logging.ERROR, logging.DEBUG, logging.DEBUG, logging.DEBUG, logging.INFO]
    assert "broker failed: failure 1; retrying in" in records[0][1]
    assert records[-1][1] == "broker works again after 5 attempts"


def test_the_first_failure_level_can_be_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="tests.retry")
    SERVICE_RESTART.call(Flaky(1), log, "x", retry_on=(OSError,), sleep=lambda s: None,
                         level=logging.WARNING)
    assert [r.levelno for r in caplog.records if r.name == "tests.retry"] == [
        logging.WARNING, logging.INFO]


def test_success_at_once_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="tests.retry")
    SALE_RECORD.call(Flaky(0), log, "sale", sleep=lambda s: None)
    assert [r for r in caplog.records if r.name == "tests.retry"] == []


# ------------------------------------------------------------------------ asyncio


async def test_async_policy_uses_the_sleep_hook() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    calls = 0

    async def record() -> str:
        nonlocal calls
        calls += 1
        if calls < 6:
            raise OSError("disk full")
        return "recorded"

    assert await SALE_RECORD.call_async(record, log, "sale", retry_on=(OSError,), sleep=sleep,
                                        rand=lambda: 0.5) == "recorded"
    assert slept == [0.5, 1.0, 2.0, 4.0, 8.0]


async def test_cancelling_the_caller_ends_the_wait() -> None:
    waiting = asyncio.Event()

    async def sleep(seconds: float) -> None:
        waiting.set()
        await asyncio.Event().wait()  # forever, until cancelled

    async def failing() -> None:
        raise OSError("down")

    task = asyncio.create_task(PUMP_STARTUP.call_async(failing, log, "pump", sleep=sleep))
    await waiting.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_lambda_returning_a_coroutine_is_awaited_too() -> None:
    async def record() -> str:
        return "recorded"

    assert await SALE_RECORD.call_async(lambda: record(), log, "sale") == "recorded"
