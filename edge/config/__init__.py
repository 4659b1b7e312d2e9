"""The station configuration: one TOML file, validated whole at start.

    config = load_config("/etc/forecourt/station.toml")   # raises ConfigError
    pump, nozzle = config.nozzle(3)

docs/config.md describes every key and every check.
"""

from .loader import ConfigError, load_config, parse_config
from .model import (
    Api,
    Authorize,
    Controller,
    Grade,
    Line,
    Nozzle,
    Pump,
    PumpDecimals,
    Station,
    StationConfig,
    Storage,
    Sync,
)
from .report import describe

__all__ = [
    "Api",
    "Authorize",
    "ConfigError",
    "Controller",
    "Grade",
    "Line",
    "Nozzle",
    "Pump",
    "PumpDecimals",
    "Station",
    "StationConfig",
    "Storage",
    "Sync",
    "describe",
    "load_config",
    "parse_config",
]
