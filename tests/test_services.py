"""The daemon's supervisor (edge/services.py) on its own: real tasks, real (short) waits."""

from __future__ import annotations

import asyncio
import logging

import pytest

from domain.retry import SERVICE_RESTART
from edge.services import ServiceFailed, Services, ServiceState
from tests.helpers import wait_until

QUICK = SERVICE_RESTART.but(first=0.02, cap=0.05)


class Flaky:
    """A service that raises on its first `deaths` runs, then runs until cancelled."""

    def __init__(self, deaths: int, *, end_instead: bool = False) -> None:
        self.deaths = deaths
        self.runs = 0
        self.end_instead = end_instead
        self.running = asyncio.Event()
        self.cancelled = 0

    async def __call__(self) -> None:
        self.runs += 1
        if self.runs <= self.deaths:
            if self.end_instead:
                return
            raise RuntimeError(f"death {self.runs}")
        self.running.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


async def test_a_peripheral_that_dies_is_restarted_and_degraded_meanwhile(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="edge.services")
    gate = asyncio.Event()

    async def printer() -> None:
        # Dies at once, then waits at the gate before running for good.
        if not gate.is_set():
            gate.set()
            raise OSError("printer thread gone")
        await asyncio.Event().wait()

    restart = SERVICE_RESTART.but(first=0.5, cap=0.5)  # long enough to see it degraded
    async with Services(restart=restart, healthy_after=0.05) as services:
        service = services.peripheral("printer", printer)
        await wait_until(lambda: services.degraded() == ["printer"], what="printer degraded")
        assert service.state is ServiceState.RESTARTING
        assert service.view() == {"name": "printer", "critical": False, "state": "restarting",
                                  "restarts": 1, "error": "OSError: printer thread gone"}
        await wait_until(lambda: service.state is ServiceState.RUNNING, what="restarted")
        assert services.degraded() == []
        await wait_until(lambda: any("works again" in r.message for r in caplog.records),
                         what="the recovery logged")
    assert service.state is ServiceState.STOPPED
    ours = [r for r in caplog.records if r.name == "edge.services"]
    errors = [r for r in ours if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None  # once, with its traceback
    assert "service printer died: OSError: printer thread gone; restarting it in" in (
        errors[0].message)
    assert [r.levelno for r in ours if "works again" in r.message] == [logging.INFO]


async def test_repeated_deaths_log_once_then_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="edge.services")
    flaky = Flaky(5)
    async with Services(restart=QUICK) as services:
        service = services.peripheral("gauges", flaky)
        await asyncio.wait_for(flaky.running.wait(), 10)
        assert service.restarts == 5 and service.state is ServiceState.RUNNING
    ours = [r for r in caplog.records if r.name == "edge.services" and "died" in r.message]
    assert [r.levelno for r in ours] == [logging.ERROR] + [logging.DEBUG] * 4
    assert flaky.cancelled == 1  # the supervisor's exit cancelled and awaited it


async def test_a_peripheral_that_ends_by_itself_is_restarted_too() -> None:
    flaky = Flaky(2, end_instead=True)
    async with Services(restart=QUICK) as services:
        service = services.peripheral("voice", flaky)
        await asyncio.wait_for(flaky.running.wait(), 10)
        assert service.restarts == 2
        assert service.last_error == "it ended by itself"


async def test_a_critical_service_that_dies_is_fatal_once(
        caplog: pytest.LogCaptureFixture) -> None:
    failures: list[ServiceFailed] = []
    async with Services(on_fatal=failures.append) as services:
        line = services.critical("line-line1", Flaky(1))
        api = services.critical("api", Flaky(1))
        await wait_until(lambda: line.state is ServiceState.FAILED
                         and api.state is ServiceState.FAILED, what="both dead")
        assert len(failures) == 1
        assert failures[0] is services.failure
        assert str(failures[0]) == "critical service line-line1 died: RuntimeError: death 1"
        assert sorted(services.degraded()) == ["api", "line-line1"]
    assert isinstance(failures[0].error, RuntimeError)  # the station raises from it
    said = [r.message for r in caplog.records if r.name == "edge.services"]
    assert said == ["critical service line-line1 died: RuntimeError: death 1; the station stops "
                    "in order and exits 1 so that systemd restarts it",
                    "critical service api died too: RuntimeError: death 1"]


async def test_a_critical_service_that_ends_unasked_is_fatal_but_not_when_asked() -> None:
    failures: list[ServiceFailed] = []
    stop = asyncio.Event()

    async def api() -> None:
        await stop.wait()  # like uvicorn after should_exit

    async with Services(on_fatal=failures.append) as services:
        served = services.critical("api", api)
        stop.set()
        await served.stop(cancel=False)
        assert served.state is ServiceState.STOPPED and failures == []
        services.critical("probe", Flaky(1, end_instead=True))
        await wait_until(lambda: failures, what="the probe's end")
    assert failures[0].name == "probe" and failures[0].reason == "it ended by itself"


async def test_stopping_one_service_leaves_the_others_running() -> None:
    a, b = Flaky(0), Flaky(0)
    async with Services() as services:
        first = services.peripheral("a", a)
        services.peripheral("b", b)
        await asyncio.wait_for(asyncio.gather(a.running.wait(), b.running.wait()), 10)
        await first.stop()
        assert first.state is ServiceState.STOPPED and a.cancelled == 1
        assert services.get("b") is not None and b.cancelled == 0
    assert b.cancelled == 1


async def test_one_async_with_at_a_time_and_nothing_before_it() -> None:
    services = Services()
    with pytest.raises(RuntimeError, match="not running"):
        services.peripheral("early", Flaky(0))
    async with services:
        with pytest.raises(RuntimeError, match="already running"):
            async with services:
                pass
        services.peripheral("x", Flaky(0))
        with pytest.raises(ValueError, match="already running"):
            services.peripheral("x", Flaky(0))
    async with services:  # entered again once left
        pass


async def test_the_supervisor_leaves_no_task_behind() -> None:
    before = asyncio.all_tasks()
    async with Services(restart=QUICK) as services:
        services.peripheral("a", Flaky(3))
        services.critical("b", Flaky(0))
    assert asyncio.all_tasks() == before


async def test_a_service_that_lost_its_cancellation_is_cancelled_again(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("edge.services.STOP_SLOW_SECONDS", 0.05)
    caplog.set_level(logging.WARNING, logger="edge.services")
    lost = 0

    async def gauges() -> None:
        # As a gauge poll inside Python 3.11's asyncio.wait_for when the answer and the
        # cancellation come together: the first cancellation is dropped, the loop goes on.
        nonlocal lost
        while True:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                if lost:
                    raise
                lost += 1
                current = asyncio.current_task()
                assert current is not None
                current.uncancel()

    async with Services() as services:
        service = services.peripheral("tanks", gauges)
        await asyncio.sleep(0.02)
        await asyncio.wait_for(service.stop(), 10)
        assert service.state is ServiceState.STOPPED and lost == 1
    said = [r.message for r in caplog.records if r.name == "edge.services"]
    assert said == ["stopping: service tanks has not stopped after 0.05 s; cancelling it again"]


async def test_a_slow_stop_names_the_service_it_waits_for(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("edge.services.STOP_SLOW_SECONDS", 0.05)
    caplog.set_level(logging.WARNING, logger="edge.services")
    told = asyncio.Event()
    release = asyncio.Event()

    async def api() -> None:
        await told.wait()  # told to end some other way (uvicorn's should_exit)
        await release.wait()  # the connections still closing

    async with Services() as services:
        service = services.peripheral("api", api)
        told.set()
        stopping = asyncio.create_task(service.stop(cancel=False))
        await wait_until(lambda: sum("api" in r.message for r in caplog.records) >= 2,
                         what="the slow stop said twice")
        assert not stopping.done() and service.state is ServiceState.RUNNING
        release.set()
        await stopping
        assert service.state is ServiceState.STOPPED
    said = [r.message for r in caplog.records if r.name == "edge.services"]
    assert said[:2] == ["stopping: service api has not stopped after 0.05 s; still waiting",
                        "stopping: service api has not stopped after 0.1 s; still waiting"]
