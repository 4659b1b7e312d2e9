"""How to reach the broker, from the `[sync]` section of the configuration.

    link = CloudLink(station_id=..., **link_options(config.sync), ...)

Reading the password and certificate files is blocking file I/O: do it once at start, before
the link runs (or in a thread), never from the event loop's hot path.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import TypedDict

from edge.config import Sync
from edge.config._values import Broker, broker_url

__all__ = ["Broker", "LinkOptions", "link_options", "parse_broker", "password_from_file",
           "tls_context"]


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
