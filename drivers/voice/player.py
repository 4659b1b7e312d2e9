"""Playing a WAV file through the sound card with ALSA's `aplay`, and reading WAV facts.

pyttsx3's own `say()` on Linux renders a temporary WAV and runs `os.system("aplay ...")`,
ignoring the result: without `aplay` or without a sound card the station would be silent and
nobody would know. So the speaker renders with `save_to_file` and plays the file here, where a
missing player, a player that cannot open the device and a player that hangs are all errors.

Blocking calls: run them in the voice thread, never on the event loop.
"""

from __future__ import annotations

import subprocess
import wave
from collections.abc import Sequence
from pathlib import Path

from .errors import EngineFailed, PlayerMissing, SoundDeviceError, SpeechTimeout

APLAY: tuple[str, ...] = ("aplay", "-q")


def wav_seconds(path: Path) -> float:
    """The playing time of a WAV file."""
    try:
        with wave.open(str(path), "rb") as wav:
            return wav.getnframes() / wav.getframerate()
    except (OSError, EOFError, wave.Error) as exc:
        raise EngineFailed(f"{path} is not a WAV file: {exc}") from None


def play_wav(path: Path, *, timeout: float, command: Sequence[str] = APLAY,
             device: str | None = None) -> None:
    """Play `path` and return when it has been played; kill the player after `timeout`."""
    argv = [*command, *(("-D", device) if device else ()), str(path)]
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=timeout, check=False)
    except FileNotFoundError:
        raise PlayerMissing(
            f"{command[0]} is not installed (Debian: alsa-utils); announcements cannot be "
            "played") from None
    except PermissionError as exc:
        raise PlayerMissing(f"cannot run {command[0]}: {exc.strerror}") from None
    except subprocess.TimeoutExpired:
        # subprocess.run has killed and reaped the player by now.
        raise SpeechTimeout(f"{command[0]} did not finish within {timeout:.1f} s; "
                            "the sound device may be stuck") from None
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        why = lines[-1] if lines else f"exit status {done.returncode}"
        raise SoundDeviceError(f"{command[0]} cannot play on the sound device: {why}")
