"""Signed cloud commands: checked, run at most once, always answered (CONTRACT section 4).

A command arrives on `fcc/v1/{sid}/commands` as `{"body": "<envelope JSON>", "sig": "<base64
Ed25519 signature of body's UTF-8 bytes>"}`. `Inbox.handle` checks it in a fixed order and
answers every payload with a reply envelope; the first check that fails decides the refusal
code, and a refused command changes nothing (not even the replay cache):

    malformed       the payload is not {"body": str, "sig": str}, or the body not an envelope
    bad_signature   no signature, not base64, or not the cloud's signature of this body
    wrong_station   the envelope is for another station
    unknown_type    no handler for the command's type
    invalid_data    data does not match the type's schema, or expires_at too far ahead
    expired         expires_at has passed
    replayed        this command id was already accepted once
    unavailable     the replay cache could not be written; nothing ran, resend with the same id

Only then is the id remembered and the handler run; a handler refuses with `CommandError`
(its code and message), anything else it raises is `internal_error`. The id is spent once the
handler starts: a command whose handler failed is not run again under the same id.

The signature is checked before the body is even parsed: nothing an attacker wrote is
interpreted beyond the outer JSON. Clock skew between the cloud and the station (an industrial
PC without NTP drifts) is tolerated up to `max_skew` on `expires_at`; the replay cache keeps an
id that long too, so the tolerance never opens a window for a replay.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from domain.model import rfc3339
from sync.envelope import VERSION, reply_envelope
from sync.schemas import SCHEMAS, CommandData, parse_rfc3339

__all__ = ["MAX_EXPIRY", "MAX_PAYLOAD", "CommandError", "Handler", "Inbox"]

log = logging.getLogger(__name__)

# A command valid for longer would keep its id in the replay cache for as long, and a stolen
# signed command would stay usable: a week covers any sane offline queue.
MAX_EXPIRY = timedelta(days=7)
# Commands are small JSON; anything this big is not one (and is not parsed).
MAX_PAYLOAD = 256 * 1024
_SIGNATURE_BYTES = 64
_MAX_MESSAGE = 500  # characters of a refusal message

# A handler gets the checked data: an instance of its type's model in `schemas` (OrderCreate for
# "order.create", ...). Typed Any so that `async def create(data: OrderCreate)` fits as it is.
Handler = Callable[[Any], Awaitable[Any]]


class CommandError(Exception):
    """A handler's refusal: `code` is for programs (snake_case), `message` for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Refused(Exception):
    # Internal: stops the checks with a refusal code; `re` is the command id when known.
    def __init__(self, code: str, message: str, re: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.re = re


@dataclass(frozen=True)
class _Command:
    id: str
    type: str
    station: str
    ts: datetime
    raw_data: dict[str, Any]


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two values under one key would leave the meaning to the parser: refuse.
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"duplicate key {key!r}")
        found[key] = value
    return found


def _loads(text: str | bytes) -> Any:
    """Strict JSON: no NaN/Infinity, no duplicate keys; ValueError for anything bad (including
    nesting too deep for the parser)."""
    try:
        return json.loads(text, parse_constant=_no_constants, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _short(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _split_payload(payload: bytes) -> tuple[str, bytes]:
    """(body, signature) of a command payload; _Refused otherwise."""
    if isinstance(payload, str):  # some MQTT stacks hand text payloads over decoded
        payload = payload.encode("utf-8", "surrogatepass")
    if not isinstance(payload, bytes | bytearray) or len(payload) > MAX_PAYLOAD:
        raise _Refused("malformed", f"a command payload is JSON bytes of at most {MAX_PAYLOAD}")
    try:
        outer = _loads(bytes(payload).decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _Refused("malformed", f"the payload is not JSON: {exc}") from None
    if not isinstance(outer, dict) or not isinstance(outer.get("body"), str):
        raise _Refused("malformed", 'the payload must be {"body": "<envelope JSON>", "sig": ...}')
    extra = sorted(set(outer) - {"body", "sig"})
    if extra:
        raise _Refused("malformed", f"unexpected keys in the payload: {', '.join(extra)}")
    sig = outer.get("sig")
    if not isinstance(sig, str) or not sig:
        raise _Refused("bad_signature", "the command is not signed (no sig)")
    try:
        signature = base64.b64decode(sig, validate=True)
    except (binascii.Error, ValueError):
        raise _Refused("bad_signature", "sig is not base64") from None
    if len(signature) != _SIGNATURE_BYTES:
        raise _Refused("bad_signature", f"sig is not an Ed25519 signature ({len(signature)} bytes)")
    return outer["body"], signature


def _parse_body(body: str) -> _Command:
    """The envelope in a verified body; _Refused("malformed") otherwise."""
    try:
        envelope = _loads(body)
    except ValueError as exc:
        raise _Refused("malformed", f"the body is not JSON: {exc}") from None
    if not isinstance(envelope, dict):
        raise _Refused("malformed", "the body must be a JSON object (an envelope)")
    command_id = envelope.get("id")
    re = command_id if isinstance(command_id, str) and command_id else None
    problems = []
    version = envelope.get("v")
    if type(version) is not int or version != VERSION:
        problems.append(f"v must be {VERSION}")
    for key in ("id", "type", "station"):
        value = envelope.get(key)
        if not isinstance(value, str) or not value:
            problems.append(f"{key} must be a non-empty string")
    if not isinstance(envelope.get("data"), dict):
        problems.append("data must be an object")
    ts: datetime | None = None
    try:
        ts = parse_rfc3339(envelope.get("ts"))
    except ValueError as exc:
        problems.append(f"ts {exc}")
    extra = sorted(set(envelope) - {"v", "id", "type", "station", "ts", "data"})
    if extra:
        problems.append(f"unexpected keys: {', '.join(extra)}")
    if problems or ts is None:
        raise _Refused("malformed", "not a command envelope: " + "; ".join(problems), re)
    return _Command(envelope["id"], envelope["type"], envelope["station"], ts, envelope["data"])


def _describe(error: ValidationError) -> str:
    """Which fields are wrong and why, for the cloud's developers."""
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item.get("loc", ())) or "data"
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(f"{where}: {message}")
    return "; ".join(problems)


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return rfc3339(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


class Inbox:
    def __init__(
        self,
        *,
        station_id: str,
        public_key: Ed25519PublicKey,
        remember: Callable[[str, datetime], Awaitable[bool]],
        handlers: Mapping[str, Handler],
        clock: Callable[[], datetime],
        max_skew: timedelta = timedelta(minutes=5),
        audit: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
        schemas: Mapping[str, type[CommandData]] = SCHEMAS,
    ) -> None:
        """`remember(id, keep_until)` is the persistent replay cache: True when the id is new
        (and now stored), False when seen. `handlers` get the command's checked data (the
        type's model from `schemas`) and return the reply's `result`."""
        missing = sorted(set(handlers) - set(schemas))
        if missing:
            raise ValueError(f"no schema for command types: {', '.join(missing)}")
        if max_skew < timedelta(0):
            raise ValueError("max_skew cannot be negative")
        self.station_id = station_id
        self._key = public_key
        self._remember = remember
        self._handlers = dict(handlers)
        self._schemas = dict(schemas)
        self._clock = clock
        self._max_skew = max_skew
        self._audit = audit
        self._unsigned = 0  # payloads refused in a row before any signature verified

    async def handle(self, payload: bytes) -> dict[str, Any]:
        """The reply envelope for one command payload; never raises (but lets a cancellation
        through: a shutdown must not wait on a handler)."""
        command: _Command | None = None
        signed = False
        try:
            body, signature = _split_payload(payload)
            self._verify(body, signature)
            signed = True
            command = _parse_body(body)
            reply = await self._run(command)
        except _Refused as refused:
            re = refused.re if command is None else command.id
            reply = self._refusal(re, refused.code, refused.message, signed=signed)
        except Exception:
            # A bug in the checks themselves: still an answer, never a dead inbox.
            log.exception("command payload could not be handled")
            re = None if command is None else command.id
            reply = self._refusal(
                re, "internal_error", "the station failed to check the command", signed=signed
            )
        await self._note(command, reply)
        return reply

    def _verify(self, body: str, signature: bytes) -> None:
        try:
            self._key.verify(signature, body.encode("utf-8"))
        except (InvalidSignature, UnicodeEncodeError):
            raise _Refused("bad_signature", "the signature does not match the body") from None
        self._unsigned = 0

    async def _run(self, command: _Command) -> dict[str, Any]:
        if command.station != self.station_id:
            raise _Refused("wrong_station", f"the command is for station {command.station!r}")
        handler = self._handlers.get(command.type)
        if handler is None:
            known = ", ".join(sorted(self._handlers)) or "none"
            raise _Refused("unknown_type", f"no command {command.type!r} here (known: {known})")
        try:
            data = self._schemas[command.type].model_validate(command.raw_data)
        except ValidationError as exc:
            raise _Refused("invalid_data", _short(_describe(exc))) from None
        now = self._clock()
        # Too far ahead is tested first only so that expires_at + max_skew cannot overflow;
        # no command is both too far ahead and expired.
        if data.expires_at > now + MAX_EXPIRY:
            raise _Refused("invalid_data", f"expires_at: more than {MAX_EXPIRY.days} days ahead")
        if now > data.expires_at + self._max_skew:
            raise _Refused("expired", f"the command expired at {rfc3339(data.expires_at)}")
        try:
            new = await self._remember(command.id, data.expires_at + self._max_skew)
        except Exception:
            log.exception(
                "command %s (%s): the replay cache cannot be written", command.id, command.type
            )
            raise _Refused(
                "unavailable",
                "the station cannot record commands now; nothing "
                "was done, send it again with the same id",
            ) from None
        if not new:
            raise _Refused("replayed", f"command {command.id} was already received")
        try:
            result = await handler(data)
        except CommandError as exc:
            return self._refusal(command.id, exc.code, exc.message, signed=True)
        except Exception:
            log.exception("command %s (%s) failed", command.id, command.type)
            return self._refusal(
                command.id, "internal_error", "the station failed to run the command", signed=True
            )
        try:
            # Through JSON now, so that the reply is sendable and a result that is not
            # (a bug in a handler) becomes a refusal here, not a lost reply later.
            result = json.loads(json.dumps(result, default=_json_default))
        except (TypeError, ValueError):
            log.exception("command %s (%s): result is not JSON", command.id, command.type)
            return self._refusal(
                command.id, "internal_error", "the station could not encode the result", signed=True
            )
        log.info("command %s (%s) done", command.id, command.type)
        return reply_envelope(
            self.station_id, re=command.id, ok=True, ts=self._clock(), result=result
        )

    def _refusal(self, re: str | None, code: str, message: str, *, signed: bool) -> dict[str, Any]:
        if signed:
            log.info("command %s refused: %s (%s)", re, code, message)
        else:
            # Unauthenticated junk: the first of a run is worth a warning; a flood of it (a
            # misconfigured cloud, an attacker) must not drown the log.
            level = logging.WARNING if self._unsigned == 0 else logging.DEBUG
            self._unsigned += 1
            log.log(level, "command payload refused: %s (%s)", code, message)
        return reply_envelope(
            self.station_id, re=re, ok=False, ts=self._clock(), error=(code, message)
        )

    async def _note(self, command: _Command | None, reply: dict[str, Any]) -> None:
        if self._audit is None:
            return
        error = reply["data"]["error"]
        entry = {
            "id": None if command is None else command.id,
            "type": None if command is None else command.type,
            "ok": reply["data"]["ok"],
            "code": None if error is None else error["code"],
        }
        try:
            await self._audit(entry)
        except Exception:
            log.exception("command %s: cannot write the audit entry", entry["id"])
