"""The replay cache of cloud commands: every command id the station accepted.

A signed command is valid until its `expires_at`; until then the same bytes could be delivered
again (an MQTT QoS 1 redelivery, or someone replaying a captured message). The id is kept
until that time, so a command runs at most once even across restarts; after it, the expiry
check refuses the command anyway and the row can go.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from edge.store.codec import time_text


def remember(
    conn: sqlite3.Connection, now: datetime, command_id: str, expires_at: datetime
) -> bool:
    """True when `command_id` is new (and now remembered), False when it was seen before."""
    if not command_id:
        raise ValueError("a command needs an id")
    cursor = conn.execute(
        "INSERT INTO commands_seen (id, expires_at, seen_at) VALUES (?, ?, ?) "
        "ON CONFLICT (id) DO NOTHING",
        (command_id, time_text(expires_at), time_text(now)),
    )
    return cursor.rowcount == 1


def forget(conn: sqlite3.Connection, expired_before: datetime) -> int:
    """Drops the ids that expired before `expired_before`; returns how many."""
    cursor = conn.execute(
        "DELETE FROM commands_seen WHERE expires_at < ?", (time_text(expired_before),)
    )
    return cursor.rowcount
