"""Shared by the voice tests: a fake clock, WAV checks, and no thread left behind."""

from __future__ import annotations

import array
import threading
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from drivers.voice import VoiceAlarm

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 22, 9, 15, tzinfo=SHANGHAI)


@dataclass
class FakeClock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class Alarms:
    """An alarm sink that keeps what it is told."""

    def __init__(self) -> None:
        self.seen: list[VoiceAlarm] = []

    async def __call__(self, alarm: VoiceAlarm) -> None:
        self.seen.append(alarm)

    @property
    def kinds(self) -> list[tuple[str, bool]]:
        return [(a.kind.value, a.active) for a in self.seen]


@pytest.fixture
def alarms() -> Alarms:
    return Alarms()


@dataclass(frozen=True)
class Speech:
    channels: int
    sample_width: int
    rate: int
    seconds: float
    peak: int
    rms: float


def read_speech(path: Path) -> Speech:
    """Checks the RIFF header by hand, then reads the samples with the wave module."""
    head = path.read_bytes()[:12]
    assert head[:4] == b"RIFF" and head[8:12] == b"WAVE", f"{path} is not a RIFF WAVE file"
    with wave.open(str(path), "rb") as wav:
        assert wav.getcomptype() == "NONE"
        frames = wav.readframes(wav.getnframes())
        speech = wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()
    assert speech[1] == 2, "16-bit samples expected"
    samples = array.array("h", frames)
    peak = max((abs(s) for s in samples), default=0)
    rms = (sum(s * s for s in samples) / len(samples)) ** 0.5 if samples else 0.0
    return Speech(speech[0], speech[1], speech[2], speech[3] / speech[2], peak, rms)


def assert_speech(path: Path) -> Speech:
    """A real utterance: mono 16-bit PCM, longer than half a second, not silence."""
    speech = read_speech(path)
    assert speech.channels == 1
    assert speech.rate in (16000, 22050, 44100)
    assert speech.seconds > 0.5, f"only {speech.seconds:.2f} s of audio"
    assert speech.peak > 3000 and speech.rms > 300, f"silent audio: {speech}"
    return speech


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    # A _DummyThread is a thread Python did not start (espeak-ng's own synthesis thread, seen
    # when it calls back into Python); it lives as long as the library, not the test.
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()
              and not isinstance(t, threading._DummyThread)]
    assert not leaked, f"threads left running: {leaked}"
