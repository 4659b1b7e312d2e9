"""mqtts:// for real: a Mosquitto TLS listener that requires a client certificate, a private CA
pinned through `ca_file`, and a station that refuses a broker its CA did not sign."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edge.config import Sync
from edge.store import Store
from sync.mqtt import link_options
from tests.helpers import free_port, wait_until
from tests.mosquitto import Mosquitto
from tests.sync.conftest import Cloud, StoreOutbox, append, make_link

pytestmark = pytest.mark.usefixtures("no_leaks")

NOW = dt.datetime.now(dt.UTC)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _ca(folder: Path, common: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    cert = (x509.CertificateBuilder().subject_name(_name(common)).issuer_name(_name(common))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(hours=1))
            .not_valid_after(NOW + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    _write(folder / common, cert, key)
    return cert, key


def _leaf(folder: Path, common: str, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
          *, server: bool) -> None:
    key = _key()
    builder = (x509.CertificateBuilder().subject_name(_name(common))
               .issuer_name(ca[0].subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(NOW - dt.timedelta(hours=1))
               .not_valid_after(NOW + dt.timedelta(days=1)))
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    _write(folder / common, builder.sign(ca[1], hashes.SHA256()), key)


@dataclass
class Pki:
    folder: Path

    def crt(self, name: str) -> Path:
        return self.folder / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.folder / f"{name}.key"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    cloud_ca = _ca(folder, "cloud-ca")
    _ca(folder, "other-ca")
    _leaf(folder, "broker", cloud_ca, server=True)
    _leaf(folder, "station", cloud_ca, server=False)
    return Pki(folder)


@pytest.fixture
def tls_broker(tmp_path: Path, pki: Pki) -> Iterator[tuple[Mosquitto, int]]:
    tls_port = free_port()
    mosquitto = Mosquitto(tmp_path / "broker", extra=(
        f"listener {tls_port} 127.0.0.1\n"
        f"cafile {pki.crt('cloud-ca')}\n"
        f"certfile {pki.crt('broker')}\n"
        f"keyfile {pki.key('broker')}\n"
        "require_certificate true\n"))
    mosquitto.start()
    try:
        yield mosquitto, tls_port
    finally:
        mosquitto.stop()


def sync_section(pki: Pki, tls_port: int, ca: str) -> Sync:
    return Sync(broker=f"mqtts://127.0.0.1:{tls_port}", host="127.0.0.1", port=tls_port,
                tls=True, cloud_public_key=pki.crt(ca), ca_file=pki.crt(ca),
                client_cert=pki.crt("station"), client_key=pki.key("station"))


async def test_events_flow_over_mqtts_with_a_pinned_ca_and_a_client_certificate(
        tls_broker: tuple[Mosquitto, int], pki: Pki, store: Store,
        outbox: StoreOutbox) -> None:
    broker, tls_port = tls_broker
    options = link_options(sync_section(pki, tls_port, "cloud-ca"))
    async with Cloud(broker) as cloud, make_link(outbox=outbox, **options) as link:
        await wait_until(lambda: link.connected, what="connected over TLS")
        await append(store, link, 3)
        await wait_until(lambda: link.acked_upto == 3, what="acked")
        assert cloud.seqs == [1, 2, 3]


async def test_a_broker_signed_by_another_ca_is_refused_and_retried(
        tls_broker: tuple[Mosquitto, int], pki: Pki, outbox: StoreOutbox) -> None:
    _, tls_port = tls_broker
    options = link_options(sync_section(pki, tls_port, "other-ca"))
    async with make_link(outbox=outbox, **options) as link:
        await wait_until(lambda: link.failures >= 2, what="refused twice")
        assert not link.connected and link.connects == 0
        assert link.last_error is not None and "certificate verify failed" in link.last_error
