"""`forecourt tls cert` and `tls show`: the station's CA made once, certificates issued from it."""

from __future__ import annotations

import ipaddress
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from domain.files import mode_of
from edge.cli import main
from edge.tls import CERT_DAYS, cert_names, ensure, load_cert

NOW = datetime(2026, 12, 1, tzinfo=UTC)
LOOPBACK = [ipaddress.ip_address("127.0.0.1")]


def test_the_ca_is_made_once_and_certificates_are_renewed_from_it(tmp_path: Path) -> None:
    folder = tmp_path / "tls"
    first = ensure(folder, names=["fcc-0001"], addresses=LOOPBACK, station="XJ-1", now=NOW)
    assert first is not None and first.new_ca
    ca = load_cert(first.ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    leaf = load_cert(first.cert)
    assert leaf.issuer == ca.subject
    assert leaf.not_valid_after_utc - NOW <= timedelta(days=CERT_DAYS)
    assert cert_names(first.cert) == ("fcc-0001", "127.0.0.1")
    # Still good: kept.
    assert ensure(folder, names=["fcc-0001"], addresses=LOOPBACK, station="XJ-1",
                  now=NOW + timedelta(days=30), if_needed=True) is None
    # A new address: a new certificate from the same CA (tablets need not trust anything new).
    moved = ensure(folder, names=["fcc-0001"], addresses=[*LOOPBACK,
                   ipaddress.ip_address("192.168.10.5")], station="XJ-1", now=NOW,
                   if_needed=True)
    assert moved is not None and not moved.new_ca
    assert load_cert(moved.ca) == ca and "192.168.10.5" in cert_names(moved.cert)
    # Close to its end: renewed.
    late = NOW + timedelta(days=CERT_DAYS - 30)
    assert ensure(folder, names=["fcc-0001"], addresses=LOOPBACK, station="XJ-1", now=late,
                  if_needed=True) is not None


def test_keys_are_private_and_certificates_readable_whatever_the_umask(tmp_path: Path) -> None:
    folder = tmp_path / "tls"
    previous = os.umask(0o077)
    try:
        ensure(folder, names=["fcc"], addresses=LOOPBACK, station="S", now=NOW)
    finally:
        os.umask(previous)
    assert mode_of(folder) == 0o755
    assert mode_of(folder / "ca.key") == 0o600 and mode_of(folder / "station.key") == 0o600
    assert mode_of(folder / "ca.crt") == 0o644 and mode_of(folder / "station.crt") == 0o644


def test_the_command_line_makes_and_shows_it(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "tls"
    assert main(["tls", "cert", "--dir", str(folder), "--only", "--name", "Station.Local",
                 "--address", "10.0.0.7"]) == 0
    out = capsys.readouterr().out
    assert "new station CA" in out and "station.local, 10.0.0.7" in out
    assert main(["tls", "cert", "--dir", str(folder), "--only", "--name", "station.local",
                 "--address", "10.0.0.7", "--if-needed"]) == 0
    assert "kept" in capsys.readouterr().out
    assert main(["tls", "show", "--dir", str(folder)]) == 0
    shown = capsys.readouterr().out
    assert "names       station.local, 10.0.0.7" in shown and "sha256" in shown
    assert main(["tls", "cert", "--dir", str(folder), "--address", "not-an-address"]) == 2
    assert main(["tls", "show", "--dir", str(tmp_path / "none")]) == 1
    assert main(["tls", "cert", "--dir", str(tmp_path / "x"), "--owner", "nobody-here-1234",
                 "--only", "--name", "a"]) == 1
