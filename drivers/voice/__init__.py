"""Spoken announcements in Mandarin: pyttsx3 with espeak-ng (PROTOCOLS.md, "Library facts").

``numbers`` and ``phrases`` build what is said (pure), ``queue`` decides what is said next
(sans-I/O, time passed in), ``engine`` owns the TTS engine in one thread, ``player`` plays WAV
files with ``aplay``, and ``speaker`` is the asyncio service that ties them together and turns
every failure into a ``VoiceAlarm``.
"""

from .engine import SpeechEngine, espeak_engine
from .errors import (
    AlarmKind,
    EngineFailed,
    EngineUnavailable,
    OutputFolderError,
    PlayerMissing,
    SoundDeviceError,
    SpeechTimeout,
    VoiceAlarm,
    VoiceError,
    VoiceNotFound,
)
from .queue import Announcement, AnnouncementQueue, Priority, Verdict
from .settings import Output, QuietAllow, QuietHours, SpeechSettings
from .speaker import AlarmSink, Speaker

__all__ = [
    "AlarmKind",
    "AlarmSink",
    "Announcement",
    "AnnouncementQueue",
    "EngineFailed",
    "EngineUnavailable",
    "Output",
    "OutputFolderError",
    "PlayerMissing",
    "Priority",
    "QuietAllow",
    "QuietHours",
    "SoundDeviceError",
    "Speaker",
    "SpeechEngine",
    "SpeechSettings",
    "SpeechTimeout",
    "Verdict",
    "VoiceAlarm",
    "VoiceError",
    "VoiceNotFound",
    "espeak_engine",
]
