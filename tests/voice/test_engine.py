"""The speech engine against the real espeak-ng: real WAV files out; failures injected only
where pyttsx3 meets libespeak-ng (its `_espeak` module) or where the engine is created."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from drivers.voice import (
    EngineFailed,
    EngineUnavailable,
    SpeechEngine,
    SpeechTimeout,
    VoiceNotFound,
)

from .conftest import assert_speech, read_speech

LIMIT = 10.0


def engine(**kwargs: Any) -> SpeechEngine:
    options: dict[str, Any] = {"voice": "cmn-latn-pinyin", "rate": 175, "volume": 1.0}
    options.update(kwargs)
    return SpeechEngine(**options)


@pytest.fixture
def espeak_lib() -> Any:
    from pyttsx3.drivers import _espeak

    return _espeak


async def test_renders_chinese_speech_to_a_wav_file(tmp_path: Path) -> None:
    speech = engine()
    speech.start()
    try:
        await speech.prepare(LIMIT)
        short, long = tmp_path / "short.wav", tmp_path / "long.wav"
        await speech.render("三号枪已授权，请加油", short, LIMIT)
        await speech.render("三号枪加油完成，九十二号汽油四十点二五升，金额二百八十七元五角",
                            long, LIMIT)
    finally:
        await speech.close()
    a, b = assert_speech(short), assert_speech(long)
    assert b.seconds > a.seconds + 1.0  # more words, more speech: it is not a canned sound
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.wav", "short.wav"]


async def test_volume_and_rate_are_applied(tmp_path: Path) -> None:
    results = {}
    for name, rate, volume in (("loud", 175, 1.0), ("soft", 175, 0.2), ("slow", 100, 1.0)):
        speech = engine(rate=rate, volume=volume)
        speech.start()
        try:
            await speech.render("三号枪已授权", tmp_path / f"{name}.wav", LIMIT)
        finally:
            await speech.close()
        results[name] = read_speech(tmp_path / f"{name}.wav")
    loud, soft, slow = results["loud"], results["soft"], results["slow"]
    assert_speech(tmp_path / "loud.wav")
    assert soft.rms < loud.rms / 2
    assert slow.seconds > loud.seconds * 1.3


async def test_an_unknown_voice_is_refused_not_spoken_in_english(tmp_path: Path) -> None:
    speech = engine(voice="klingon")
    speech.start()
    try:
        with pytest.raises(VoiceNotFound, match="klingon"):
            await speech.prepare(LIMIT)
        with pytest.raises(VoiceNotFound):
            await speech.render("三号枪", tmp_path / "x.wav", LIMIT)
    finally:
        await speech.close()
    assert list(tmp_path.iterdir()) == []


async def test_the_voice_may_be_named_by_its_file_too(tmp_path: Path) -> None:
    speech = engine(voice="sit/cmn-latn-pinyin")
    speech.start()
    try:
        await speech.prepare(LIMIT)
        await speech.render("三号枪", tmp_path / "x.wav", LIMIT)
    finally:
        await speech.close()
    assert_speech(tmp_path / "x.wav")


async def test_a_raising_driver_fails_one_utterance_and_the_next_works(
        tmp_path: Path, espeak_lib: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> int:
        raise OSError("espeak_Synth: EE_INTERNAL_ERROR")

    speech = engine()
    speech.start()
    try:
        with monkeypatch.context() as patch:
            patch.setattr(espeak_lib, "Synth", broken)
            with pytest.raises(EngineFailed, match="EE_INTERNAL_ERROR"):
                await speech.render("三号枪已授权", tmp_path / "a.wav", LIMIT)
        await speech.render("三号枪已授权", tmp_path / "b.wav", LIMIT)
    finally:
        await speech.close()
    assert not (tmp_path / "a.wav").exists()
    assert not list(tmp_path.glob("*.part"))
    assert_speech(tmp_path / "b.wav")


async def test_a_driver_that_never_finishes_times_out_and_the_next_works(
        tmp_path: Path, espeak_lib: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    speech = engine()
    speech.start()
    try:
        with monkeypatch.context() as patch:
            patch.setattr(espeak_lib, "Synth", lambda *_a, **_k: 0)  # accepted, never spoken
            with pytest.raises(SpeechTimeout):
                await speech.render("三号枪已授权", tmp_path / "a.wav", 0.3)
        await speech.render("三号枪已授权", tmp_path / "b.wav", LIMIT)
    finally:
        await speech.close()
    assert not (tmp_path / "a.wav").exists()
    assert_speech(tmp_path / "b.wav")


async def test_no_espeak_library_is_engine_unavailable(tmp_path: Path) -> None:
    def missing() -> Any:
        raise OSError("libespeak-ng.so.1: cannot open shared object file")

    speech = engine(factory=missing)
    speech.start()
    try:
        with pytest.raises(EngineUnavailable, match="libespeak-ng"):
            await speech.prepare(LIMIT)
        with pytest.raises(EngineUnavailable):
            await speech.render("三号枪", tmp_path / "x.wav", LIMIT)
    finally:
        await speech.close()


class StuckEngine:
    """What pyttsx3.init returns, stuck in runAndWait until released (the reported hang)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()

    def connect(self, topic: str, cb: Any) -> dict[str, Any]:
        return {"topic": topic, "cb": cb}

    def disconnect(self, token: Any) -> None:
        pass

    def getProperty(self, name: str) -> Any:
        return [type("Voice", (), {"id": "sit/cmn-latn-pinyin", "name": "Chinese"})()]

    def setProperty(self, name: str, value: Any) -> None:
        pass

    def save_to_file(self, text: str, filename: str) -> None:
        pass

    def runAndWait(self) -> None:
        self.entered.set()
        self.release.wait(30)

    def endLoop(self) -> None:
        pass

    def stop(self) -> None:
        pass


async def test_a_hung_engine_costs_its_time_limit_once_then_fails_fast(tmp_path: Path) -> None:
    stuck = StuckEngine()
    speech = engine(factory=lambda: stuck)
    speech.start()
    try:
        with pytest.raises(SpeechTimeout, match="did not answer"):
            await speech.render("三号枪", tmp_path / "a.wav", 0.2)
        assert stuck.entered.is_set()
        # The thread is still inside the engine: the next caller is told at once.
        with pytest.raises(SpeechTimeout, match="still busy"):
            await speech.render("四号枪", tmp_path / "b.wav", 30.0)
    finally:
        stuck.release.set()
        await speech.close()
