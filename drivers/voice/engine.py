"""pyttsx3 with espeak-ng, owned by one thread, turned into WAV files with a time limit.

Facts that shape this module (PROTOCOLS.md, "Library facts", and pyttsx3 2.99's espeak driver):

- pyttsx3 hangs are reported on repeated use from several threads, so one thread owns the
  engine from creation to release and every call goes through it. espeak-ng keeps one synthesis
  callback per process, so at most one `SpeechEngine` owns it at a time (`_OWNER`).
- `save_to_file` works headless; `runAndWait()` may return before espeak-ng has written the file
  (synthesis runs on espeak-ng's own thread), so the end of an utterance is the engine's
  "finished-utterance" notification, awaited with a time limit.
- Errors inside queued commands (such as an unknown voice) are not raised: the engine reports
  them on its "error" topic and goes on with the previous voice, which would read Chinese with
  an English voice. They are collected and turned into errors here, and the voice is checked
  against the installed ones up front.
- An exception out of `runAndWait()` leaves the engine marked as looping; `endLoop()` resets it.

Every failure is a `VoiceError`; a caller waiting longer than its time limit gets a
`SpeechTimeout` while the thread finishes (or stays stuck) on its own, and later calls fail fast
until it is free again, so nothing ever waits on a hung engine.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import difflib
import gc
import logging
import os
import queue
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from domain.files import PRIVATE_FILE

from .errors import (
    EngineFailed,
    EngineUnavailable,
    SpeechTimeout,
    VoiceError,
    VoiceNotFound,
)
from .player import APLAY, play_wav

WAV_SETTLE = 2.0
"""Seconds the engine's WAV file may take to be closed after its "finished" notification."""
WAV_POLL = 0.02

log = logging.getLogger(__name__)

T = TypeVar("T")
EngineFactory = Callable[[], Any]  # returns a pyttsx3.Engine (untyped library)

_OWNER = threading.Lock()  # espeak-ng: one synthesis callback per process
_OWNER_WAIT = 2.0  # seconds a new engine waits for the previous one to be released


def _discard(*_args: object, **_kwargs: object) -> None:
    pass


def espeak_engine() -> Any:
    """The pyttsx3 engine on espeak-ng; raises when pyttsx3 or libespeak-ng is missing."""
    import pyttsx3
    from pyttsx3.drivers import espeak

    # The driver prints "Audio saved to FILE" on stdout for every file: on a station stdout is
    # the journal, so that module's print is silenced (the speaker logs what it says itself).
    espeak.print = _discard
    return pyttsx3.init("espeak")


def _voice_matches(voice: Any, wanted: str) -> bool:
    # pyttsx3 ids are espeak-ng's voice files, lower-cased: "sit/cmn-latn-pinyin".
    ident = str(getattr(voice, "id", "")).lower()
    name = str(getattr(voice, "name", ""))
    return wanted.lower() in (ident, ident.rpartition("/")[2]) or wanted == name


class SpeechEngine:
    """One thread that owns the TTS engine; `render`, `play` and `call` run there."""

    def __init__(self, *, voice: str, rate: int, volume: float,
                 factory: EngineFactory = espeak_engine, player: tuple[str, ...] = APLAY,
                 device: str | None = None, name: str = "voice") -> None:
        self.voice = voice
        self._rate = rate
        self._volume = volume
        self._factory = factory
        self._player = player
        self._device = device
        self._name = name
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]
                                      | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopped: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._pending: concurrent.futures.Future[Any] | None = None
        # Owned by the thread:
        self._engine: Any = None
        self._tokens: list[Any] = []
        self._owning = False
        self._voice_ok = False
        self._finished = threading.Event()
        self._errors: list[str] = []

    # -- the asyncio side ---------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the speech engine is already started")
        self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
        self._thread.start()

    async def call(self, fn: Callable[[], T], limit: float) -> T:
        """Run `fn` in the engine's thread; SpeechTimeout after `limit` seconds. (The limits
        here are handed to the thread, which times its own waits, hence not `timeout`.)"""
        if self._thread is None or self._stopped.done():
            raise EngineUnavailable("the speech engine is not running")
        if self._pending is not None and not self._pending.done():
            raise SpeechTimeout("the speech engine is still busy with an earlier utterance")
        job: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._pending = job
        self._jobs.put((fn, job))
        try:
            return await asyncio.wait_for(asyncio.wrap_future(job), limit)
        except TimeoutError:
            raise SpeechTimeout(
                f"the speech engine did not answer within {limit:.1f} s") from None

    async def prepare(self, limit: float) -> None:
        """Create the engine and check the voice now rather than at the first announcement."""
        await self.call(self._prepare, limit)

    async def render(self, text: str, path: Path, limit: float) -> None:
        """Write `text` spoken as a WAV file at `path` (whole, or not at all)."""
        await self.call(lambda: self._render(text, path, limit), limit + 1.0)

    async def play(self, path: Path, limit: float) -> None:
        """Play a WAV file on the sound device; the player is killed after `limit` seconds."""
        await self.call(lambda: play_wav(path, timeout=limit, command=self._player,
                                         device=self._device), limit + 1.0)

    async def close(self, limit: float = 5.0) -> None:
        """Release the engine and end the thread; a thread stuck in the engine is left behind
        (it is a daemon thread) with an error logged, rather than hanging the shutdown."""
        if self._thread is None:
            return
        self._jobs.put(None)
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(self._stopped)), limit)
        except TimeoutError:
            log.error("the speech engine thread is stuck; leaving it behind")
            return
        self._thread.join()

    # -- the engine's thread ------------------------------------------------------------------

    def _serve(self) -> None:
        try:
            while (item := self._jobs.get()) is not None:
                fn, job = item
                if not job.set_running_or_notify_cancel():
                    continue  # its caller gave up before it started
                try:
                    job.set_result(fn())
                except BaseException as exc:  # handed to the caller, who decides
                    job.set_exception(exc)
                del item, fn, job
        finally:
            self._release()
            self._stopped.set_result(None)

    def _release(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            for token in self._tokens:
                with contextlib.suppress(Exception):
                    engine.disconnect(token)
            self._tokens.clear()
            del engine
            # The driver detaches espeak-ng's callback when it is collected: do it now, before
            # another engine may take over.
            gc.collect()
        if self._owning:
            self._owning = False
            _OWNER.release()

    def _on_finished(self, name: object = None, completed: object = True) -> None:
        self._finished.set()  # called on espeak-ng's thread

    def _on_error(self, name: object = None, exception: object = None) -> None:
        self._errors.append(str(exception))

    def _ensure_engine(self) -> Any:
        if self._engine is not None:
            return self._engine
        if not self._owning:
            if not _OWNER.acquire(timeout=_OWNER_WAIT):
                raise EngineUnavailable("espeak-ng is held by another speech engine")
            self._owning = True
        try:
            engine = self._factory()
        except Exception as exc:  # ImportError, OSError (no libespeak-ng), RuntimeError
            raise EngineUnavailable(f"cannot start the speech engine: {exc}") from None
        self._tokens = [engine.connect("finished-utterance", self._on_finished),
                        engine.connect("error", self._on_error)]
        self._engine = engine
        self._voice_ok = False
        return engine

    def _check_voice(self, engine: Any) -> None:
        if self._voice_ok:
            return
        try:
            voices = list(engine.getProperty("voices"))
        except Exception as exc:
            raise EngineFailed(f"cannot list the installed voices: {exc}") from None
        if not any(_voice_matches(v, self.voice) for v in voices):
            known = sorted({str(v.id).rpartition("/")[2] for v in voices})
            near = difflib.get_close_matches(self.voice.lower(), known, n=3)
            hint = f"; close: {', '.join(near)}" if near else ""
            raise VoiceNotFound(f"voice {self.voice!r} is not installed{hint}")
        self._voice_ok = True

    def _prepare(self) -> None:
        self._check_voice(self._ensure_engine())

    def _reset(self, engine: Any) -> None:
        """Bring an engine back to idle after a failure, so the next utterance can run."""
        with contextlib.suppress(Exception):
            engine.endLoop()  # raises when no loop was left running: nothing to reset
        with contextlib.suppress(Exception):
            engine.stop()

    def _render(self, text: str, path: Path, timeout: float) -> None:
        engine = self._ensure_engine()
        self._check_voice(engine)
        part = path.with_name(path.name + ".part")
        self._finished.clear()
        self._errors.clear()
        try:
            # Set every time: a failed voice change leaves the engine on its previous voice.
            engine.setProperty("voice", self.voice)
            engine.setProperty("rate", self._rate)
            engine.setProperty("volume", self._volume)
            engine.save_to_file(text, str(part))
            engine.runAndWait()
        except Exception as exc:
            self._reset(engine)
            with contextlib.suppress(OSError):
                part.unlink()
            raise EngineFailed(f"the speech engine failed: {exc}") from None
        try:
            if not self._finished.wait(timeout):
                self._reset(engine)
                raise SpeechTimeout(f"no speech after {timeout:.1f} s")
            if self._errors:
                raise EngineFailed(f"the speech engine reported: {self._errors[0]}")
            self._check_wav(part)
            # The speech library makes the file as the umask says; ours are the owner's alone.
            os.chmod(part, PRIVATE_FILE)
            os.replace(part, path)
        except VoiceError:
            with contextlib.suppress(OSError):
                part.unlink()
            raise
        except OSError as exc:
            with contextlib.suppress(OSError):
                part.unlink()
            raise EngineFailed(f"cannot keep the speech file {path}: {exc}") from None

    @staticmethod
    def _check_wav(path: Path) -> None:
        # espeak-ng fills in the WAV header's sizes when it closes the file, which on a busy
        # machine can come a moment after its "finished" notification: a header that still
        # says 0 frames is read again for a short while before the file counts as empty.
        deadline = time.monotonic() + WAV_SETTLE
        while True:
            try:
                with wave.open(str(path), "rb") as wav:
                    frames = wav.getnframes()
            except (OSError, wave.Error, EOFError) as exc:
                if time.monotonic() >= deadline:
                    raise EngineFailed(f"the speech engine wrote no usable WAV file: {exc}"
                                       ) from None
                frames = 0
            else:
                if frames > 0 or time.monotonic() >= deadline:
                    break
            time.sleep(WAV_POLL)
        if frames == 0:
            raise EngineFailed("the speech engine wrote an empty WAV file")
