"""Loading a configuration: TOML in, a `StationConfig` or a `ConfigError` with every problem."""

from __future__ import annotations

import tomllib
from pathlib import Path

from domain.config_reader import Findings

from .model import StationConfig
from .sections import Context, read_document


class ConfigError(Exception):
    """A configuration that must not be run, with every problem found, one line each."""

    def __init__(self, problems: list[str], source: str = "<string>") -> None:
        super().__init__(problems, source)
        self.problems = problems
        self.source = source

    def __str__(self) -> str:
        return "\n".join(f"{self.source}: {problem}" for problem in self.problems)


def parse_config(
    text: str,
    *,
    source: str = "<string>",
    check_files: bool = False,
    base_dir: Path | None = None,
) -> StationConfig:
    """Parse and validate the whole configuration; raises ConfigError listing every problem.

    `check_files`: files the configuration names (keys, certificates, the database directory)
    must exist now. `base_dir`: where relative paths start (the config file's directory).
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line L, column C)".
        raise ConfigError([f"invalid TOML: {exc}"], source) from None
    findings = Findings()
    config = read_document(data, Context(findings, base_dir, check_files))
    if config is None:
        raise ConfigError(findings.errors, source)
    return config


def load_config(path: str | Path, *, check_files: bool = True) -> StationConfig:
    """Read and validate a configuration file; relative paths in it start at its directory."""
    path = Path(path)
    try:
        # utf-8-sig: editors on Windows save UTF-8 with a byte order mark, which TOML refuses.
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(["cannot read the file: it does not exist"], str(path)) from None
    except IsADirectoryError:
        raise ConfigError(["cannot read the file: it is a directory"], str(path)) from None
    except PermissionError:
        raise ConfigError(["cannot read the file: permission denied"], str(path)) from None
    except UnicodeDecodeError as exc:
        problem = f"cannot read the file: not UTF-8 text (byte {exc.start})"
        raise ConfigError([problem], str(path)) from None
    except OSError as exc:
        raise ConfigError([f"cannot read the file: {exc.strerror}"], str(path)) from None
    return parse_config(
        text, source=str(path), check_files=check_files, base_dir=path.absolute().parent
    )
