"""Authorizations: who allowed which pump to deliver, with what preset, and what became of it.

The state is `AuthorizationState` from the model to the store (kept as its text in SQLite);
which transitions are legal is the lifecycle table's business (domain/states.py), the store only
records them durably.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from domain.ids import IdMaker
from domain.model import AUTHORIZATION_SOURCES, Authorization, Preset
from domain.states import ACTIVE_AUTHORIZATION_STATES, AuthorizationState
from edge.store.codec import dec_text, text_dec, text_time, time_text
from edge.store.errors import UnknownAuthorization

ACTIVE_STATES = tuple(sorted(state.value for state in ACTIVE_AUTHORIZATION_STATES))

_COLUMNS = (
    "id, pump, nozzle, preset_kind, preset_value, source, user_name, order_id, state, reason, "
    "created_at, updated_at"
)


def _row(row: tuple[Any, ...]) -> Authorization:
    (auth_id, pump, nozzle, kind, value, source, user, order_id, state, reason, created,
     updated) = row  # fmt: skip
    preset = None if kind is None else Preset(kind=kind, value=text_dec(value))
    return Authorization(
        id=auth_id,
        pump=pump,
        nozzle=nozzle,
        preset=preset,
        source=source,
        user=user,
        order_id=order_id,
        state=AuthorizationState(state),
        reason=reason,
        created_at=text_time(created),
        updated_at=text_time(updated),
    )


def create(
    conn: sqlite3.Connection,
    ids: IdMaker,
    now: datetime,
    *,
    pump: int,
    nozzle: int | None,
    preset: Preset | None,
    source: str,
    user: str | None,
    order_id: str | None,
) -> Authorization:
    if source not in AUTHORIZATION_SOURCES:
        raise ValueError(f"authorization source must be one of {sorted(AUTHORIZATION_SOURCES)}")
    if pump < 1 or (nozzle is not None and nozzle < 1):
        raise ValueError("pump and nozzle numbers start at 1")
    auth_id = ids.new(now)
    conn.execute(
        f"INSERT INTO authorizations ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            auth_id,
            pump,
            nozzle,
            None if preset is None else preset.kind,
            None if preset is None else dec_text(preset.value),
            source,
            user,
            order_id,
            AuthorizationState.REQUESTED.value,
            None,
            time_text(now),
            time_text(now),
        ),
    )
    found = get(conn, auth_id)
    assert found is not None
    return found


def set_state(
    conn: sqlite3.Connection, now: datetime, auth_id: str, state: AuthorizationState,
    reason: str | None,
) -> Authorization:
    state = AuthorizationState(state)  # refuses anything that is not a state
    cursor = conn.execute(
        "UPDATE authorizations SET state = ?, reason = ?, updated_at = ? WHERE id = ?",
        (state.value, reason, time_text(now), auth_id),
    )
    if cursor.rowcount == 0:
        raise UnknownAuthorization(auth_id)
    found = get(conn, auth_id)
    assert found is not None
    return found


def get(conn: sqlite3.Connection, auth_id: str) -> Authorization | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM authorizations WHERE id = ?", (auth_id,))
    found = row.fetchone()
    return None if found is None else _row(found)


def active(conn: sqlite3.Connection) -> list[Authorization]:
    marks = ", ".join("?" * len(ACTIVE_STATES))
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM authorizations WHERE state IN ({marks}) ORDER BY created_at, id",
        ACTIVE_STATES,
    )
    return [_row(r) for r in rows]
