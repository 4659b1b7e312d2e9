"""What a request may be before it is read: the Host and Origin rules, the integer bounds and
their [api] keys. The rules themselves, without a server (edge/api/hosts.py, domain/bounds.py);
tests/security/test_http.py sends the same to a real daemon."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from domain.bounds import INT64, INT64_MAX, INT64_MIN, ROW_ID, SEQ, Bound, OutOfBounds
from edge.api.hosts import HostPolicy, split_host
from edge.config import ConfigError, parse_config

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = (ROOT / "config" / "minimal.toml").read_text("utf-8")

LOOPBACK = HostPolicy.for_listen("127.0.0.1")
EVERYWHERE = HostPolicy.for_listen("0.0.0.0", ["station.local"])


# ---------------------------------------------------------------------- Host


@pytest.mark.parametrize(("header", "split"), [
    ("127.0.0.1:8080", ("127.0.0.1", 8080)),
    ("LocalHost", ("localhost", None)),
    ("localhost.:80", ("localhost", 80)),
    ("[::1]:8080", ("::1", 8080)),
    ("[::1]", ("::1", None)),
    ("station.local:8080", ("station.local", 8080)),
    ("", None), (None, None), (":8080", None), ("[::1", None), ("::1", None),
    ("[evil]:80", None), ("host:port", None), ("host:0", None), ("host:65536", None),
    ("user@host", None), ("host/path", None), (" host", None), ("host:８０", None),
])
def test_a_host_header_is_split_or_refused(header: str | None,
                                           split: tuple[str, int | None] | None) -> None:
    assert split_host(header) == split


@pytest.mark.parametrize("header", ["127.0.0.1:8080", "localhost:8080", "LOCALHOST", "[::1]:1",
                                    "localhost."])
def test_the_pc_s_own_names_are_always_allowed(header: str) -> None:
    assert LOOPBACK.allows_host(header)
    assert EVERYWHERE.allows_host(header)


@pytest.mark.parametrize("header", ["rebind.example", "rebind.example:8080", "127.0.0.1.nip.io",
                                    "localhost.rebind.example", "192.168.1.10:8080", "", None,
                                    "0.0.0.0:8080"])
def test_a_station_on_loopback_answers_to_nothing_else(header: str | None) -> None:
    assert not LOOPBACK.allows_host(header)


def test_a_station_on_every_interface_answers_to_addresses_and_listed_names() -> None:
    # An address in Host cannot be a DNS rebinding: the page's origin is the address itself.
    assert EVERYWHERE.allows_host("192.168.1.10:8080")
    assert EVERYWHERE.allows_host("[fe80::1]:8080")
    assert EVERYWHERE.allows_host("Station.Local:8080")
    assert not EVERYWHERE.allows_host("rebind.example:8080")
    assert not EVERYWHERE.allows_host("station.local.rebind.example")


def test_a_station_on_one_address_answers_to_it() -> None:
    policy = HostPolicy.for_listen("192.168.1.10")
    assert policy.allows_host("192.168.1.10:8080")
    assert not policy.allows_host("192.168.1.11:8080")


# ---------------------------------------------------------------------- Origin


@pytest.mark.parametrize(("origin", "host", "allowed"), [
    (None, "127.0.0.1:8080", True),  # not a browser
    ("http://127.0.0.1:8080", "127.0.0.1:8080", True),
    ("http://LOCALHOST:8080", "localhost:8080", True),
    ("https://station.local", "station.local", True),  # behind a TLS proxy
    ("http://station.local", "station.local:80", True),
    ("http://[::1]:8080", "[::1]:8080", True),
    ("http://127.0.0.1:8081", "127.0.0.1:8080", False),  # another program on the PC
    ("http://rebind.example:8080", "127.0.0.1:8080", False),
    ("http://localhost:8080", "127.0.0.1:8080", False),
    ("null", "127.0.0.1:8080", False),
    ("file://", "127.0.0.1:8080", False),
    ("http://127.0.0.1:99999", "127.0.0.1:8080", False),
    ("http://127.0.0.1:8080", None, False),
])
def test_a_websocket_origin_must_be_the_station_itself(origin: str | None, host: str | None,
                                                       allowed: bool) -> None:
    assert EVERYWHERE.allows_origin(origin, host) is allowed


# ---------------------------------------------------------------------- integers


def test_bounds_hold_sqlite_s_integers_and_nothing_beyond() -> None:
    assert INT64_MIN in INT64 and INT64_MAX in INT64
    assert INT64_MAX + 1 not in INT64 and INT64_MIN - 1 not in INT64
    assert 0 in SEQ and -1 not in SEQ and 2**63 not in SEQ
    assert 0 not in ROW_ID and 1 in ROW_ID
    assert True not in SEQ and 1.0 not in SEQ and "1" not in SEQ
    assert SEQ.check(5, "upto_seq") == 5
    with pytest.raises(OutOfBounds, match=r"upto_seq must be an integer from 0 to 9223372036854775807, not 9223372036854775808"):  # noqa: E501
        SEQ.check(2**63, "upto_seq")
    with pytest.raises(OutOfBounds, match=r"not True"):
        SEQ.check(True, "upto_seq")
    with pytest.raises(OutOfBounds, match=r"\.\.\.$"):
        SEQ.check(10**100, "upto_seq")  # a long number is shortened in the message
    with pytest.raises(ValueError):
        Bound(0, 2**63)  # wider than SQLite


# ---------------------------------------------------------------------- [api] keys


def config(api: str, storage: Path | None = None) -> str:
    text = MINIMAL + f"\n[api]\n{api}\n"
    if storage is not None:  # a station whose files exist, for check_files
        text = text.replace('"/dev/ttyUSB0"', '"loop://"') + f'[storage]\npath = "{storage}"\n'
    return text


def test_the_api_keys_default_to_a_closed_station() -> None:
    api = parse_config(MINIMAL).api
    assert api.max_request == 64 * 1024
    assert api.allowed_hosts == ()
    assert api.metrics_token_file is None and api.metrics_open is False


def test_the_api_keys_are_read() -> None:
    api = parse_config(config('max_request_kib = 8\nallowed_hosts = ["Station.Local.", '
                              '"[FE80::1]", "10.0.0.5"]\nmetrics_open = true')).api
    assert api.max_request == 8 * 1024
    assert api.allowed_hosts == ("station.local", "fe80::1", "10.0.0.5")
    assert api.metrics_open is True


@pytest.mark.parametrize(("api", "problem"), [
    ("max_request_kib = 0", "api.max_request_kib: 0 is out of range 1..16384"),
    ('allowed_hosts = "station.local"', "api.allowed_hosts: expected an array of host names"),
    ('allowed_hosts = ["http://station.local"]', "api.allowed_hosts[0]: 'http://station.local' "
     "is not a host name or an IP address"),
    ('allowed_hosts = ["station.local:8080"]', "api.allowed_hosts[0]"),
    ("allowed_hosts = [1]", "api.allowed_hosts[0]: expected a host name"),
    ('metrics_open = "yes"', "api.metrics_open: expected true or false"),
])
def test_bad_api_keys_are_refused(api: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config(api))
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_a_metrics_token_file_must_be_private_and_hold_a_token(tmp_path: Path) -> None:
    token = tmp_path / "metrics.token"
    text = config(f'metrics_token_file = "{token}"', tmp_path / "station.db")
    with pytest.raises(ConfigError, match="does not exist"):
        parse_config(text, check_files=True, base_dir=tmp_path)
    token.write_text("0123456789abcdef0123\n")
    token.chmod(0o644)
    with pytest.raises(ConfigError, match=r"is open to other users .* chmod 600"):
        parse_config(text, check_files=True, base_dir=tmp_path)
    token.chmod(0o600)
    api = parse_config(text, check_files=True, base_dir=tmp_path).api
    assert api.metrics_token_file == token
    for bad in ("short", "two words here please\n", ""):
        token.write_text(bad)
        with pytest.raises(ConfigError, match="one token of at least 16 characters"):
            parse_config(text, check_files=True, base_dir=tmp_path)
    if os.geteuid() != 0:  # root reads anything
        token.chmod(0o000)
        with pytest.raises(ConfigError):
            parse_config(text, check_files=True, base_dir=tmp_path)
