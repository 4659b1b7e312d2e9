"""Recording to the audit log from the daemon (the chain itself is edge/store/audit.py).

An audit entry is written after the action it describes, in a transaction of its own: an
action must not fail because its audit line could not be written, and a failed write shows up
as the store being unavailable (the ledger turns the station fail-safe), not as a lost sale.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from edge.ledger import Ledger
from edge.store import StoreError
from edge.store.audit import AuditEntry

log = logging.getLogger(__name__)

#: Keys whose values never reach the log, whatever request carries them.
SECRET_KEYS = ("pin", "password", "token", "secret")

CLOUD = "cloud"
SYSTEM = "system"
#: Changes made with the command line (`forecourt user ...`) on the station PC.
CLI = "cli"

#: What an entry's details become when the log cannot hold them as given.
UNRECORDABLE: dict[str, Any] = {"details": "unrecordable"}


def redact(value: Any) -> Any:
    """`value` with every secret-looking key's value replaced by "***"."""
    if isinstance(value, dict):
        return {k: "***" if any(s in str(k).lower() for s in SECRET_KEYS) else redact(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


async def record(
    ledger: Ledger,
    *,
    actor: str,
    action: str,
    outcome: str = "ok",
    role: str | None = None,
    target: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry | None:
    """Appends one entry; None (logged) when the store cannot take it."""
    try:
        entry: AuditEntry = await ledger.write(
            ledger.store.audit_append, actor=actor, action=action, outcome=outcome, role=role,
            target=target, details=details)
    except StoreError as exc:
        log.error("audit entry %s by %s (%s) not written: %s", action, actor, outcome, exc)
        return None
    except (ValueError, TypeError, RecursionError) as exc:
        if details is None or details == UNRECORDABLE:
            log.error("audit entry %s by %s (%s) not written: %s", action, actor, outcome, exc)
            return None
        # Details the log cannot hold (a value JSON cannot write, nesting too deep) must not
        # cost the entry itself: who did what, and how it ended, is what the log is for.
        log.warning("audit entry %s by %s: details not recordable (%s)", action, actor, exc)
        return await record(ledger, actor=actor, action=action, outcome=outcome, role=role,
                            target=target, details=UNRECORDABLE)
    return entry


def command_auditor(ledger: Ledger) -> Callable[[dict[str, Any]], Awaitable[None]]:
    """The inbox's `audit` callback: one entry per cloud command, accepted or refused.

    The inbox passes {id, type, ok, code}; id and type are None for a payload that could not
    be read (a bad signature), which is recorded too: someone sent it.
    """

    async def audit(entry: dict[str, Any]) -> None:
        kind = entry.get("type")
        outcome = "ok" if entry.get("ok") else str(entry.get("code") or "refused")
        await record(ledger, actor=CLOUD, action=f"command.{kind or 'unreadable'}",
                     outcome=outcome, target=entry.get("id"))

    return audit


#: What a change asked through the API is called in the log, by method and route. A route not
#: named here is still recorded, as "<method> <route>": nothing that changes the station goes
#: unrecorded because this table lags behind the API.
API_ACTIONS: dict[tuple[str, str], str] = {
    ("DELETE", "/api/v1/session"): "session.close",
    ("POST", "/api/v1/nozzles/{number}/authorize"): "nozzle.authorize",
    ("POST", "/api/v1/pumps/{number}/stop"): "pump.stop",
    ("POST", "/api/v1/forecourt/stop"): "forecourt.stop",
    ("POST", "/api/v1/pumps/{number}/suspend"): "pump.suspend",
    ("POST", "/api/v1/pumps/{number}/resume"): "pump.resume",
    ("POST", "/api/v1/pumps/{number}/release"): "pump.release",
    ("POST", "/api/v1/pumps/{number}/reset"): "pump.reset",
    ("POST", "/api/v1/reviews/{review_id}/accept"): "review.accept",
    ("POST", "/api/v1/reviews/{review_id}/dismiss"): "review.dismiss",
    ("POST", "/api/v1/sales/{sale_id}/payments"): "sale.payment",
    ("POST", "/api/v1/sales/{sale_id}/receipt"): "sale.receipt",
    ("POST", "/api/v1/printer/retry"): "printer.retry",
    ("POST", "/api/v1/prices"): "prices.schedule",
    ("PUT", "/api/v1/prices/schedules/{price_set_id}"): "prices.reschedule",
    ("DELETE", "/api/v1/prices/schedules/{price_set_id}"): "prices.cancel",
    ("POST", "/api/v1/alarms/{seq}/ack"): "alarm.ack",
    ("POST", "/api/v1/shifts/current/close"): "shift.close",
    ("POST", "/api/v1/users"): "user.save",
    ("POST", "/api/v1/users/{name}/disable"): "user.disable",
    ("POST", "/api/v1/users/{name}/enable"): "user.enable",
    ("POST", "/api/v1/users/{name}/unlock"): "user.unlock",
}

#: Methods that only read: not audited (reads of the audit log itself included).
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def api_action(method: str, route: str | None, path: str) -> str:
    """The action name of a request; `route` is the matched template (None: no route)."""
    if route is None:
        return f"{method.lower()} {path}"
    return API_ACTIONS.get((method.upper(), route), f"{method.lower()} {route}")
