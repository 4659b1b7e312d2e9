"""The lock files: fresh for pyproject.toml, refused when stale, and what the venv runs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCKS = [ROOT / "requirements" / "runtime.txt", ROOT / "requirements" / "dev.txt"]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", re.MULTILINE)


def pins(lock: Path) -> dict[str, str]:
    return {metadata_name(name): version for name, version in PIN.findall(lock.read_text())}


def metadata_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(root / "scripts" / "lockfile.py"), "check",
                           *(str(root / "requirements" / lock.name) for lock in LOCKS)],
                          capture_output=True, text=True, check=False)


def test_the_locks_match_pyproject() -> None:
    done = check(ROOT)
    assert done.returncode == 0, done.stderr


def test_every_lock_entry_has_hashes() -> None:
    for lock in LOCKS:
        entries = re.split(r"\n(?=[A-Za-z0-9])", lock.read_text().split("\n", 3)[3])
        for entry in entries:
            if "==" in entry:
                assert "--hash=sha256:" in entry, entry.splitlines()[0]


def test_a_changed_dependency_without_a_new_lock_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    (copy / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "lockfile.py", copy / "scripts")
    shutil.copytree(ROOT / "requirements", copy / "requirements")
    text = (ROOT / "pyproject.toml").read_text()
    (copy / "pyproject.toml").write_text(text)
    assert check(copy).returncode == 0
    # A tool setting is no dependency: the lock still holds.
    (copy / "pyproject.toml").write_text(text.replace("line-length = 100", "line-length = 99"))
    assert check(copy).returncode == 0
    # A new dependency is.
    (copy / "pyproject.toml").write_text(
        text.replace('"tenacity>=8.2,<10",', '"tenacity>=8.2,<10",\n    "attrs>=23",'))
    done = check(copy)
    assert done.returncode == 1
    assert "scripts/dev lock" in done.stderr


def test_the_runtime_lock_is_part_of_the_dev_lock() -> None:
    runtime, dev = pins(LOCKS[0]), pins(LOCKS[1])
    assert {name: dev.get(name) for name in runtime} == runtime


@pytest.mark.skipif(not (ROOT / ".venv").is_dir() or not sys.prefix.startswith(str(ROOT)),
                    reason="runs in the project's .venv, which scripts/dev installs")
def test_the_venv_runs_exactly_the_locked_versions() -> None:
    locked = pins(LOCKS[1])
    installed = {metadata_name(dist.metadata["Name"]): dist.version
                 for dist in metadata.distributions()}
    wrong = {name: (version, installed.get(name)) for name, version in locked.items()
             if installed.get(name) != version}
    assert not wrong, f"locked vs installed: {wrong}"
