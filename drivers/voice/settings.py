"""What the voice is told to do: output, voice, loudness, quiet hours and queue limits.

Defaults live on the dataclass fields; the station's `[voice]` section reads them from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time, timedelta
from enum import StrEnum
from pathlib import Path


class Output(StrEnum):
    DEVICE = "device"  # played through the sound card with `aplay`
    FILES = "files"  # written as WAV files into a folder (demo, CI, a remote speaker's pickup)


class QuietAllow(StrEnum):
    """What may still be said during quiet hours."""

    ALARMS = "alarms"
    NOTHING = "nothing"


_CLOCK = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")


def _clock_time(text: str, whole: str) -> time:
    match = _CLOCK.fullmatch(text.strip())
    if match is None:
        raise ValueError(f'"{whole}": "{text.strip()}" is not a time like "22:00"')
    return time(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True)
class QuietHours:
    """A daily window of local time, `start` included, `end` excluded; it may cross midnight."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise ValueError("quiet hours start and end at the same time")

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """"22:00-07:00" (crossing midnight) or "12:00-14:00"."""
        start, dash, end = text.partition("-")
        if not dash:
            raise ValueError(f'"{text}" is not a window like "22:00-07:00"')
        window = (_clock_time(start, text), _clock_time(end, text))
        if window[0] == window[1]:
            raise ValueError(f'"{text}" starts and ends at the same time')
        return cls(*window)

    def __contains__(self, moment: time) -> bool:
        moment = moment.replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class SpeechSettings:
    output: Output = Output.DEVICE
    folder: Path | None = None  # where WAV files go; required with Output.FILES
    voice: str = "cmn-latn-pinyin"  # espeak-ng's `cmn` spells Chinese out as English pinyin
    rate: int = 175  # words per minute, espeak-ng's own default
    volume: float = 1.0  # 0..1
    device: str | None = None  # an ALSA PCM for `aplay -D` ("plughw:1,0"); None: the default
    quiet_hours: QuietHours | None = None
    quiet_allow: QuietAllow = QuietAllow.ALARMS
    dedupe: timedelta = timedelta(seconds=10)  # the same text within this is said once
    max_delay: timedelta = timedelta(seconds=60)  # later than this, only alarms are still said
    queue_size: int = 20
    timeout: timedelta = timedelta(seconds=10)  # per utterance, on top of its playing time
    keep_files: int = 500  # with Output.FILES, older WAV files are removed

    def __post_init__(self) -> None:
        if self.output is Output.FILES and self.folder is None:
            raise ValueError("output to files needs a folder")
        if not 0.0 <= self.volume <= 1.0:
            raise ValueError(f"volume {self.volume} is not within 0..1")
        if self.queue_size < 1 or self.keep_files < 1:
            raise ValueError("queue_size and keep_files must be at least 1")
