"""The MQTT topics of one station, the QoS each is used with, and how a message body is
written (CONTRACT.md section 4)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import IntEnum
from typing import Any

from domain.model import rfc3339

__all__ = ["QoS", "Topics", "encode"]

# The station id goes into topic names, so it must not carry MQTT wildcards or separators.
_STATION_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


class QoS(IntEnum):
    AT_MOST_ONCE = 0
    AT_LEAST_ONCE = 1


@dataclass(frozen=True)
class Topics:
    """`fcc/v1/{sid}/...`: what the station publishes and what it subscribes to."""

    station_id: str

    def __post_init__(self) -> None:
        if not _STATION_ID.fullmatch(self.station_id):
            raise ValueError(f"station id must match [A-Za-z0-9-]{{1,64}}: {self.station_id!r}")

    def _topic(self, leaf: str) -> str:
        return f"fcc/v1/{self.station_id}/{leaf}"

    # Station to cloud.

    @property
    def status(self) -> str:
        """QoS 1, retained; also the MQTT will."""
        return self._topic("status")

    @property
    def events(self) -> str:
        """QoS 1, in seq order; resent until acknowledged."""
        return self._topic("events")

    @property
    def live(self) -> str:
        """QoS 0, retained; the whole forecourt, at most once per live interval."""
        return self._topic("live")

    @property
    def replies(self) -> str:
        """QoS 1; one per command."""
        return self._topic("replies")

    # Cloud to station.

    @property
    def commands(self) -> str:
        return self._topic("commands")

    @property
    def acks(self) -> str:
        return self._topic("acks")


def encode(message: dict[str, Any]) -> bytes:
    """One JSON message body: UTF-8, Chinese kept as is, Decimals as exact strings."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"),
                      default=_json_value).encode("utf-8")


def _json_value(value: object) -> object:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return rfc3339(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
