"""The `[voice]` section: spoken announcements (docs/voice.md).

    [voice]
    output = "device"                 # or "files" (with folder), for the demo and CI
    volume = 0.8
    quiet_hours = "22:00-07:00"       # only alarms are said then

Without a `[voice]` section the station says nothing. Defaults come from
`drivers.voice.SpeechSettings`, the object the speaker is built from.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from domain.config_reader import Table
from drivers.voice import Output, QuietAllow, QuietHours, SpeechSettings

if TYPE_CHECKING:  # sections.py will import this module to read [voice]
    from .sections import Context

__all__ = ["VoiceConfig", "read_voice"]

_SECOND = timedelta(seconds=1)
# espeak-ng voice names: "cmn-latn-pinyin", "sit/cmn-latn-pinyin", "en+f3".
_VOICE = re.compile(r"[A-Za-z0-9_+/-]{1,64}")
# ALSA PCM names: "default", "plughw:1,0", "dmix:CARD=PCH,DEV=0".
_ALSA_PCM = re.compile(r"[A-Za-z0-9_:,=.-]{1,64}")
MIN_RATE, MAX_RATE = 80, 450  # words per minute espeak-ng accepts


@dataclass(frozen=True)
class VoiceConfig:
    speech: SpeechSettings
    enabled: bool = True


def _fraction(t: Table, key: str, default: float) -> float | None:
    """A number 0..1 (TOML float or integer). Table has no getter for fractions yet, so this
    uses its typed value lookup, which records the key as read and reports a wrong type."""
    value = t._value(key, (int, float), "a number from 0 to 1", False)
    if value is None:
        return default if not t.has(key) else None
    assert isinstance(value, int | float)
    number = float(value)
    if math.isnan(number) or not 0.0 <= number <= 1.0:
        t.error(key, f"{value} is out of range 0..1")
        return None
    return number


def read_voice(t: Table, ctx: Context) -> VoiceConfig | None:
    """The `[voice]` table; None when a value was refused (the problem is recorded)."""
    d = SpeechSettings
    enabled = t.boolean("enabled", True)
    output = t.choice("output", Output, d.output)
    folder = t.parsed("folder", ctx.path, None)
    voice = t.text("voice", d.voice, pattern=_VOICE,
                   rule='an espeak-ng voice name like "cmn-latn-pinyin"')
    rate = t.integer("rate", d.rate, low=MIN_RATE, high=MAX_RATE)
    volume = _fraction(t, "volume", d.volume)
    device = t.text("device", None, pattern=_ALSA_PCM,
                    rule='an ALSA device name like "default" or "plughw:1,0"')
    quiet_hours = t.parsed("quiet_hours", QuietHours.parse, None)
    quiet_allow = t.choice("quiet_hours_allow", QuietAllow, d.quiet_allow)
    dedupe = t.duration("dedupe_seconds", _SECOND, d.dedupe, low=0, high=3600)
    max_delay = t.duration("max_delay_seconds", _SECOND, d.max_delay, low=5, high=3600)
    queue_size = t.integer("queue_size", d.queue_size, low=1, high=1000)
    timeout = t.duration("timeout_seconds", _SECOND, d.timeout, low=1, high=120)
    keep_files = t.integer("keep_files", d.keep_files, low=1, high=100_000)
    t.done()

    if output is Output.FILES and not t.has("folder"):
        t.error("folder", 'missing: output = "files" needs a folder for the WAV files')
    if output is Output.DEVICE:
        for key in ("folder", "keep_files"):
            if t.has(key):
                t.warn(key, 'only used with output = "files"; ignored')
    if output is Output.FILES and t.has("device"):
        t.warn("device", 'only used with output = "device"; ignored')
    if t.has("quiet_hours_allow") and not t.has("quiet_hours"):
        t.warn("quiet_hours_allow", "no quiet_hours are set; ignored")
    if folder is not None and output is Output.FILES and ctx.check_files:
        # The speaker creates a missing folder at start; one that exists must take files.
        if folder.exists() and not folder.is_dir():
            t.error("folder", f"{folder} is not a directory")
        elif folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
            t.error("folder", f"{folder} is not writable by this user")

    if (enabled is None or output is None or voice is None or rate is None or volume is None
            or quiet_allow is None or dedupe is None or max_delay is None or queue_size is None
            or timeout is None or keep_files is None
            or (t.has("folder") and folder is None) or (t.has("device") and device is None)
            or (t.has("quiet_hours") and quiet_hours is None)
            or (output is Output.FILES and folder is None)):
        return None
    speech = SpeechSettings(
        output=output,
        folder=folder if output is Output.FILES else None,
        voice=voice,
        rate=rate,
        volume=volume,
        device=device if output is Output.DEVICE else None,
        quiet_hours=quiet_hours,
        quiet_allow=quiet_allow,
        dedupe=dedupe,
        max_delay=max_delay,
        queue_size=queue_size,
        timeout=timeout,
        keep_files=keep_files,
    )
    return VoiceConfig(speech=speech, enabled=enabled)
