"""The station's own certificate authority and HTTPS certificate, for the console on the LAN.

A station has no public name, so no public CA can vouch for it. Instead each station makes its
own small CA once (`ca.crt`, `ca.key`, ten years) and issues its HTTPS certificate from it
(`station.crt`, `station.key`, 825 days: the longest any tablet browser accepts). Cashiers' PCs
and tablets trust `ca.crt` once; a new certificate for a changed address or at expiry is issued
from the same CA, so nothing has to be trusted again (docs/install.md, "HTTPS").

The CA is name-constrained: it can only vouch for the station's own host names and for private
and loopback addresses. Its key, were it stolen, could not impersonate a bank or the cloud.

Keys are ECDSA P-256: every browser a station meets takes it, and it is fast on a small PC.
No I/O besides reading and writing the files named; `station_addresses()` asks the system.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import socket
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

CA_DAYS = 3650
#: Apple's limit for any TLS server certificate (iOS 13, macOS 10.15); others accept it too.
CERT_DAYS = 825
#: `forecourt tls cert --if-needed` issues a new certificate this long before the old one ends.
RENEW_BEFORE = timedelta(days=60)
#: What the CA may vouch for besides the station's names: loopback and private networks.
PERMITTED_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
    "::1/128", "fc00::/7", "fe80::/10"))

CA_CERT, CA_KEY = "ca.crt", "ca.key"
CERT, KEY = "station.crt", "station.key"


class TlsError(Exception):
    """A certificate or key that cannot be used, with what to do."""


@dataclass(frozen=True)
class Issued:
    folder: Path
    names: tuple[str, ...]
    addresses: tuple[IPAddress, ...]
    not_after: datetime
    new_ca: bool

    @property
    def cert(self) -> Path:
        return self.folder / CERT

    @property
    def key(self) -> Path:
        return self.folder / KEY

    @property
    def ca(self) -> Path:
        return self.folder / CA_CERT


def station_names(hostname: str | None = None) -> tuple[str, ...]:
    """The names a station answers to: its host name, that name under .local (mDNS), localhost."""
    host = (hostname or socket.gethostname()).strip().lower().rstrip(".")
    names = [host] if host else []
    if host and "." not in host:
        names.append(f"{host}.local")
    names.append("localhost")
    return tuple(dict.fromkeys(names))


def station_addresses() -> tuple[IPAddress, ...]:
    """Loopback and the addresses of the station's interfaces (from `ip -j addr`, else from
    the host name), without link-local ones (they change with the cable)."""
    found: list[IPAddress] = [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    try:
        listing = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True,
                                 check=True, timeout=10).stdout
        for link in json.loads(listing):
            for info in link.get("addr_info", []):
                found.append(ipaddress.ip_address(info["local"]))
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError):
        try:
            for *_, sockaddr in socket.getaddrinfo(socket.gethostname(), None):
                found.append(ipaddress.ip_address(str(sockaddr[0]).split("%")[0]))
        except (OSError, ValueError):
            pass
    usable = [a for a in found if not a.is_link_local and not a.is_unspecified]
    return tuple(dict.fromkeys(usable))


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_private(path: Path, data: bytes, owner: str | None) -> None:
    """Written as a new file mode 0600 and renamed into place (no moment open to others)."""
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    if owner is not None:
        _chown(partial, owner)
    partial.replace(path)


def _write_public(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(partial, 0o644)
    partial.replace(path)


def _chown(path: Path, owner: str) -> None:
    import pwd

    try:
        entry = pwd.getpwnam(owner)
    except KeyError:
        raise TlsError(f"there is no user {owner!r} to own {path}") from None
    os.chown(path, entry.pw_uid, entry.pw_gid)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_ca(names: Sequence[str], station: str, now: datetime
            ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A CA that may vouch only for `names` (and their subdomains) and private addresses."""
    key = _key()
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "forecourt"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"forecourt station CA {station}"[:64]),
    ])
    constraints = x509.NameConstraints(
        permitted_subtrees=[*(x509.DNSName(n) for n in names),
                            *(x509.IPAddress(net) for net in PERMITTED_NETWORKS)],
        excluded_subtrees=None)
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(constraints, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def issue(ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
          names: Sequence[str], addresses: Sequence[IPAddress], now: datetime,
          days: int = CERT_DAYS) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The station's HTTPS certificate for `names` and `addresses`, signed by the CA."""
    if not names and not addresses:
        raise TlsError("a certificate needs at least one name or address")
    key = _key()
    common = names[0] if names else str(addresses[0])
    alt = [*(x509.DNSName(n) for n in names), *(x509.IPAddress(a) for a in addresses)]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common[:64])]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(min(now + timedelta(days=days), ca_cert.not_valid_after_utc))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False,
                                         content_commitment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise TlsError(f"{path} is not a readable PEM certificate: {exc}") from None


def cert_names(path: Path) -> tuple[str, ...]:
    """The DNS names and addresses a certificate is for (lowercase, as Host headers carry
    them)."""
    cert = load_cert(path)
    try:
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    names = [n.lower() for n in alt.get_values_for_type(x509.DNSName)]
    names += [str(a) for a in alt.get_values_for_type(x509.IPAddress)]
    return tuple(names)


def spki_sha256(cert: x509.Certificate) -> str:
    """base64 SHA-256 of the public key: what Chromium's --ignore-certificate-errors-spki-list
    and HPKP-style pins take."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate as browsers show it (AB:CD:...), to compare on a tablet."""
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def ensure(folder: Path, *, names: Iterable[str], addresses: Iterable[IPAddress],
           station: str, owner: str | None = None, now: datetime | None = None,
           if_needed: bool = False) -> Issued | None:
    """Make the CA when `folder` has none, then a new station certificate from it.

    With `if_needed`, a certificate that exists, covers `names` and `addresses` and has more
    than RENEW_BEFORE left is kept (returns None). The key files are 0600, `station.key`
    owned by `owner` (the service user reads it), `ca.key` by whoever runs this (root)."""
    now = now or datetime.now(UTC)
    wanted_names = tuple(dict.fromkeys(n.lower() for n in names))
    wanted_addresses = tuple(dict.fromkeys(addresses))
    folder.mkdir(parents=True, exist_ok=True)
    # Certificates are public; the service reads station.crt (the keys are 0600 below).
    folder.chmod(0o755)
    ca_path, ca_key_path = folder / CA_CERT, folder / CA_KEY
    if if_needed and (folder / CERT).is_file() and (folder / KEY).is_file():
        current = load_cert(folder / CERT)
        have = set(cert_names(folder / CERT))
        want = {*wanted_names, *(str(a) for a in wanted_addresses)}
        if want <= have and current.not_valid_after_utc - now > RENEW_BEFORE:
            return None
    new_ca = not (ca_path.is_file() and ca_key_path.is_file())
    if new_ca:
        ca_cert, ca_key = make_ca(wanted_names, station, now)
        _write_private(ca_key_path, _pem_key(ca_key), None)
        _write_public(ca_path, ca_cert.public_bytes(serialization.Encoding.PEM))
    else:
        ca_cert = load_cert(ca_path)
        loaded = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise TlsError(f"{ca_key_path} is not an EC key made by forecourt tls cert")
        ca_key = loaded
    cert, key = issue(ca_cert, ca_key, wanted_names, wanted_addresses, now)
    _write_private(folder / KEY, _pem_key(key), owner)
    chain = cert.public_bytes(serialization.Encoding.PEM)
    _write_public(folder / CERT, chain)
    return Issued(folder, wanted_names, wanted_addresses, cert.not_valid_after_utc, new_ca)
