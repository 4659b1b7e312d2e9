"""Gauge addresses as URLs, so a console on the LAN, a probe bus on a serial port and the
simulator all take the same path.

- ``modbus-tcp://10.0.0.20:502``: Modbus TCP (MBAP header), port 502 when left out.
- ``modbus-rtu:///dev/ttyS3?baudrate=9600&parity=N``: Modbus RTU on a serial port; also
  ``bytesize`` (7, 8) and ``stopbits`` (1, 2). Defaults: 9600 baud, 8N1.
- ``modbus-rtu-tcp://10.0.0.9:4001``: RTU frames through a serial-to-Ethernet converter in
  transparent mode, common on forecourts where the RS-485 run to the tank farm ends in a box.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qsl, urlsplit

MODBUS_TCP_PORT = 502
_HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*")
_BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


class Transport(StrEnum):
    TCP = "modbus-tcp"
    RTU = "modbus-rtu"
    RTU_OVER_TCP = "modbus-rtu-tcp"


@dataclass(frozen=True)
class GaugeUrl:
    transport: Transport
    host: str = ""  # TCP transports
    port: int = 0
    device: str = ""  # the serial port, for modbus-rtu
    baudrate: int = 9600
    parity: str = "N"
    bytesize: int = 8
    stopbits: int = 1

    @classmethod
    def parse(cls, text: str) -> GaugeUrl:
        """Raises ValueError whose message is the whole problem, as the user should read it."""
        shown = f'"{text}"'
        scheme, sep, _ = text.partition("://")
        try:
            transport = Transport(scheme)
        except ValueError:
            schemes = ", ".join(f"{t.value}://" for t in Transport)
            message = f"{shown} is not a gauge URL; it starts with one of {schemes}"
            raise ValueError(message) from None
        if not sep:
            raise ValueError(f"{shown} is not a gauge URL")
        parts = urlsplit(text)
        if parts.fragment or "@" in parts.netloc:
            raise ValueError(f"{shown}: a gauge URL has no user or fragment")
        if transport is Transport.RTU:
            return cls._serial(text, parts.netloc, parts.path, parts.query)
        if parts.path not in ("", "/") or parts.query:
            raise ValueError(f"{shown}: a {transport.value} URL is host:port, nothing after it")
        host, port = _host_port(parts.netloc, shown)
        if port is None:
            if transport is Transport.RTU_OVER_TCP:
                raise ValueError(
                    f"{shown} needs the converter's port, e.g. {transport.value}://10.0.0.9:4001"
                )
            port = MODBUS_TCP_PORT
        return cls(transport, host=host, port=port)

    @classmethod
    def _serial(cls, text: str, netloc: str, path: str, query: str) -> GaugeUrl:
        shown = f'"{text}"'
        if netloc or not path.startswith("/dev/") or len(path) <= len("/dev/"):
            raise ValueError(
                f'{shown}: name the serial port after three slashes, like "modbus-rtu:///dev/ttyS3"'
            )
        settings: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
            if key in settings:
                raise ValueError(f"{shown}: {key} is given twice")
            settings[key] = value
        unknown = sorted(set(settings) - {"baudrate", "parity", "bytesize", "stopbits"})
        if unknown:
            raise ValueError(
                f"{shown}: unknown setting {unknown[0]}; use baudrate, parity, bytesize, stopbits"
            )
        baudrate = _choice(settings, "baudrate", 9600, _BAUDRATES, shown)
        bytesize = _choice(settings, "bytesize", 8, (7, 8), shown)
        stopbits = _choice(settings, "stopbits", 1, (1, 2), shown)
        parity = settings.get("parity", "N").upper()
        if parity not in ("N", "E", "O"):
            raise ValueError(f"{shown}: parity is N, E or O")
        return cls(Transport.RTU, device=path, baudrate=baudrate, parity=parity,
                   bytesize=bytesize, stopbits=stopbits)  # fmt: skip

    @property
    def endpoint(self) -> str:
        """What is physically shared: gauges with the same endpoint share one connection."""
        if self.transport is Transport.RTU:
            return self.device
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        if self.transport is Transport.RTU:
            query = f"baudrate={self.baudrate}&parity={self.parity}"
            if self.bytesize != 8:
                query += f"&bytesize={self.bytesize}"
            if self.stopbits != 1:
                query += f"&stopbits={self.stopbits}"
            return f"{self.transport.value}://{self.device}?{query}"
        return f"{self.transport.value}://{self.endpoint}"


def _choice(settings: dict[str, str], key: str, default: int, allowed: tuple[int, ...],
            shown: str) -> int:  # fmt: skip
    text = settings.get(key)
    if text is None:
        return default
    if not text.isdigit() or int(text) not in allowed:
        raise ValueError(f"{shown}: {key} is one of {', '.join(map(str, allowed))}")
    return int(text)


def _host_port(netloc: str, shown: str) -> tuple[str, int | None]:
    if netloc.startswith("["):
        host, bracket, rest = netloc[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{shown}: an IPv6 address goes in brackets, like [fd00::20]")
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text_ = netloc.partition(":")
        port_text = port_text_ if colon else None
    if not host:
        raise ValueError(f"{shown} has no host")
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        if not _HOSTNAME.fullmatch(host):
            raise ValueError(f"{shown}: {host} is not a host name or IP address") from None
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{shown}: the port must be a number 1..65535")
    return host, int(port_text)
