"""One lifecycle for every long-running service of the daemon: a supervisor that owns them all.

    async with Services(on_fatal=station.service_failed) as services:
        api = services.critical("api", serve_api)            # dies: the daemon stops, exit 1
        services.peripheral("printer", receipts.run)         # dies: restarted in place
        ...
        services.degraded()       # ["printer"] while it waits to be restarted (health)
        await api.stop(cancel=False)                         # a service that ends by itself
        await services.stop()                                # all the rest

A service is a coroutine function that runs until cancelled (`run()` of a component). The
supervisor has the shape of aiomqtt's client: `__aenter__` starts one task that owns an
`asyncio.TaskGroup`, every service runs as a named task of that group, `__aexit__` cancels and
awaits it, and a lock refuses a second `async with` on the same supervisor.

- A **critical** service (a pump line, the ledger's store probe, the API server) that raises, or
  ends while nobody asked it to, is the station's death: `on_fatal` is told at once (with a log
  line naming it), the station stops in order and raises `ServiceFailed` (its cause the
  service's error), which the command line logs at critical with the traceback and exits 1, and
  systemd restarts it: nothing runs half-dead.
- A **peripheral** service (printer, voice, tank gauges, cloud link) that raises or ends is
  restarted in place under the `SERVICE_RESTART` policy (tenacity: 1 s doubling to 60 s,
  jittered); meanwhile `degraded()` names it and `/api/v1/health` says `degraded`. The first
  death of a spell is logged at error with its traceback, repeats at debug, and the recovery
  at info once the service has run `healthy_after` seconds again (which also restarts the
  backoff from its first wait).

A component with loops of its own registers them when it is entered and stops them when it is
left, on the supervisor it is given (the daemon's) or on one of its own when used alone:

    async def __aenter__(self):
        ...set up...
        self._service = services.peripheral("printer", self.run)
    async def __aexit__(self, *exc):
        await self._service.stop()
        ...tear down...
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any

import tenacity
from tenacity import RetryCallState, retry_if_exception_type

from domain.retry import SERVICE_RESTART, RetryPolicy, wait_doubling

__all__ = ["Service", "ServiceFailed", "ServiceState", "Services"]

log = logging.getLogger(__name__)

HEALTHY_AFTER = 60.0  # seconds a restarted service runs before it counts as recovered
#: A stop that takes longer than this is said in the log (and again each time as long), naming
#: the service: a station that does not stop shows what it is waiting for.
STOP_SLOW_SECONDS = 5.0

Run = Callable[[], Awaitable[None]]


class ServiceState(StrEnum):
    RUNNING = "running"
    RESTARTING = "restarting"  # a peripheral service that died, waiting for its restart
    STOPPED = "stopped"  # stopped on request
    FAILED = "failed"  # a critical service that died: the station is stopping


class ServiceFailed(Exception):
    """A critical service died: the station cannot go on. `error` is what it raised (None when
    it ended by itself)."""

    def __init__(self, name: str, reason: str, error: BaseException | None = None) -> None:
        super().__init__(f"critical service {name} died: {reason}")
        self.name = name
        self.reason = reason
        self.error = error


class _Ended(Exception):
    """A service's coroutine returned while nobody asked it to stop."""

    def __str__(self) -> str:
        return "it ended by itself"


def _reason(exc: BaseException | None) -> str:
    """What went wrong, in words: the errors inside a task group rather than the group."""
    if exc is None:
        return "it ended by itself"
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_reason(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


@dataclass(eq=False)
class Service:
    """One supervised service, as `Services.critical` / `Services.peripheral` return it."""

    name: str
    critical: bool
    run: Run
    state: ServiceState = ServiceState.RUNNING
    restarts: int = 0  # since the daemon started
    last_error: str | None = None
    error: BaseException | None = field(default=None, repr=False)  # the last one raised
    _task: asyncio.Task[None] | None = field(default=None, repr=False)
    _stopping: bool = field(default=False, repr=False)

    async def stop(self, *, cancel: bool = True) -> None:
        """Stop it and wait until it has. `cancel=False` waits for a service that was told to
        end some other way (the API server's `should_exit`) to return by itself."""
        self._stopping = True
        task = self._task
        if task is None or task.done():
            self.state = ServiceState.STOPPED
            return
        if cancel:
            task.cancel()
        waited = 0.0
        while True:
            done, _ = await asyncio.wait([task], timeout=STOP_SLOW_SECONDS)
            if done:
                break
            waited += STOP_SLOW_SECONDS
            if cancel:
                # A cancellation can be lost inside a library: Python 3.11's asyncio.wait_for
                # drops it when the awaited answer arrives in the same instant (CPython issue
                # 86296; pymodbus waits for every gauge answer that way), and the service
                # loops on. It is asked again rather than waited for forever.
                log.warning("stopping: service %s has not stopped after %g s; cancelling it "
                            "again", self.name, waited)
                task.cancel()
            else:
                log.warning("stopping: service %s has not stopped after %g s; still waiting",
                            self.name, waited)
        self.state = ServiceState.STOPPED

    def view(self) -> dict[str, Any]:
        """For `/api/v1/health`."""
        return {"name": self.name, "critical": self.critical, "state": self.state.value,
                "restarts": self.restarts, "error": self.last_error}


class _Restarts:
    """The restart policy's wait, counted from the start of the current spell of failures."""

    def __init__(self, wait: wait_doubling) -> None:
        self.wait = wait
        self.base = 0  # attempts before this spell
        self.failing = False  # a death of this spell was logged

    def __call__(self, retry_state: RetryCallState) -> float:
        return self.wait.delay(retry_state.attempt_number - self.base)


class Services:
    """The daemon's supervisor; see the module docstring."""

    def __init__(self, *, on_fatal: Callable[[ServiceFailed], None] | None = None,
                 restart: RetryPolicy = SERVICE_RESTART,
                 healthy_after: float = HEALTHY_AFTER) -> None:
        self._on_fatal = on_fatal
        self._restart = restart
        self._healthy_after = healthy_after
        self._lock = asyncio.Lock()
        self._services: dict[str, Service] = {}
        self._group: asyncio.TaskGroup | None = None
        self._owner: asyncio.Task[None] | None = None
        self.failure: ServiceFailed | None = None

    # -- lifetime ------------------------------------------------------------------------------

    async def __aenter__(self) -> Services:
        if self._lock.locked():
            raise RuntimeError("these services are already running; one `async with` at a time")
        await self._lock.acquire()
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._owner = asyncio.create_task(self._own(ready), name="services")
        self._owner.add_done_callback(self._owner_ended)
        await ready
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            await self.stop()
            owner, self._owner = self._owner, None
            if owner is not None:
                owner.cancel()
                await asyncio.wait([owner])
        finally:
            self._group = None
            self._lock.release()

    def _owner_ended(self, owner: asyncio.Task[None]) -> None:
        # Services never let an error out (see _supervise); should one get through all the
        # same, the supervisor is gone and the station must not run on without it.
        if owner.cancelled() or owner.exception() is None or self.failure is not None:
            return
        self.failure = ServiceFailed("services", _reason(owner.exception()))
        log.critical("the service supervisor died: %s", self.failure.reason,
                     exc_info=owner.exception())
        if self._on_fatal is not None:
            self._on_fatal(self.failure)

    async def _own(self, ready: asyncio.Future[None]) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            ready.set_result(None)
            await asyncio.Event().wait()  # until __aexit__ cancels: the group then ends its tasks

    # -- the caller's side ---------------------------------------------------------------------

    def critical(self, name: str, run: Run) -> Service:
        """Run `run()` until stopped; its death stops the station."""
        return self._start(Service(name, True, run))

    def peripheral(self, name: str, run: Run) -> Service:
        """Run `run()` until stopped; restarted with a backoff whenever it dies."""
        return self._start(Service(name, False, run))

    def _start(self, service: Service) -> Service:
        if self._group is None:
            raise RuntimeError(f"cannot start {service.name}: the services are not running")
        old = self._services.get(service.name)
        if old is not None and old._task is not None and not old._task.done():
            raise ValueError(f"a service named {service.name} is already running")
        self._services[service.name] = service
        service._task = self._group.create_task(self._supervise(service), name=service.name)
        return service

    async def stop(self, *names: str) -> None:
        """Stop the named services (all when none are named), newest first."""
        chosen = [self._services[n] for n in names] if names else list(self._services.values())
        for service in reversed(chosen):
            await service.stop()

    def get(self, name: str) -> Service | None:
        return self._services.get(name)

    def views(self) -> list[dict[str, Any]]:
        return [s.view() for s in self._services.values()]

    def degraded(self) -> list[str]:
        """Services not running as they should: dead critical ones, peripherals restarting."""
        return [s.name for s in self._services.values()
                if s.state in (ServiceState.RESTARTING, ServiceState.FAILED)]

    # -- supervision ---------------------------------------------------------------------------

    async def _supervise(self, service: Service) -> None:
        if service.critical:
            await self._run_critical(service)
        else:
            await self._keep_running(service)

    async def _run_critical(self, service: Service) -> None:
        try:
            await service.run()
        except Exception as exc:
            self._died(service, exc)
            return
        if service._stopping:
            service.state = ServiceState.STOPPED
        else:
            self._died(service, None)

    def _died(self, service: Service, exc: Exception | None) -> None:
        reason = _reason(exc)
        service.state = ServiceState.FAILED
        service.last_error = reason
        service.error = exc
        if self.failure is not None:
            log.error("critical service %s died too: %s", service.name, reason)
            return
        self.failure = ServiceFailed(service.name, reason, exc)
        # The traceback goes with the station's last word (ServiceFailed, raised from `exc`, at
        # critical), once; this line says at once why the station is stopping.
        log.error("critical service %s died: %s; the station stops in order and exits 1 so "
                  "that systemd restarts it", service.name, reason)
        if self._on_fatal is not None:
            self._on_fatal(self.failure)

    async def _keep_running(self, service: Service) -> None:
        restarts = _Restarts(self._restart.wait())
        retrying = tenacity.AsyncRetrying(
            wait=restarts, stop=tenacity.stop_never, retry=retry_if_exception_type(Exception),
            before_sleep=lambda state: self._restarting(service, restarts, state),
            reraise=True)
        async for attempt in retrying:
            with attempt:
                await self._run_once(service, restarts, attempt.retry_state)
        service.state = ServiceState.STOPPED

    async def _run_once(self, service: Service, restarts: _Restarts,
                        state: RetryCallState) -> None:
        if service._stopping:
            return
        service.state = ServiceState.RUNNING
        if state.attempt_number > 1:
            log.debug("service %s restarted (restart %d)", service.name, service.restarts)
        timer = asyncio.get_running_loop().call_later(
            self._healthy_after, self._healthy, service, restarts, state.attempt_number)
        try:
            await service.run()
        finally:
            timer.cancel()
        if not service._stopping:
            raise _Ended

    def _restarting(self, service: Service, restarts: _Restarts, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        service.state = ServiceState.RESTARTING
        service.restarts += 1
        service.last_error = str(exc) if isinstance(exc, _Ended) else _reason(exc)
        service.error = exc
        if restarts.failing:
            log.debug("service %s died again: %s; restarting it in %.1f s", service.name,
                      service.last_error, wait)
            return
        restarts.failing = True
        log.error("service %s died: %s; restarting it in %.1f s (health shows degraded "
                  "meanwhile)", service.name, service.last_error, wait,
                  exc_info=None if isinstance(exc, _Ended) else exc)

    def _healthy(self, service: Service, restarts: _Restarts, attempt: int) -> None:
        # The backoff of the next death starts over from the policy's first wait.
        restarts.base = attempt - 1
        if restarts.failing:
            restarts.failing = False
            log.info("service %s works again (restarted %d times since start)", service.name,
                     service.restarts)

