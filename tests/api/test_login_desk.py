"""The login desk (edge/api/logins.py) over a real store and ledger, without HTTP: what is
hashed where, what is written to the audit log and what is only counted."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from domain.model import Role
from edge.api.auth import Sessions
from edge.api.logins import LoginDesk, LoginRefused, PinChecker
from edge.api.throttle import ThrottlePolicy
from edge.hub import EventHub
from edge.ledger import Ledger
from edge.store import Store

PIN = "2468"


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Later:
    """BackgroundTasks' part the desk uses: what to run once the answer has left."""

    tasks: list[tuple[Callable[..., Awaitable[Any]], tuple[Any, ...], dict[str, Any]]] = (
        field(default_factory=list))

    def add_task(self, func: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> None:
        self.tasks.append((func, args, kwargs))

    async def run(self) -> None:
        tasks, self.tasks = self.tasks, []
        for func, args, kwargs in tasks:
            await func(*args, **kwargs)


@dataclass
class Desk:
    desk: LoginDesk
    store: Store
    ledger: Ledger
    clock: Clock
    later: Later

    async def login(self, name: str, pin: str, address: str = "10.0.0.9") -> str:
        """The session's token, or the refusal's code."""
        try:
            session = await self.desk.open_session(address, name, pin, self.later.add_task)
        except LoginRefused as exc:
            return exc.code
        finally:
            await self.later.run()
        return session.token

    def actions(self) -> list[tuple[str, str, str]]:
        return [(e.actor, e.action, e.outcome) for e in self.store.audit_entries(0, 10_000)]


@pytest_asyncio.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    store = Store.open(tmp_path / "station.db")
    store.upsert_user("li", role=Role.CASHIER, pin=PIN)
    store.upsert_user("boss", role=Role.MANAGER, pin="1357")
    ledger = Ledger(store, EventHub())
    clock = Clock()
    sessions = Sessions(timedelta(hours=8), lambda: datetime.now(UTC))
    made = LoginDesk(ledger=ledger, sessions=sessions, policy=ThrottlePolicy(), clock=clock,
                     checker=PinChecker(workers=1, waiting=2))
    try:
        yield Desk(made, store, ledger, clock, Later())
    finally:
        await asyncio.get_running_loop().shutdown_default_executor()
        ledger.close()
        store.close()


def ledger_thread(ledger: Ledger) -> str:
    """The name of the ledger's writer thread, asked of the thread itself."""
    return ledger._writer.submit(lambda: threading.current_thread().name).result()


async def test_no_pin_is_hashed_on_the_ledgers_writer_thread(
        desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[str] = []
    real = hashlib.scrypt

    def watched(*args: Any, **kwargs: Any) -> bytes:
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", watched)
    assert await desk.login("li", PIN) not in ("bad_credentials", "login_throttled")
    assert await desk.login("li", "0000") == "bad_credentials"
    assert await desk.login("ghost", "0000") == "bad_credentials"
    await desk.desk.checker.hash("9999")  # a manager saving a PIN
    writer = ledger_thread(desk.ledger)
    assert len(threads) == 4 and writer not in threads, (writer, threads)
    assert threading.main_thread().name not in threads  # nor on the event loop


async def test_a_wrong_pin_of_a_known_user_is_written_an_unknown_name_only_counted(
        desk: Desk) -> None:
    assert await desk.login("li", "0000") == "bad_credentials"
    for index in range(3):
        assert await desk.login(f"ghost{index}", "0000", f"10.0.0.{20 + index}") == (
            "bad_credentials")
    assert desk.actions() == [("li", "session.failed", "bad_credentials")]
    counters = desk.desk.counters
    assert (counters.wrong_pin, counters.unknown_user) == (1, 3)
    # A minute later the next login writes one summary of what was only counted.
    desk.clock.now += 60
    await desk.login("li", PIN)
    summary = [e for e in desk.store.audit_entries(0, 100) if e.action == "session.failures"]
    assert len(summary) == 1
    assert summary[0].actor == "system"
    assert summary[0].details["unknown_user"] == 3
    assert summary[0].details["address_count"] == 3
    assert not any(name in str(summary[0].details) for name in ("ghost0", "0000"))
    assert desk.actions()[-2:] == [("li", "session.open", "ok"),
                                   ("system", "session.failures", "counted")]
    # Nothing new counted: no summary the next minute.
    desk.clock.now += 60
    await desk.login("li", PIN)
    assert [e.action for e in desk.store.audit_entries(0, 100)].count("session.failures") == 1


async def test_a_disabled_user_gets_the_answer_of_a_wrong_pin(desk: Desk) -> None:
    desk.store.set_user_disabled("li", True)
    assert await desk.login("li", PIN) == "bad_credentials"
    assert desk.actions()[-1] == ("li", "session.failed", "user_disabled")
    desk.store.set_user_disabled("li", False)
    assert await desk.login("li", PIN) not in ("bad_credentials",)


async def test_a_full_queue_is_refused_at_once_and_nothing_is_hashed_for_it(
        desk: Desk) -> None:
    checker = desk.desk.checker
    # Hold the one worker and the two waiting places with tries whose hash cannot start.
    async with checker._slots:
        tries = [asyncio.ensure_future(desk.login("li", "0000", f"10.0.1.{n}"))
                 for n in range(3)]
        while checker.admitted < checker.capacity:  # they reach the checker
            await asyncio.sleep(0)
        assert await desk.login("li", "0000", "10.0.1.99") == "login_busy"
        assert desk.desk.counters.busy == 1
    assert await asyncio.gather(*tries) == ["bad_credentials"] * 3


async def test_an_unlock_from_the_command_line_reaches_the_desk(desk: Desk) -> None:
    for _ in range(5):
        assert await desk.login("boss", "0000") == "bad_credentials"
    assert await desk.login("boss", "1357") == "login_throttled"
    desk.store.request_user_unlock("boss")  # what `forecourt user unlock boss` writes
    desk.clock.now += 1  # the desk looks for unlocks at most once a second
    assert await desk.login("boss", "1357") not in ("login_throttled", "bad_credentials")


async def test_strangers_share_a_budget_of_pin_checks_that_logged_in_consoles_do_not_use(
        desk: Desk) -> None:
    from edge.api.logins import STRANGER_CHECKS_BURST, STRANGER_CHECKS_PER_SECOND

    assert await desk.login("boss", "1357", "10.0.2.1") not in ("login_busy",)  # now trusted
    burst = int(STRANGER_CHECKS_BURST) - 1  # the manager's own login was one of them
    for n in range(burst):
        assert await desk.login(f"ghost{n}", "0000", f"10.0.3.{n}") == "bad_credentials"
    assert await desk.login("ghost-more", "0000", "10.0.3.200") == "login_busy"
    # A console that logged in is not held back by the strangers.
    assert await desk.login("boss", "0000", "10.0.2.1") == "bad_credentials"
    desk.clock.now += 1.0
    for n in range(int(STRANGER_CHECKS_PER_SECOND)):
        assert await desk.login(f"later{n}", "0000", f"10.0.4.{n}") == "bad_credentials"
    assert await desk.login("later-more", "0000", "10.0.4.200") == "login_busy"
    assert desk.desk.counters.busy == 2
