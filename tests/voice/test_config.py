"""The [voice] section: defaults, every key, and every problem named where it is."""

from __future__ import annotations

import re
import tomllib
from datetime import time, timedelta
from pathlib import Path

import pytest

from domain.config_reader import Findings, Table
from drivers.voice import Output, QuietAllow, QuietHours, SpeechSettings
from edge.config.sections import Context
from edge.config.voice import VoiceConfig, read_voice

ROOT = Path(__file__).resolve().parents[2]
BASE = Path("/etc/forecourt")


def read(text: str, *, check_files: bool = False, base: Path = BASE
         ) -> tuple[VoiceConfig | None, Findings]:
    findings = Findings()
    root = Table(tomllib.loads(text), "", findings)
    table = root.table("voice")
    assert table is not None
    return read_voice(table, Context(findings, base, check_files)), findings


def test_an_empty_section_is_the_defaults() -> None:
    voice, findings = read("[voice]\n")
    assert findings.errors == [] and findings.warnings == []
    assert voice == VoiceConfig(speech=SpeechSettings(), enabled=True)
    assert voice.speech.voice == "cmn-latn-pinyin"
    assert voice.speech.output is Output.DEVICE


def test_every_key() -> None:
    voice, findings = read("""
[voice]
enabled = false
output = "files"
folder = "voice"
voice = "sit/cmn-latn-pinyin"
rate = 150
volume = 0.8
quiet_hours = "22:00-07:00"
quiet_hours_allow = "nothing"
dedupe_seconds = 30
max_delay_seconds = 90
queue_size = 50
timeout_seconds = 20
keep_files = 100
""")
    assert findings.errors == [] and findings.warnings == []
    assert voice == VoiceConfig(enabled=False, speech=SpeechSettings(
        output=Output.FILES, folder=BASE / "voice", voice="sit/cmn-latn-pinyin", rate=150,
        volume=0.8, quiet_hours=QuietHours(time(22), time(7)),
        quiet_allow=QuietAllow.NOTHING, dedupe=timedelta(seconds=30),
        max_delay=timedelta(seconds=90), queue_size=50, timeout=timedelta(seconds=20),
        keep_files=100))


def test_device_output_with_an_alsa_device_and_integer_volume() -> None:
    voice, findings = read('[voice]\ndevice = "plughw:1,0"\nvolume = 1\n')
    assert findings.errors == []
    assert voice is not None and voice.speech.device == "plughw:1,0"
    assert voice.speech.volume == 1.0


@pytest.mark.parametrize(("body", "error"), [
    ('output = "speaker"', 'voice.output: "speaker" is not one of "device", "files"'),
    ('output = "files"', 'voice.folder: missing: output = "files" needs a folder'),
    ("volume = 1.5", "voice.volume: 1.5 is out of range 0..1"),
    ("volume = -0.1", "voice.volume: -0.1 is out of range 0..1"),
    ("volume = nan", "voice.volume: nan is out of range 0..1"),
    ('volume = "0.8"', "voice.volume: expected a number from 0 to 1, got a string"),
    ("volume = true", "voice.volume: expected a number from 0 to 1, got a boolean"),
    ("rate = 20", "voice.rate: 20 is out of range 80..450"),
    ('voice = "cmn latn"', 'voice.voice: "cmn latn" is not valid'),
    ('quiet_hours = "22:00"', 'voice.quiet_hours: "22:00" is not a window like "22:00-07:00"'),
    ('quiet_hours = "22:00-22:00"', "voice.quiet_hours: \"22:00-22:00\" starts and ends"),
    ('quiet_hours = "25:00-07:00"', 'voice.quiet_hours: "25:00-07:00": "25:00" is not a time'),
    ('quiet_hours_allow = "sales"', 'voice.quiet_hours_allow: "sales" is not one of'),
    ("dedupe_seconds = -1", "voice.dedupe_seconds: -1 is out of range 0..3600"),
    ("max_delay_seconds = 1", "voice.max_delay_seconds: 1 is out of range 5..3600"),
    ("queue_size = 0", "voice.queue_size: 0 is out of range 1..1000"),
    ("timeout_seconds = 0", "voice.timeout_seconds: 0 is out of range 1..120"),
    ('timeout_seconds = "10"', "voice.timeout_seconds: expected an integer, got a string"),
    ("enabled = 1", "voice.enabled: expected true or false, got an integer"),
    ('device = "hw 0"', 'voice.device: "hw 0" is not valid'),
])
def test_problems_are_named(body: str, error: str) -> None:
    voice, findings = read(f"[voice]\n{body}\n")
    assert voice is None
    assert any(e.startswith(error) for e in findings.errors), findings.errors


def test_unknown_keys_are_errors() -> None:
    # Like every section: the reader records it, and the file as a whole is refused.
    _, findings = read("[voice]\nvolum = 0.5\n")
    assert findings.errors == ['voice.volum: unknown key (did you mean "volume"?)']


def test_every_problem_at_once() -> None:
    voice, findings = read('[voice]\nvolume = 2\nrate = 1\noutput = "files"\nbogus = 1\n')
    assert voice is None
    assert [e.split(":")[0] for e in findings.errors] == [
        "voice.rate", "voice.volume", "voice.bogus", "voice.folder"]


@pytest.mark.parametrize(("body", "warning"), [
    ('folder = "voice"', 'voice.folder: only used with output = "files"'),
    ("keep_files = 10", 'voice.keep_files: only used with output = "files"'),
    ('output = "files"\nfolder = "v"\ndevice = "default"', 'voice.device: only used with'),
    ('quiet_hours_allow = "nothing"', "voice.quiet_hours_allow: no quiet_hours are set"),
])
def test_keys_that_do_nothing_are_warned_about(body: str, warning: str) -> None:
    voice, findings = read(f"[voice]\n{body}\n")
    assert voice is not None and findings.errors == []
    assert any(w.startswith(warning) for w in findings.warnings), findings.warnings


def test_the_folder_is_checked_when_files_are_checked(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file")
    voice, findings = read('[voice]\noutput = "files"\nfolder = "taken"\n', check_files=True,
                           base=tmp_path)
    assert findings.errors == [f"voice.folder: {tmp_path / 'taken'} is not a directory"]
    voice, findings = read('[voice]\noutput = "files"\nfolder = "new/voice"\n',
                           check_files=True, base=tmp_path)
    assert findings.errors == []  # created by the speaker at start
    assert voice is not None and voice.speech.folder == tmp_path / "new" / "voice"


def test_docs_describe_every_key_the_parser_reads() -> None:
    findings = Findings()
    read_voice(Table({}, "voice", findings, "voice"), Context(findings, None, False))
    assert len(findings.keys_read) == 14
    docs = (ROOT / "docs" / "voice.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(voice\.[a-z_]+)` \|", docs, re.MULTILINE))
    assert documented == findings.keys_read
