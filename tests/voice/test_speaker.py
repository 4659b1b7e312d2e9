"""The voice service end to end: real espeak-ng, real WAV files, real player processes.

The sound card is the one thing these machines lack, so the player is a real program standing
in for `aplay`: one that is missing, one that fails the way aplay does without a sound card,
one that hangs, and one that plays (checks the file and exits 0).
"""

from __future__ import annotations

import logging
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from drivers.voice import (
    Announcement,
    Output,
    Priority,
    QuietHours,
    Speaker,
    SpeechSettings,
    Verdict,
)

from .conftest import SHANGHAI, Alarms, FakeClock, assert_speech

AUTH = Announcement("三号枪已授权，请加油", Priority.SERVICE, "authorized")
SALE = Announcement("三号枪加油完成，金额二百八十七元五角", Priority.SALE, "sale")
ALARM = Announcement("注意，一号加油机紧急停机，请立即处理", Priority.ALARM, "pump_alarm")

NO_SOUND_CARD = (sys.executable, "-c", (
    "import sys; sys.stderr.write('ALSA lib confmisc.c:855: cannot find card 0\\n"
    "aplay: main:831: audio open error: No such file or directory\\n'); sys.exit(1)"))
HANGS = (sys.executable, "-c", "import time; time.sleep(60)")


def plays(log: Path) -> tuple[str, ...]:
    """A player that checks it was handed a WAV file and notes its name."""
    script = ("import sys, wave; w = wave.open(sys.argv[-1]); assert w.getnframes() > 0; "
              f"open({str(log)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')")
    return (sys.executable, "-c", script)


def files(folder: Path, **kwargs: Any) -> SpeechSettings:
    return SpeechSettings(output=Output.FILES, folder=folder, **kwargs)


async def test_files_output_writes_one_wav_per_announcement(tmp_path: Path, clock: FakeClock,
                                                           alarms: Alarms) -> None:
    folder = tmp_path / "voice"  # created by the speaker
    async with Speaker(files(folder), zone=SHANGHAI, clock=clock, on_alarm=alarms) as speaker:
        assert speaker.announce(SALE) is Verdict.QUEUED
        assert speaker.announce(ALARM) is Verdict.QUEUED
        await speaker.drained()
        clock.advance(1)
        speaker.announce(AUTH)
        speaker.announce(Announcement("四号枪已授权，请加油", Priority.SERVICE, "authorized"))
        await speaker.drained()
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["20261122-091500-pump_alarm.wav", "20261122-091500-sale.wav",
                     "20261122-091501-authorized-2.wav", "20261122-091501-authorized.wav"]
    for name in names:
        assert_speech(folder / name)
    assert speaker.said == 4 and speaker.failed == 0
    assert alarms.seen == []


async def test_duplicates_and_quiet_hours_are_not_written(tmp_path: Path, clock: FakeClock) -> None:
    clock.now = clock.now.replace(hour=23)
    settings = files(tmp_path, quiet_hours=QuietHours.parse("22:00-07:00"),
                     dedupe=timedelta(seconds=10))
    async with Speaker(settings, zone=SHANGHAI, clock=clock) as speaker:
        assert speaker.announce(SALE) is Verdict.QUIET
        assert speaker.announce(ALARM) is Verdict.QUEUED
        assert speaker.announce(ALARM) is Verdict.DUPLICATE
        await speaker.drained()
    assert [p.name for p in tmp_path.iterdir()] == ["20261122-231500-pump_alarm.wav"]


async def test_old_files_are_removed_beyond_keep_files(tmp_path: Path, clock: FakeClock) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("not ours")
    async with Speaker(files(tmp_path, keep_files=2), zone=SHANGHAI, clock=clock) as speaker:
        for n in range(4):
            speaker.announce(Announcement(f"{n}号枪已授权", Priority.SERVICE, "authorized"))
            await speaker.drained()
            clock.advance(60)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "20261122-091700-authorized.wav", "20261122-091800-authorized.wav", "notes.txt"]


async def test_device_output_plays_each_wav_and_cleans_up(tmp_path: Path, clock: FakeClock,
                                                         alarms: Alarms) -> None:
    log = tmp_path / "played.txt"
    settings = SpeechSettings(device="plughw:1,0")
    async with Speaker(settings, zone=SHANGHAI, clock=clock, on_alarm=alarms,
                       player=plays(log)) as speaker:
        speaker.announce(AUTH)
        speaker.announce(SALE)
        await speaker.drained()
        scratch = speaker._scratch
    played = log.read_text().splitlines()
    assert len(played) == 2
    assert all(line.startswith("-D plughw:1,0 ") and line.endswith(".wav") for line in played)
    assert speaker.said == 2 and alarms.seen == []
    assert scratch is not None and not scratch.exists()


async def test_no_player_is_an_alarm_at_start_and_the_queue_keeps_going(
        tmp_path: Path, clock: FakeClock, alarms: Alarms, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="drivers.voice")
    missing = (str(tmp_path / "no-such-aplay"),)
    async with Speaker(SpeechSettings(), zone=SHANGHAI, clock=clock, on_alarm=alarms,
                       player=missing) as speaker:
        await speaker.drained()
        assert alarms.kinds == [("player_missing", True)]
        for item in (AUTH, SALE, ALARM):
            assert speaker.announce(item) is Verdict.QUEUED
        await speaker.drained()
    assert speaker.failed == 3 and speaker.said == 0
    assert alarms.kinds == [("player_missing", True)]  # once, not once per announcement
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "no-such-aplay" in errors[0].getMessage()
    repeats = [r for r in caplog.records if r.levelno == logging.DEBUG
               and "still failing" in r.getMessage()]
    assert len(repeats) == 3


async def test_no_sound_card_is_an_alarm_naming_the_device_error(
        tmp_path: Path, clock: FakeClock, alarms: Alarms) -> None:
    async with Speaker(SpeechSettings(), zone=SHANGHAI, clock=clock, on_alarm=alarms,
                       player=NO_SOUND_CARD) as speaker:
        speaker.announce(AUTH)
        await speaker.drained()
    assert alarms.kinds == [("sound_device", True)]
    assert "audio open error" in alarms.seen[0].message
    assert alarms.seen[0].to_data() == {"kind": "sound_device", "active": True,
                                        "message": alarms.seen[0].message}


async def test_a_hanging_player_is_killed_after_its_time_limit(
        tmp_path: Path, clock: FakeClock, alarms: Alarms) -> None:
    settings = SpeechSettings(timeout=timedelta(seconds=0.3))
    short = Announcement("注意", Priority.ALARM, "pump_alarm")
    async with Speaker(settings, zone=SHANGHAI, clock=clock, on_alarm=alarms,
                       player=HANGS) as speaker:
        speaker.announce(short)
        await speaker.drained()
    assert alarms.kinds == [("timeout", True)]
    assert speaker.failed == 1


async def test_a_broken_engine_raises_an_alarm_and_clears_it_when_speech_is_back(
        tmp_path: Path, clock: FakeClock, alarms: Alarms,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from pyttsx3.drivers import _espeak

    def broken(*_args: Any, **_kwargs: Any) -> int:
        raise OSError("espeak_Synth failed")

    async with Speaker(files(tmp_path), zone=SHANGHAI, clock=clock,
                       on_alarm=alarms) as speaker:
        await speaker.drained()
        with monkeypatch.context() as patch:
            patch.setattr(_espeak, "Synth", broken)
            speaker.announce(SALE)
            speaker.announce(AUTH)
            await speaker.drained()
            assert alarms.kinds == [("engine_failed", True)]
            assert list(tmp_path.iterdir()) == []
        speaker.announce(ALARM)
        await speaker.drained()
    assert alarms.kinds == [("engine_failed", True), ("engine_failed", False)]
    assert [p.name for p in tmp_path.iterdir()] == ["20261122-091500-pump_alarm.wav"]


async def test_an_unknown_voice_is_one_alarm_and_no_hang(tmp_path: Path, clock: FakeClock,
                                                         alarms: Alarms) -> None:
    async with Speaker(files(tmp_path, voice="xx-nope"), zone=SHANGHAI, clock=clock,
                       on_alarm=alarms) as speaker:
        for item in (SALE, AUTH, ALARM):
            speaker.announce(item)
        await speaker.drained()
    assert alarms.kinds == [("voice_not_found", True)]
    assert speaker.failed == 3 and list(tmp_path.iterdir()) == []


async def test_an_alarm_sink_that_raises_does_not_stop_the_voice(
        tmp_path: Path, clock: FakeClock) -> None:
    async def broken_sink(_alarm: Any) -> None:
        raise RuntimeError("the event log is down")

    async with Speaker(files(tmp_path, voice="xx-nope"), zone=SHANGHAI,
                       clock=clock, on_alarm=broken_sink) as speaker:
        speaker.announce(SALE)
        await speaker.drained()
    assert speaker.failed == 1


async def test_an_unwritable_folder_is_an_alarm(tmp_path: Path, clock: FakeClock,
                                                alarms: Alarms) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the folder should be")
    async with Speaker(files(blocker / "voice"), zone=SHANGHAI, clock=clock,
                       on_alarm=alarms) as speaker:
        speaker.announce(SALE)
        await speaker.drained()
    assert alarms.kinds == [("output_folder", True)]
    assert speaker.failed == 1
