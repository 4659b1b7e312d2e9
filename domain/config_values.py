"""Parsers for the string values that carry structure: time zones, addresses and URLs.

Each takes the string as written and returns the parsed value, or raises ValueError whose
message is the whole problem as the user should read it.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from functools import cache
from typing import NamedTuple
from urllib.parse import SplitResult, urlsplit
from zoneinfo import available_timezones

from domain.config_reader import quote

_HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")
_PORT = re.compile(r"[0-9]{1,5}")

# In the zone database but not a place: they would make printed times depend on the machine.
_NOT_PLACES = frozenset({"localtime", "posixrules", "Factory"})

# pyserial URL schemes a line may use: a TCP serial server (raw or RFC 2217), the loopback used
# in tests, and the spy:// and hwgrep:// wrappers for field diagnosis and USB lookup.
_HOST_PORT_SCHEMES = ("socket", "rfc2217")
_OTHER_SCHEMES = ("loop", "spy", "hwgrep")


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_PLACES


def time_zone(value: str) -> str:
    """An IANA time zone key such as "Asia/Shanghai"."""
    if value in _zones():
        return value
    near = [zone for zone in _zones() if zone.lower() == value.lower()]
    near = near or difflib.get_close_matches(value, sorted(_zones()), n=1, cutoff=0.8)
    hint = f"; did you mean {quote(near[0])}?" if near else ', e.g. "Asia/Shanghai"'
    raise ValueError(f"{quote(value)} is not an IANA time zone{hint}")


def _host(value: str, whole: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        if _HOSTNAME.fullmatch(value):
            return value
    raise ValueError(f"{quote(whole)}: {quote(value)} is not a host name or IP address")


def _port(value: str, whole: str) -> int:
    if _PORT.fullmatch(value) and 1 <= int(value) <= 65535:
        return int(value)
    raise ValueError(f"{quote(whole)}: the port must be a number 1..65535")


def _host_port(address: str, whole: str, example: str) -> tuple[str, str]:
    """Split `host`, `host:port`, `[v6]` or `[v6]:port`; the port is "" when absent."""
    if address.startswith("["):
        host, bracket, rest = address[1:].partition("]")
        if not bracket or ":" not in host or (rest and not rest.startswith(":")):
            raise ValueError(f"{quote(whole)}: an IPv6 address goes in brackets, like [::1]")
        return _host(host, whole), rest[1:]
    host, colon, port = address.rpartition(":")
    if not colon:
        host, port = address, ""
    if ":" in host:
        raise ValueError(f"{quote(whole)}: an IPv6 address goes in brackets, like [::1]")
    if not host:
        raise ValueError(f"{quote(whole)} has no host; write it like {example}")
    return _host(host, whole), port


def listen_address(value: str) -> tuple[str, int]:
    """`host:port` to listen on; an IPv6 host goes in brackets: `[::1]:8080`."""
    host, port = _host_port(value, value, '"127.0.0.1:8080"')
    if not port:
        raise ValueError(f'{quote(value)} has no port; write it like "127.0.0.1:8080"')
    return host, _port(port, value)


def _split_url(value: str) -> SplitResult:
    try:
        return urlsplit(value)
    except ValueError:  # unbalanced brackets
        raise ValueError(f"{quote(value)} is not a valid URL") from None


def serial_port(value: str) -> str:
    """A pyserial URL: a device path, socket://host:port, rfc2217://host:port, loop://, ..."""
    if value.startswith("/"):
        if any(c.isspace() for c in value):
            raise ValueError(f"{quote(value)}: a device path has no spaces")
        return value
    scheme, sep, rest = value.partition("://")
    if not sep:
        raise ValueError(
            f'{quote(value)} is not a serial port; use a device path like "/dev/ttyUSB0" '
            'or a URL like "socket://10.0.0.9:4001"'
        )
    if scheme in _HOST_PORT_SCHEMES:
        example = f"{scheme}://10.0.0.9:4001"
        _, port = _host_port(_split_url(value).netloc, value, example)
        if not port:
            raise ValueError(f"{quote(value)} has no port; write it like {example}")
        _port(port, value)
    elif scheme not in _OTHER_SCHEMES:
        schemes = ", ".join(f"{s}://" for s in _HOST_PORT_SCHEMES + _OTHER_SCHEMES)
        raise ValueError(f"{quote(value)}: {scheme}:// is not supported; use a path or {schemes}")
    elif scheme != "loop" and not rest:
        raise ValueError(f"{quote(value)}: {scheme}:// needs what follows it")
    return value


class Broker(NamedTuple):
    host: str
    port: int
    tls: bool


def without_password(value: str) -> str:
    """`value` with the password of its `user:password@` part replaced by `***`, for messages
    (everything up to the last `@` is the user part, as URL parsers read it)."""
    scheme, sep, rest = value.partition("://")
    prefix, rest = (scheme + sep, rest) if sep else ("", value)
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return value
    return f"{prefix}{userinfo.partition(':')[0]}:***@{host}"


def broker_url(value: str) -> Broker:
    """mqtt://host[:port] or mqtts://host[:port]; the port defaults to 1883 or 8883.

    A URL with a user and password is refused, and no message shows the password."""
    shown = without_password(value)
    if "@" in value:
        raise ValueError(
            f"{quote(shown)}: put the user in username and the password in password_file, "
            "not in the URL"
        )
    parts = _split_url(value)
    if parts.scheme not in ("mqtt", "mqtts") or not value.startswith(f"{parts.scheme}://"):
        raise ValueError(f"{quote(value)} must start with mqtt:// or mqtts://")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{quote(value)}: a broker URL has no path or query")
    host, port = _host_port(parts.netloc, value, '"mqtts://mqtt.example.com:8883"')
    tls = parts.scheme == "mqtts"
    return Broker(host, _port(port, value) if port else (8883 if tls else 1883), tls)
