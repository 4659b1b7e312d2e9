"""Which Host and Origin headers the station answers: the defence against DNS rebinding.

A web page from `rebind.example` whose name is made to point at the station PC can make the
browser talk to the station's port, but every request it sends carries `Host: rebind.example`:
refusing names the station does not go by stops it before the login. An IP address in Host
cannot be a rebinding (the browser's origin is then the address itself), so a station that
listens on every interface answers to any address, and to names only when they are listed.

A browser always sends Origin on a WebSocket; the console is served by the station itself, so
its Origin is the very host and port it connects to. Anything else is a page of another site.
No I/O here: the middleware in limits.py asks.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

#: Names a station always answers to: the PC itself.
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
#: Listen addresses that mean "every interface".
ANY_ADDRESS = frozenset({"0.0.0.0", "::"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def split_host(value: str | None) -> tuple[str, int | None] | None:
    """`host[:port]` or `[v6][:port]` as a Host header carries it: (lowercased host, port);
    None when it is missing or not a host."""
    if not value or value != value.strip() or any(c in value for c in "/@?#\\ "):
        return None
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or not _is_address(host) or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:]
    else:
        host, colon, port_text = value.rpartition(":")
        if not colon:
            host, port_text = value, ""
        elif ":" in host:
            return None
    host = host.lower().removesuffix(".")
    if not host:
        return None
    if not port_text:
        return host, None
    if not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None
    return host, int(port_text)


@dataclass(frozen=True)
class HostPolicy:
    """The Host allow-list: `names` (hosts and addresses, lowercase) and, when the API
    listens on every interface, any IP address."""

    names: frozenset[str]
    any_address: bool = False

    @classmethod
    def for_listen(cls, listen_host: str, allowed: Iterable[str] = ()) -> HostPolicy:
        """The listen address, the PC's own names, and `allowed` ([api] allowed_hosts)."""
        listen = listen_host.lower()
        names = set(LOCAL_HOSTS) | {name.lower() for name in allowed}
        if listen not in ANY_ADDRESS:
            names.add(listen)
        return cls(frozenset(names), any_address=listen in ANY_ADDRESS)

    def allows_host(self, header: str | None) -> bool:
        split = split_host(header)
        if split is None:
            return False
        host = split[0]
        if host in self.names:
            return True
        return self.any_address and _is_address(host)

    def allows_origin(self, origin: str | None, host_header: str | None) -> bool:
        """A WebSocket's Origin: absent (not a browser), or the host and port the socket
        connects to, as the browser wrote both (a proxy in front may add TLS: the scheme is
        not compared)."""
        if origin is None:
            return True
        try:
            parts = urlsplit(origin)
            origin_port = parts.port
        except ValueError:
            return False
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            return False  # "null" (a sandboxed frame, a file), or nonsense
        target = split_host(host_header)
        if target is None:
            return False
        default = _DEFAULT_PORTS[parts.scheme]
        return (parts.hostname.lower().removesuffix(".") == target[0]
                and (origin_port or default) == (target[1] or default))
