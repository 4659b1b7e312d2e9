"""The print queue: jobs go to the spool at once, one worker thread prints them in order.

Nothing here blocks or fails its caller because of the printer. `submit` writes the job to the
spool and returns; the worker sends the oldest job, and when the printer is off, out of paper
or unreachable it keeps the job, reports the change of condition once (`on_alarm`) and tries
again after the printer's retry policy's wait (`domain.retry.PRINTER_RETRY`: capped, jittered,
run by tenacity), or at once when `wake()` is called (paper reloaded).
Jobs left in the spool by a stop or a crash are printed by the next queue on that directory.

A job is removed from the spool once the printer has taken all of its bytes, so a crash between
the two prints it again: a receipt twice rather than none.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType

from tenacity import retry_if_result

from .spool import Job, Spool, SpoolError
from .status import Backoff, ConditionTracker, PrinterAlarm, PrinterCondition
from .transport import EscposPrinter, PrinterError, send_job

__all__ = ["PrintQueue", "QueueStatus"]

log = logging.getLogger(__name__)

DEFAULT_BACKOFF = Backoff()


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class QueueStatus:
    printer: str
    condition: PrinterCondition
    message: str
    pending_jobs: int
    printed_jobs: int  # since this queue started
    discarded_jobs: int


class PrintQueue:
    """Jobs for one printer, spooled in `directory`; a context manager that starts and stops
    the worker thread.

    `connect` makes an unopened python-escpos printer for each attempt (`transport.connector`).
    `on_alarm` is called from the worker thread at each change of the printer's condition; it
    must not block. Jobs older than `expiry` when their turn comes are dropped (None: never):
    a receipt for a customer long gone wastes paper, and a reprint is one request away.
    """

    def __init__(
        self,
        directory: Path,
        connect: Callable[[], EscposPrinter],
        *,
        printer: str,
        on_alarm: Callable[[PrinterAlarm], None] | None = None,
        query_status: bool = True,
        timeout: float = 5.0,
        backoff: Backoff = DEFAULT_BACKOFF,
        expiry: timedelta | None = timedelta(hours=1),
        clock: Callable[[], datetime] = _utc_now,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._spool = Spool(directory)
        self._connect = connect
        self._printer = printer
        self._on_alarm = on_alarm
        self._query_status = query_status
        self._timeout = timeout
        self._backoff = backoff
        self._expiry = expiry
        self._clock = clock
        self._rand = rand
        self._tracker = ConditionTracker(printer)
        self._cond = threading.Condition()
        self._stopping = False
        self._woken = False
        self._thread: threading.Thread | None = None
        self._printed = 0
        self._discarded = 0

    # -- the caller's side -------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("print queue already started")
        self._thread = threading.Thread(target=self._run, name=f"printer {self._printer}",
                                        daemon=True)
        self._thread.start()

    def close(self, timeout: float | None = None) -> None:
        """Stop after the attempt in progress (at most a connect and a write timeout); jobs
        not printed stay in the spool."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> PrintQueue:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def submit(self, content: bytes | Callable[[int], bytes], *, kind: str = "document",
               ref: str = "", copies: int = 1) -> Job:
        """Spool a job and return it; `content` is the bytes, or builds them from the job's
        number (a receipt prints its own number). Raises SpoolError when the spool cannot be
        written (disk full), never because of the printer."""
        if copies < 1:
            raise ValueError(f"copies must be at least 1, got {copies}")

        def make(number: int) -> Job:
            data = content(number) if callable(content) else content
            return Job(number, kind, ref, copies, self._clock(), data)

        with self._cond:
            try:
                job = self._spool.add(make)
            except OSError as exc:
                raise SpoolError(f"cannot spool the {kind}: {exc.strerror}") from exc
            self._cond.notify_all()
        log.debug("spooled %s %d (%s), %d waiting", kind, job.number, ref, len(self._spool))
        return job

    def wake(self) -> None:
        """Try the printer now instead of at the end of the backoff."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def pending(self) -> list[int]:
        """Numbers of the jobs waiting, oldest first."""
        with self._cond:
            return self._spool.numbers()

    def status(self) -> QueueStatus:
        with self._cond:
            return QueueStatus(self._printer, self._tracker.condition, self._tracker.message,
                               len(self._spool), self._printed, self._discarded)

    # -- the worker --------------------------------------------------------------------------

    def _next(self) -> Job | None:
        """The oldest readable job, or None when stopping."""
        with self._cond:
            while True:
                self._cond.wait_for(lambda: self._stopping or len(self._spool) > 0)
                if self._stopping:
                    return None
                number = self._spool.numbers()[0]
                try:
                    return self._spool.load(number)
                except SpoolError as exc:
                    where = self._spool.quarantine(number)
                    log.error("printer %s: job %d cannot be read (%s), moved to %s",
                              self._printer, number, exc, where)

    def _expired(self, job: Job) -> bool:
        if self._expiry is None or self._clock() - job.created_at <= self._expiry:
            return False
        with self._cond:
            self._spool.remove(job.number)
            self._discarded += 1
        log.warning("printer %s: %s %d (%s) dropped unprinted after waiting longer than %s",
                    self._printer, job.kind, job.number, job.ref, self._expiry)
        return True

    def _attempt(self, job: Job) -> tuple[PrinterCondition, str]:
        try:
            condition = send_job(self._connect(), job.data, copies=job.copies,
                                 query_status=self._query_status, timeout=self._timeout)
        except PrinterError as exc:
            return exc.condition, exc.message
        except Exception as exc:  # a bug or a library surprise must not kill the worker
            log.exception("printer %s: unexpected failure", self._printer)
            return PrinterCondition.FAILED, f"{type(exc).__name__}: {exc}"
        return condition, "paper low" if condition is PrinterCondition.PAPER_LOW else ""

    def _report(self, job: Job, condition: PrinterCondition, message: str) -> None:
        with self._cond:
            previous = self._tracker.condition
            if condition.prints:
                self._spool.remove(job.number)
                self._printed += 1
                self._woken = False
            alarm = self._tracker.observe(condition, message, len(self._spool))
        name = self._printer
        if condition.prints:
            log.debug("printer %s: printed %s %d (%s)", name, job.kind, job.number, job.ref)
            if alarm is not None and not previous.prints:
                log.info("printer %s: printing again (was %s)", name, previous.value)
            if alarm is not None and condition is PrinterCondition.PAPER_LOW:
                log.warning("printer %s: paper low", name)
        elif alarm is not None:
            log.error("printer %s: %s: %s; %d job(s) waiting", name, condition.value, message,
                      alarm.pending_jobs)
        else:
            log.debug("printer %s: still %s: %s", name, condition.value, message)
        if alarm is not None and self._on_alarm is not None:
            try:
                self._on_alarm(alarm)
            except Exception:
                log.exception("printer %s: alarm callback failed", name)

    def _pause(self, delay: float) -> None:
        """tenacity's sleep: the policy's wait, cut short by `wake()` or `close()`."""
        with self._cond:
            self._cond.wait_for(lambda: self._stopping or self._woken, timeout=delay)
            self._woken = False

    def _try(self, job: Job) -> bool:
        """One attempt at `job`; True when it is done with (printed, expired, or stopping)."""
        with self._cond:
            if self._stopping:
                return True
        if self._expired(job):
            return True
        condition, message = self._attempt(job)
        self._report(job, condition, message)
        return condition.prints

    def _run(self) -> None:
        while (job := self._next()) is not None:
            # The printer's policy runs the attempts; `_report` logs and raises an alarm per
            # change of condition, so tenacity's own failure log is off here.
            retrying = self._backoff.policy().retrying(
                log, f"printer {self._printer}", retry=retry_if_result(lambda done: not done),
                until=lambda: self._stopping, sleep=self._pause, rand=self._rand,
                log_failures=False, on_give_up=lambda state: True)
            retrying(self._try, job)
