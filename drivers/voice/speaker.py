"""The voice service: a queue of announcements said one at a time, failures turned into alarms.

    async with Speaker(settings, zone=ZoneInfo("Asia/Shanghai"), on_alarm=record) as speaker:
        speaker.announce(Announcement("三号枪已授权，请加油", Priority.SERVICE, "authorized"))

`announce()` never blocks and never raises: it answers with the queue's verdict. One task takes
announcements from the queue; the speech engine's thread renders each to a WAV file, which is
then played on the sound card (`output = device`) or kept in a folder (`output = files`).

A failure never stops the queue and never reaches the caller. Its first occurrence logs an
error and calls `on_alarm` with an active `VoiceAlarm`; repeats log at debug; the next
announcement that gets through logs at info and calls `on_alarm` with the alarm cleared.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from types import TracebackType

from domain.files import private_dir

from .engine import EngineFactory, SpeechEngine, espeak_engine
from .errors import (
    AlarmKind,
    OutputFolderError,
    PlayerMissing,
    VoiceAlarm,
    VoiceError,
)
from .player import APLAY, wav_seconds
from .queue import Announcement, AnnouncementQueue, Verdict
from .settings import Output, SpeechSettings

log = logging.getLogger(__name__)

AlarmSink = Callable[[VoiceAlarm], Awaitable[None]]

# WAV files the speaker writes: "20261122-091500-sale.wav", "20261122-091500-sale-2.wav".
_OUR_FILE = re.compile(r"[0-9]{8}-[0-9]{6}-[a-z_]+(?:-[0-9]+)?\.wav")
_KIND = re.compile(r"[^a-z_]+")
_PREPARE_TIMEOUT = 10.0  # seconds for creating the engine and listing its voices


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Speaker:
    def __init__(
        self,
        settings: SpeechSettings,
        *,
        zone: tzinfo,
        clock: Callable[[], datetime] = _utc_now,
        on_alarm: AlarmSink | None = None,
        engine_factory: EngineFactory = espeak_engine,
        player: tuple[str, ...] = APLAY,
    ) -> None:
        self.settings = settings
        self._zone = zone
        self._clock = clock
        self._on_alarm = on_alarm
        self._player = player
        self.queue = AnnouncementQueue.from_settings(settings)
        self.engine = SpeechEngine(voice=settings.voice, rate=settings.rate,
                                   volume=settings.volume, factory=engine_factory,
                                   player=player, device=settings.device)
        self.alarm: AlarmKind | None = None  # the active alarm, if any
        self.said = 0
        self.failed = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._owner: asyncio.Task[None] | None = None
        self._scratch: Path | None = None  # device output: where WAVs wait to be played

    # -- lifecycle ----------------------------------------------------------------------------
    #
    # `opened()` starts the engine and nothing else: whoever enters it runs `run()` (the daemon's
    # announcer does, as a supervised service). `async with speaker` is the speaker on its own:
    # opened, with `run()` in a task group of its own (one owner task, aiomqtt's shape),
    # cancelled and awaited on the way out.

    @contextlib.asynccontextmanager
    async def opened(self) -> AsyncIterator[Speaker]:
        self.engine.start()
        self._idle.clear()  # until the start-up check is done
        try:
            yield self
        finally:
            scratch, self._scratch = self._scratch, None
            if scratch is not None:
                with contextlib.suppress(VoiceError):
                    await self.engine.call(lambda: shutil.rmtree(scratch, ignore_errors=True),
                                           5.0)
            await self.engine.close()

    async def __aenter__(self) -> Speaker:
        if self._owner is not None:
            raise RuntimeError("this speaker is already running")
        self._stack = contextlib.AsyncExitStack()
        await self._stack.enter_async_context(self.opened())
        self._owner = asyncio.create_task(self._own(), name="voice")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        owner, self._owner = self._owner, None
        try:
            if owner is not None:
                owner.cancel()
                await asyncio.wait([owner])
        finally:
            await self._stack.aclose()

    async def _own(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self.run(), name="voice-worker")

    # -- the caller's side --------------------------------------------------------------------

    def local_now(self) -> datetime:
        return self._clock().astimezone(self._zone)

    def announce(self, announcement: Announcement) -> Verdict:
        """Queue an announcement; never blocks, never raises."""
        verdict = self.queue.offer(announcement, self.local_now())
        if verdict is Verdict.QUEUED:
            self._idle.clear()
            self._wake.set()
        else:
            log.debug("not said (%s): %s", verdict.value, announcement.text)
        return verdict

    async def drained(self) -> None:
        """Wait until every queued announcement has been said (or failed)."""
        await self._idle.wait()

    # -- the worker ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Says what is queued, one announcement at a time, until cancelled; never raises."""
        try:
            await self._check()
        except Exception:  # a defect in the check must not silence the station for good
            log.exception("voice: start-up check failed")
        finally:
            self._idle_if_empty()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while (announcement := self.queue.next(self.local_now())) is not None:
                try:
                    await self._say(announcement)
                except Exception:  # a defect here must not silence the station for good
                    log.exception("voice: cannot say %s", announcement.text)
            self._idle_if_empty()

    def _idle_if_empty(self) -> None:
        if not len(self.queue):
            self._idle.set()

    async def _check(self) -> None:
        """Start-up: report a missing engine, voice, player or folder before anyone waits on a
        silent announcement."""
        try:
            await self.engine.prepare(_PREPARE_TIMEOUT)
            if self.settings.output is Output.FILES:
                folder = self.settings.folder
                assert folder is not None  # SpeechSettings guarantees it
                await self.engine.call(lambda: self._make_folder(folder), _PREPARE_TIMEOUT)
            else:
                if shutil.which(self._player[0]) is None:
                    raise PlayerMissing(f"{self._player[0]} is not installed (Debian: "
                                        "alsa-utils); announcements cannot be played")
                self._scratch = await self.engine.call(
                    lambda: Path(tempfile.mkdtemp(prefix="forecourt-voice-")), _PREPARE_TIMEOUT)
        except VoiceError as exc:
            await self._failed(exc)

    @staticmethod
    def _make_folder(folder: Path) -> None:
        try:
            private_dir(folder)  # announcements name pumps and amounts: the owner's alone
        except OSError as exc:
            raise OutputFolderError(f"cannot create the folder {folder}: {exc}") from None

    async def _say(self, announcement: Announcement) -> None:
        timeout = self.settings.timeout.total_seconds()
        try:
            if self.settings.output is Output.FILES:
                await self._to_file(announcement, timeout)
            else:
                await self._to_device(announcement, timeout)
        except VoiceError as exc:
            self.failed += 1
            await self._failed(exc, announcement)
            return
        self.said += 1
        log.debug("said: %s", announcement.text)
        await self._worked()

    async def _to_file(self, announcement: Announcement, limit: float) -> None:
        folder = self.settings.folder
        assert folder is not None

        def place() -> Path:
            self._make_folder(folder)
            return self._free_name(folder, announcement)

        path = await self.engine.call(place, limit)
        await self.engine.render(announcement.text, path, limit)
        keep = self.settings.keep_files
        await self.engine.call(lambda: self._prune(folder, keep), limit)

    async def _to_device(self, announcement: Announcement, limit: float) -> None:
        if self._scratch is None:  # the start-up check failed: try again now
            self._scratch = await self.engine.call(
                lambda: Path(tempfile.mkdtemp(prefix="forecourt-voice-")), limit)
        path = self._scratch / "utterance.wav"
        await self.engine.render(announcement.text, path, limit)
        try:
            seconds = await self.engine.call(lambda: wav_seconds(path), limit)
            # The player gets the time the speech lasts, plus the same limit again.
            await self.engine.play(path, seconds + limit)
        finally:
            with contextlib.suppress(VoiceError):
                await self.engine.call(lambda: path.unlink(missing_ok=True), limit)

    def _free_name(self, folder: Path, announcement: Announcement) -> Path:
        kind = _KIND.sub("_", announcement.kind.lower()).strip("_") or "notice"
        stem = f"{self.local_now():%Y%m%d-%H%M%S}-{kind}"
        path, n = folder / f"{stem}.wav", 1
        while path.exists():
            n += 1
            path = folder / f"{stem}-{n}.wav"
        return path

    @staticmethod
    def _prune(folder: Path, keep: int) -> None:
        """Keep the newest `keep` WAV files this speaker wrote; names sort by time."""
        ours = sorted(p for p in folder.iterdir() if _OUR_FILE.fullmatch(p.name))
        for old in ours[:-keep]:
            with contextlib.suppress(OSError):
                old.unlink()

    # -- health -------------------------------------------------------------------------------

    async def _failed(self, exc: VoiceError, announcement: Announcement | None = None) -> None:
        what = f" (not said: {announcement.text})" if announcement else ""
        if self.alarm is exc.kind:
            log.debug("voice still failing: %s%s", exc.message, what)
            return
        log.error("voice: %s%s", exc.message, what)
        self.alarm = exc.kind
        await self._tell(VoiceAlarm(exc.kind, True, exc.message))

    async def _worked(self) -> None:
        if self.alarm is None:
            return
        kind, self.alarm = self.alarm, None
        log.info("voice works again (after %s)", kind.value)
        await self._tell(VoiceAlarm(kind, False, "announcements are spoken again"))

    async def _tell(self, alarm: VoiceAlarm) -> None:
        if self._on_alarm is None:
            return
        try:
            await self._on_alarm(alarm)
        except Exception:
            # The alarm sink (the event log) failing must not stop the voice either.
            log.exception("cannot record the voice alarm %s", alarm.kind.value)
