"""Error tree of the voice driver: each error names the alarm kind it becomes.

Nothing here ever reaches pump control: the speaker turns every `VoiceError` into a
`VoiceAlarm` and a log line, and keeps taking announcements.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar


class AlarmKind(StrEnum):
    """What is wrong with the voice; the `kind` of a `voice.alarm` event."""

    ENGINE_UNAVAILABLE = "engine_unavailable"  # pyttsx3 or libespeak-ng missing, or init failed
    ENGINE_FAILED = "engine_failed"  # the engine raised or wrote no speech
    VOICE_NOT_FOUND = "voice_not_found"  # the configured voice is not installed
    TIMEOUT = "timeout"  # an utterance took longer than its time limit
    PLAYER_MISSING = "player_missing"  # no `aplay`: pyttsx3's say() would be silent
    SOUND_DEVICE = "sound_device"  # the player could not open the sound card
    OUTPUT_FOLDER = "output_folder"  # the WAV folder cannot be written


class VoiceError(Exception):
    """Base of every voice failure; `kind` says which alarm it raises."""

    kind: ClassVar[AlarmKind]

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EngineUnavailable(VoiceError):
    kind = AlarmKind.ENGINE_UNAVAILABLE


class EngineFailed(VoiceError):
    kind = AlarmKind.ENGINE_FAILED


class VoiceNotFound(VoiceError):
    kind = AlarmKind.VOICE_NOT_FOUND


class SpeechTimeout(VoiceError):
    kind = AlarmKind.TIMEOUT


class PlayerMissing(VoiceError):
    kind = AlarmKind.PLAYER_MISSING


class SoundDeviceError(VoiceError):
    kind = AlarmKind.SOUND_DEVICE


class OutputFolderError(VoiceError):
    kind = AlarmKind.OUTPUT_FOLDER


@dataclass(frozen=True)
class VoiceAlarm:
    """A change of the voice's health: raised (`active`) on the first failure of a kind,
    cleared when an announcement is spoken again."""

    kind: AlarmKind
    active: bool
    message: str

    def to_data(self) -> dict[str, Any]:
        """The `voice.alarm` event's data."""
        return {"kind": self.kind.value, "active": self.active, "message": self.message}
