"""The station's link to the cloud over MQTT (CONTRACT.md section 4)."""

from sync.envelope import event_envelope, message_envelope, reply_envelope
from sync.link import CloudLink
from sync.mqtt import (
    Backoff,
    LinkError,
    LinkOptions,
    link_options,
    parse_broker,
    password_from_file,
    tls_context,
)
from sync.outbox import Outbox, Publisher, Window, parse_ack
from sync.topics import QoS, Topics, encode

__all__ = [
    "Backoff",
    "CloudLink",
    "LinkError",
    "LinkOptions",
    "Outbox",
    "Publisher",
    "QoS",
    "Topics",
    "Window",
    "encode",
    "event_envelope",
    "link_options",
    "message_envelope",
    "parse_ack",
    "parse_broker",
    "password_from_file",
    "reply_envelope",
    "tls_context",
]
