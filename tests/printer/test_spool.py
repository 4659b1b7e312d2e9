"""The spool directory: jobs as files that survive restarts and refuse to be half-read."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.printer import Job, Spool, SpoolError

T0 = datetime(2026, 11, 22, 1, 15, tzinfo=UTC)


def job(number: int, data: bytes = b"\x1b@hello\n") -> Job:
    return Job(number, "receipt", f"sale-{number}", 1, T0, data)


def test_job_round_trip() -> None:
    original = Job(7, "receipt", "销售-7", 2, T0, bytes(range(256)))
    assert Job.from_bytes(original.to_bytes()) == original


@pytest.mark.parametrize("damage", [
    lambda raw: raw[:-1],  # truncated data
    lambda raw: raw[:-1] + b"X",  # changed data
    lambda raw: raw[:10],  # truncated header
    lambda raw: b"GARBAGE" + raw,
    lambda raw: raw.replace(b'"copies":1', b'"copies":"x"'),
])
def test_a_damaged_job_is_refused(damage) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SpoolError):
        Job.from_bytes(damage(job(1).to_bytes()))


def test_jobs_are_numbered_and_kept_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    for _ in range(3):
        spool.add(job)
    assert spool.numbers() == [1, 2, 3]
    assert spool.load(2) == job(2)
    spool.remove(1)
    assert spool.numbers() == [2, 3]
    assert sorted(p.name for p in (tmp_path / "spool").glob("*.job")) == [
        "0000000002.job", "0000000003.job"]


def test_numbers_continue_after_a_restart_even_when_everything_printed(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for _ in range(3):
        spool.add(job)
    for number in spool.numbers():
        spool.remove(number)
    again = Spool(tmp_path)
    assert again.numbers() == []
    assert again.add(job).number == 4  # a receipt number is never used twice


def test_waiting_jobs_are_found_after_a_restart(tmp_path: Path) -> None:
    first = Spool(tmp_path)
    first.add(job)
    first.add(job)
    (tmp_path / "0000000003.job.tmp").write_bytes(b"half a job")  # a crash mid-write
    second = Spool(tmp_path)
    assert second.numbers() == [1, 2]
    assert not list(tmp_path.glob("*.tmp"))


def test_a_job_must_carry_its_number(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Spool(tmp_path).add(lambda number: job(number + 1))


def test_unreadable_job_is_quarantined(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.add(job)
    path = tmp_path / "0000000001.job"
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(SpoolError):
        spool.load(1)
    moved = spool.quarantine(1)
    assert moved == tmp_path / "corrupt" / "0000000001.job" and moved.exists()
    assert spool.numbers() == []


def test_an_unusable_directory_is_a_spool_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(SpoolError):
        Spool(blocker / "spool")


@settings(deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_are_a_job_or_a_spool_error(raw: bytes) -> None:
    for candidate in (raw, b"FCPJ1\n" + raw, job(1).to_bytes()[:20] + raw):
        with contextlib.suppress(SpoolError):
            Job.from_bytes(candidate)
