"""The link owns its tasks: what kills them never reaches the task that entered the link."""

from __future__ import annotations

import asyncio

import pytest

from sync.link import CloudLink
from tests.helpers import free_port
from tests.sync.conftest import StoreOutbox, make_link


class _Broken(RuntimeError):
    pass


def _dying(link: CloudLink, deaths: list[int]) -> None:
    async def worker() -> None:
        deaths.append(1)
        raise _Broken("a bug in the command worker")

    link._command_worker = worker  # type: ignore[method-assign]


async def test_a_dead_link_does_not_cancel_the_station_and_is_started_again(
        outbox: StoreOutbox) -> None:
    # Nothing listens on the port: the connection loop just keeps retrying.
    link = make_link(f"mqtt://127.0.0.1:{free_port()}", outbox)
    deaths: list[int] = []
    _dying(link, deaths)
    async with link:
        with pytest.raises(ExceptionGroup) as caught:
            await link.wait()  # the runner died; the entering task was not cancelled
        assert caught.group_contains(_Broken)
        assert len(deaths) == 1
        with pytest.raises(ExceptionGroup) as caught:
            await link.wait()  # waited on again (by a supervisor): started again, dies again
        assert caught.group_contains(_Broken)
        assert len(deaths) == 2
        await asyncio.sleep(0)  # this task is alive and runs on
    assert link._runner is None


async def test_waiting_on_a_link_that_is_not_entered_is_refused(outbox: StoreOutbox) -> None:
    link = make_link(f"mqtt://127.0.0.1:{free_port()}", outbox)
    with pytest.raises(RuntimeError):
        await link.wait()
