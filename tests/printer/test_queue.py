"""The print queue against printers that are there, off, out of paper, silent or slow.

Network printers are real TCP servers on loopback; the paper sensor is python-escpos's Dummy
printer answering DLE EOT. Waits are on real threads and sockets, bounded, never fixed sleeps.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from drivers.printer import (
    Backoff,
    PrinterAlarm,
    PrinterCondition,
    PrinterKind,
    PrintQueue,
    Target,
    connector,
)
from drivers.printer.transport import EscposPrinter
from tests.helpers import free_port

from .fakes import DummyPrinters, FakeNetworkPrinter, PrinterState

FAST = Backoff(first=0.01, cap=0.05, jitter=0.0)
SLOW = Backoff(first=60.0, cap=60.0, jitter=0.0)  # only wake() or close() cuts it short
JOB = b"\x1b@receipt\n\x1dV\x01"


def network(port: int, timeout: float = 2.0) -> Target:
    return Target(PrinterKind.NETWORK, f"127.0.0.1:{port}", host="127.0.0.1", port=port,
                  timeout=timeout)


def eventually(predicate: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.005)


class Alarms:
    def __init__(self) -> None:
        self.queue: queue.Queue[PrinterAlarm] = queue.Queue()

    def __call__(self, alarm: PrinterAlarm) -> None:
        self.queue.put(alarm)

    def next(self, timeout: float = 10.0) -> PrinterAlarm:
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no alarm came") from None

    def none_left(self) -> bool:
        return self.queue.empty()


class Counting:
    """A connect factory that counts attempts."""

    def __init__(self, make: Callable[[], EscposPrinter]) -> None:
        self.make = make
        self.attempts = 0

    def __call__(self) -> EscposPrinter:
        self.attempts += 1
        return self.make()


@contextmanager
def running(directory: Path, connect: Callable[[], Any], **kwargs: Any) -> Iterator[PrintQueue]:
    kwargs.setdefault("printer", "test printer")
    kwargs.setdefault("backoff", FAST)
    with PrintQueue(directory, connect, **kwargs) as print_queue:
        yield print_queue


def test_jobs_print_in_order_over_a_real_socket(tmp_path: Path) -> None:
    with FakeNetworkPrinter() as printer, \
            running(tmp_path, connector(network(printer.port))) as q:
        for n in range(3):
            q.submit(JOB + bytes([0x30 + n]) + b"\n")
        jobs = printer.wait_jobs(3)
        eventually(lambda: q.status().pending_jobs == 0, what="the spool to empty")
    assert jobs == [JOB + b"0\n", JOB + b"1\n", JOB + b"2\n"]
    assert printer.status_queries[:2] == [1, 4]  # online? paper? before each job
    assert q.status().printed_jobs == 3
    assert not list(tmp_path.glob("*.job"))


def test_printer_offline_alarm_job_kept_then_printed_when_it_comes_up(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there yet
    alarms = Alarms()
    connect = Counting(connector(network(port)))
    with running(tmp_path, connect, on_alarm=alarms) as q:
        job = q.submit(JOB)
        alarm = alarms.next()
        assert alarm.condition is PrinterCondition.OFFLINE
        assert "refused" in alarm.message.lower()
        assert alarm.pending_jobs == 1
        eventually(lambda: connect.attempts >= 4, what="retries")
        assert alarms.none_left()  # one alarm for the outage, not one per retry
        assert q.pending() == [job.number]
        assert (tmp_path / f"{job.number:010d}.job").exists()
        with FakeNetworkPrinter(port) as printer:
            assert printer.wait_jobs(1) == [JOB]
            recovered = alarms.next()
    assert recovered.recovered and recovered.previous is PrinterCondition.OFFLINE
    assert recovered.event_data()["alarm"] == "recovered"
    assert q.pending() == []


def test_logs_tell_changes_not_repetitions(tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    printers = DummyPrinters()
    printers.state.online = False
    alarms = Alarms()
    with caplog.at_level(logging.DEBUG, logger="drivers.printer.queue"), \
            running(tmp_path, printers, on_alarm=alarms) as q:
        q.submit(JOB)
        alarms.next()
        printers.wait_attempts(4)
        printers.state.online = True
        alarms.next()
        eventually(lambda: q.pending() == [])
    records = [(r.levelno, r.getMessage()) for r in caplog.records
               if r.name == "drivers.printer.queue"]
    errors = [m for level, m in records if level == logging.ERROR]
    assert errors == ["printer test printer: offline: the printer is offline; 1 job(s) waiting"]
    assert sum(1 for level, m in records if level == logging.DEBUG and "still offline" in m) >= 2
    assert [m for level, m in records if level == logging.INFO] == [
        "printer test printer: printing again (was offline)"]


def test_paper_out_alarm_then_printed_after_reloading(tmp_path: Path) -> None:
    printers = DummyPrinters()
    printers.state.paper = "out"
    alarms = Alarms()
    with running(tmp_path, printers, on_alarm=alarms, backoff=SLOW) as q:
        q.submit(JOB)
        alarm = alarms.next()
        assert alarm.condition is PrinterCondition.PAPER_OUT
        assert alarm.message == "out of paper"
        assert printers.printed == [] and q.pending() == [1]
        printers.state.paper = "ok"  # the attendant changes the roll...
        q.wake()  # ...and presses "retry" on the console
        assert alarms.next().recovered
        eventually(lambda: printers.printed, what="the job to print")
    assert printers.printed == [JOB]
    assert printers.attempts == 2


def test_cover_open_is_offline_with_the_cause(tmp_path: Path) -> None:
    printers = DummyPrinters()
    printers.state.cover_open = True
    alarms = Alarms()
    with running(tmp_path, printers, on_alarm=alarms, backoff=SLOW) as q:
        q.submit(JOB)
        alarm = alarms.next()
    assert alarm.condition is PrinterCondition.OFFLINE
    assert "cover open" in alarm.message
    assert printers.printed == []


def test_paper_low_still_prints_and_warns(tmp_path: Path) -> None:
    printers = DummyPrinters()
    printers.state.paper = "low"
    alarms = Alarms()
    with running(tmp_path, printers, on_alarm=alarms) as q:
        q.submit(JOB)
        assert alarms.next().condition is PrinterCondition.PAPER_LOW
        eventually(lambda: printers.printed)
        assert q.pending() == []
    assert printers.printed == [JOB]


def test_jobs_left_in_the_spool_are_printed_after_a_restart(tmp_path: Path) -> None:
    printers = DummyPrinters()
    printers.state.online = False
    alarms = Alarms()
    with running(tmp_path, printers, on_alarm=alarms, backoff=SLOW) as first:
        numbers = [first.submit(JOB + bytes([0x30 + n])).number for n in range(3)]
        assert alarms.next().condition is PrinterCondition.OFFLINE
    # The daemon stopped with three receipts unprinted.
    assert numbers == [1, 2, 3]
    assert len(list(tmp_path.glob("*.job"))) == 3
    with FakeNetworkPrinter() as printer, \
            running(tmp_path, connector(network(printer.port))) as second:
        assert printer.wait_jobs(3) == [JOB + b"0", JOB + b"1", JOB + b"2"]
        assert second.submit(JOB).number == 4  # numbering goes on
        printer.wait_jobs(4)
        eventually(lambda: second.pending() == [])


def test_a_printer_that_never_answers_status(tmp_path: Path) -> None:
    state = PrinterState()
    state.answers_status = False
    alarms = Alarms()
    with FakeNetworkPrinter(state=state) as printer:
        target = network(printer.port, timeout=0.3)
        with running(tmp_path, connector(target), on_alarm=alarms, backoff=SLOW,
                     timeout=0.3) as q:
            q.submit(JOB)
            alarm = alarms.next()
            assert alarm.condition is PrinterCondition.OFFLINE
            assert "query_status = false" in alarm.message
        # Configured not to ask, the same printer prints the job left behind.
        with running(tmp_path, connector(target), query_status=False):
            assert printer.wait_jobs(1) == [JOB]


def test_serial_printer_behind_a_serial_to_ethernet_converter(tmp_path: Path) -> None:
    with FakeNetworkPrinter() as printer:
        url = f"socket://127.0.0.1:{printer.port}"
        target = Target(PrinterKind.SERIAL, url, device=url, timeout=2.0)
        with running(tmp_path / "spool", connector(target)) as q:
            q.submit(JOB)
            assert printer.wait_jobs(1) == [JOB]
            eventually(lambda: q.pending() == [])
    assert printer.status_queries[:2] == [1, 4]


def test_file_printer_appends_every_job(tmp_path: Path) -> None:
    out = tmp_path / "receipts.bin"
    target = Target(PrinterKind.FILE, str(out), device=str(out))
    with running(tmp_path / "spool", connector(target),
                 query_status=target.reports_status) as q:
        q.submit(b"one\n")
        q.submit(b"two\n", copies=2)
        eventually(lambda: q.status().printed_jobs == 2)
    assert out.read_bytes() == b"one\ntwo\ntwo\n"  # no status query written into the file


def test_file_printer_in_a_missing_directory_is_offline(tmp_path: Path) -> None:
    out = tmp_path / "gone" / "lp0"
    alarms = Alarms()
    with running(tmp_path / "spool", connector(Target(PrinterKind.FILE, str(out),
                                                      device=str(out))),
                 on_alarm=alarms, query_status=False, backoff=SLOW) as q:
        q.submit(JOB)
        alarm = alarms.next()
    assert alarm.condition is PrinterCondition.OFFLINE
    assert "No such file" in alarm.message


@pytest.mark.skipif(__import__("importlib").util.find_spec("usb") is not None,
                    reason="pyusb is installed")
def test_usb_without_pyusb_fails_with_advice(tmp_path: Path) -> None:
    alarms = Alarms()
    target = Target(PrinterKind.USB, "usb:0x0416:0x5011", usb_vendor=0x0416,
                    usb_product=0x5011)
    with running(tmp_path, connector(target), on_alarm=alarms, backoff=SLOW) as q:
        q.submit(JOB)
        alarm = alarms.next()
    assert alarm.condition is PrinterCondition.FAILED
    assert "pyusb" in alarm.message and "/dev/usb/lp0" in alarm.message


def test_submit_never_waits_for_a_hanging_printer(tmp_path: Path) -> None:
    printers = DummyPrinters()
    hang = threading.Event()

    def hanging() -> EscposPrinter:
        hang.wait(10)  # the printer takes its time to connect
        return printers()

    with running(tmp_path, hanging) as q:
        q.submit(JOB)
        q.submit(JOB)  # both return while the worker is stuck on the first
        assert q.pending() == [1, 2]
        hang.set()
        eventually(lambda: len(printers.printed) == 2)


def test_close_cuts_a_long_backoff_short(tmp_path: Path) -> None:
    printers = DummyPrinters()
    printers.state.online = False
    alarms = Alarms()
    q = PrintQueue(tmp_path, printers, printer="p", on_alarm=alarms, backoff=SLOW)
    q.start()
    q.submit(JOB)
    alarms.next()  # now waiting 60 s before the next try
    q.close(timeout=10)
    assert not any(t.name == "printer p" for t in threading.enumerate())


def test_old_jobs_are_dropped_not_printed(tmp_path: Path) -> None:
    now = [datetime(2026, 11, 22, 1, 0, tzinfo=UTC)]
    spooler = PrintQueue(tmp_path, DummyPrinters(), printer="p", clock=lambda: now[0])
    spooler.submit(b"stale\n")  # spooled, never printed: the station went down
    now[0] += timedelta(hours=3)
    printers = DummyPrinters()
    with running(tmp_path, printers, clock=lambda: now[0],
                 expiry=timedelta(hours=1)) as q:
        q.submit(b"fresh\n")
        eventually(lambda: printers.printed)
        eventually(lambda: q.pending() == [])
        assert q.status().discarded_jobs == 1
    assert printers.printed == [b"fresh\n"]


def test_a_corrupt_job_is_set_aside_and_the_rest_print(tmp_path: Path) -> None:
    spooler = PrintQueue(tmp_path, DummyPrinters(), printer="p")
    spooler.submit(b"first\n")
    spooler.submit(b"second\n")
    (tmp_path / "0000000001.job").write_bytes(b"FCPJ1\n{not json")
    printers = DummyPrinters()
    with running(tmp_path, printers) as q:
        eventually(lambda: printers.printed)
        eventually(lambda: q.pending() == [])
    assert printers.printed == [b"second\n"]
    assert (tmp_path / "corrupt" / "0000000001.job").exists()
