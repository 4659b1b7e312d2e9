"""A test CA and a station certificate for 127.0.0.1, and what clients need to trust it.

The certificates come from edge/tls.py itself (the code a station runs at install), made once
per folder. Clients trust the CA the way a cashier's PC would, not by skipping checks:

- httpx and ssl: `TlsMaterial.ssl_context()` (the CA as the only trust anchor);
- Chromium: an NSS database with the CA trusted for TLS servers, in a HOME of its own
  (`TlsMaterial.nss_home()`; Chromium on Linux reads `$HOME/.pki/nssdb`), passed to chromedriver's
  environment (`chromium_env()`). `spki_flag()` is the lighter alternative (Chromium's
  --ignore-certificate-errors-spki-list), which skips chain checks for that key only.

A station config gets the keys with `add_tls(toml_text, tls, redirect_port=...)`.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edge.tls import CA_CERT, CERT, KEY, ensure, load_cert, spki_sha256

NAMES = ("localhost",)
ADDRESSES = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))


@dataclass(frozen=True)
class TlsMaterial:
    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / CA_CERT

    @property
    def cert(self) -> Path:
        return self.folder / CERT

    @property
    def key(self) -> Path:
        return self.folder / KEY

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def spki_flag(self) -> str:
        return f"--ignore-certificate-errors-spki-list={spki_sha256(load_cert(self.cert))}"

    def nss_home(self) -> Path:
        """A HOME whose NSS database trusts the test CA (needs certutil: libnss3-tools)."""
        home = self.folder / "home"
        db = home / ".pki" / "nssdb"
        if not (db / "cert9.db").exists():
            certutil = shutil.which("certutil")
            assert certutil, "certutil is missing (libnss3-tools; scripts/dev setup installs it)"
            db.mkdir(parents=True, exist_ok=True)
            subprocess.run([certutil, "-N", "-d", f"sql:{db}", "--empty-password"], check=True)
            subprocess.run([certutil, "-A", "-d", f"sql:{db}", "-n", "forecourt test CA",
                            "-t", "C,,", "-i", str(self.ca)], check=True)
        return home

    def chromium_env(self) -> dict[str, str]:
        return {**os.environ, "HOME": str(self.nss_home())}


def make_test_tls(folder: Path) -> TlsMaterial:
    """The test CA and a certificate for localhost, 127.0.0.1 and ::1 in `folder` (once)."""
    if not (folder / CERT).is_file():
        ensure(folder, names=NAMES, addresses=ADDRESSES, station="test")
    return TlsMaterial(folder)


def add_tls(toml: str, tls: TlsMaterial, *, redirect_port: int | None = None) -> str:
    """A station config with HTTPS: tls_cert and tls_key (and redirect_listen) under [api]."""
    keys = f'tls_cert = "{tls.cert}"\ntls_key = "{tls.key}"\n'
    if redirect_port is not None:
        keys += f'redirect_listen = "127.0.0.1:{redirect_port}"\n'
    changed, count = re.subn(r"^\[api\]\n", lambda m: m.group(0) + keys, toml, count=1,
                             flags=re.MULTILINE)
    if count == 0:
        changed = toml + "\n[api]\n" + keys
    return changed
