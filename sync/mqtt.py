"""How to reach the broker: options from the `[sync]` section of the configuration, the
reconnect backoff (the named policy `domain.retry.BROKER_RECONNECT`), and what the MQTT
client's errors mean.

    link = CloudLink(station_id=..., **link_options(config.sync), ...)

Reading the password and certificate files is blocking file I/O: do it once at start, before
the link runs (or in a thread), never from the event loop's hot path.
"""

from __future__ import annotations

import random
import ssl
from pathlib import Path
from typing import TypedDict

import aiomqtt
from paho.mqtt.reasoncodes import ReasonCode

from domain.config_values import Broker, broker_url
from domain.retry import BROKER_RECONNECT
from edge.config import Sync

__all__ = ["Backoff", "Broker", "LinkError", "LinkOptions", "describe_error", "is_network_error",
           "link_options", "parse_broker", "password_from_file", "payload_bytes",
           "subscription_refused", "tls_context"]


def parse_broker(url: str) -> Broker:
    """`mqtt://host[:port]` or `mqtts://host[:port]` (ports 1883 and 8883 by default), checked
    exactly as the configuration checks it. Raises ValueError."""
    return broker_url(url)


def tls_context(sync: Sync) -> ssl.SSLContext | None:
    """The TLS context for an `mqtts://` broker; None for `mqtt://`.

    With `ca_file` only that CA is trusted (a private cloud CA pinned on the station); without
    it, the system's CAs. The broker's host name is always verified. `client_cert` and
    `client_key` add a client certificate for brokers that authenticate stations by it.
    """
    if not sync.tls:
        return None
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=str(sync.ca_file) if sync.ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if sync.client_cert is not None:
        context.load_cert_chain(sync.client_cert,
                                sync.client_key if sync.client_key is not None else None)
    return context


def password_from_file(path: Path | None) -> str | None:
    """The broker password: the file's text without its line end (editors add one)."""
    if path is None:
        return None
    return path.read_text("utf-8").rstrip("\r\n")


class LinkOptions(TypedDict):
    broker: str
    username: str | None
    password: str | None
    tls: ssl.SSLContext | None


def link_options(sync: Sync) -> LinkOptions:
    """The connection keywords of `CloudLink` for this configuration."""
    return LinkOptions(broker=sync.broker, username=sync.username,
                       password=password_from_file(sync.password_file), tls=tls_context(sync))


class Backoff:
    """The broker reconnect policy (`BROKER_RECONNECT` from `low` doubling to `high`) for a
    reconnect loop that counts its own failures: `next_delay()` after each failed connection,
    `reset()` once connected. The n-th wait in a row is drawn from [c/2, c] with
    c = min(high, low * 2**(n-1)) ("equal jitter", tenacity's wait strategy `wait_doubling`),
    so stations that lost the same broker do not all come back in the same second, and none
    waits longer than `high`."""

    def __init__(self, low: float, high: float, rng: random.Random | None = None) -> None:
        if not 0 < low <= high:
            raise ValueError(f"need 0 < low <= high, got {low} and {high}")
        self.policy = BROKER_RECONNECT.but(first=low, cap=high)
        self.low = low
        self.high = high
        self.attempts = 0
        self._wait = self.policy.wait((rng or random.Random()).random)

    def next_delay(self) -> float:
        self.attempts += 1
        return self._wait.delay(self.attempts)

    def reset(self) -> None:
        self.attempts = 0


class LinkError(Exception):
    """The broker accepted the connection but refused what the link needs from it."""


def subscription_refused(code: int | ReasonCode) -> bool:
    """SUBACK 0x80 (MQTT 3.1.1), or any reason code from 0x80 up (MQTT 5): not subscribed."""
    return (code.value if isinstance(code, ReasonCode) else code) >= 0x80


def payload_bytes(payload: object) -> bytes:
    """An incoming message's payload as bytes (paho gives bytes; aiomqtt types it wider)."""
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode("utf-8")


def describe_error(exc: BaseException) -> str:
    """One line for the log and `last_error`, with the cause aiomqtt keeps in `__cause__`
    ("Disconnected during message iteration: [code:7] The connection was lost.")."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    if exc.__cause__ is not None:
        text = f"{text}: {str(exc.__cause__) or type(exc.__cause__).__name__}"
    return text


def is_network_error(exc: BaseException) -> bool:
    """Trouble with the network or the broker, as opposed to a defect worth a traceback."""
    if isinstance(exc, BaseExceptionGroup):
        return all(is_network_error(inner) for inner in exc.exceptions)
    return isinstance(exc, aiomqtt.MqttError | OSError | LinkError)
