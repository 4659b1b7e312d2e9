"""The daemon serves the console and API over HTTPS itself, and plain HTTP only redirects.

A real station (tests/e2e's simulator and config) with the test CA's certificate for 127.0.0.1
(tests/tls.py); clients trust that CA, nothing is skipped.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from edge.config import ConfigError, load_config
from simulator.control import Simulator
from tests.e2e.conftest import USERS, start_station, write_config
from tests.helpers import free_port
from tests.tls import TlsMaterial, add_tls, make_test_tls


@pytest.fixture
def tls(tmp_path: Path) -> TlsMaterial:
    return make_test_tls(tmp_path / "tls")


@pytest.fixture
async def https(sim: Simulator, tmp_path: Path, tls: TlsMaterial) -> AsyncIterator[tuple[int, int]]:
    assert sim.url is not None
    path = write_config(tmp_path, sim.url)
    redirect = free_port()
    path.write_text(add_tls(path.read_text("utf-8"), tls, redirect_port=redirect), "utf-8")
    station, task = await start_station(path)
    assert station.port is not None
    try:
        yield station.port, redirect
    finally:
        station.request_stop()
        await asyncio.wait_for(task, 20)


async def test_the_console_and_a_login_go_over_https(https: tuple[int, int],
                                                     tls: TlsMaterial) -> None:
    port, _ = https
    async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{port}", verify=tls.ssl_context(),
                                 timeout=15) as client:
        page = await client.get("/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        login = await client.post("/api/v1/session",
                                  json={"user": "att", "pin": USERS["att"][1]})
        assert login.status_code == 200, login.text
        health = await client.get("/api/v1/health")
        assert health.json()["version"]
    # The certificate is the station's: a client that does not trust the CA is refused.
    async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{port}", timeout=15) as stranger:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await stranger.get("/")
    # Nothing answers in plain text on the HTTPS port.
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=15) as plain:
        with pytest.raises(httpx.HTTPError):
            response = await plain.get("/api/v1/health")
            assert response.status_code >= 400


async def test_plain_http_redirects_to_the_same_place_on_https(https: tuple[int, int]) -> None:
    port, redirect = https
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{redirect}", timeout=15) as client:
        page = await client.get("/console?tab=sales")
        assert page.status_code == 308
        assert page.headers["location"] == f"https://127.0.0.1:{port}/console?tab=sales"
        post = await client.post("/api/v1/session", json={"user": "att", "pin": "1111"})
        assert post.status_code == 308  # a POST stays a POST, and no PIN was read
        named = await client.get("/", headers={"Host": f"localhost:{redirect}"})
        assert named.headers["location"] == f"https://localhost:{port}/"
        # A name the station does not go by is not sent anywhere.
        stranger = await client.get("/", headers={"Host": "rebind.example"})
        assert stranger.status_code == 421
        assert stranger.json()["error"]["code"] == "host_not_allowed"


async def test_the_host_allow_list_defaults_to_the_certificates_names(
        https: tuple[int, int], tls: TlsMaterial) -> None:
    port, _ = https
    async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{port}", verify=tls.ssl_context(),
                                 timeout=15) as client:
        ok = await client.get("/api/v1/health", headers={"Host": f"localhost:{port}"})
        assert ok.status_code == 200
        refused = await client.get("/api/v1/health", headers={"Host": "rebind.example"})
        assert refused.status_code == 421


def test_tls_keys_are_checked_whole(tmp_path: Path, tls: TlsMaterial) -> None:
    base = write_config(tmp_path, "socket://127.0.0.1:9").read_text("utf-8")
    config = tmp_path / "bad.toml"

    def problems(text: str) -> str:
        config.write_text(text, "utf-8")
        with pytest.raises(ConfigError) as caught:
            load_config(config)
        return "\n".join(caught.value.problems)

    only_cert = base.replace("[api]\n", f'[api]\ntls_cert = "{tls.cert}"\n', 1)
    assert "tls_cert and tls_key go together" in problems(only_cert)
    redirect_alone = base.replace("[api]\n", '[api]\nredirect_listen = "127.0.0.1:8081"\n', 1)
    assert "set tls_cert and tls_key too" in problems(redirect_alone)
    tls.key.chmod(0o640)
    try:
        assert "chmod 600" in problems(add_tls(base, tls))
    finally:
        tls.key.chmod(0o600)
    config.write_text(add_tls(base, tls), "utf-8")
    loaded = load_config(config)
    assert loaded.api.scheme == "https"
    assert set(loaded.api.allowed_hosts) == {"localhost", "127.0.0.1", "::1"}


def test_the_station_certificate_is_name_constrained(tls: TlsMaterial) -> None:
    from cryptography import x509

    from edge.tls import load_cert

    ca = load_cert(tls.ca)
    constraints = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    permitted = {str(getattr(n, "value", n)) for n in constraints.value.permitted_subtrees or []}
    assert "localhost" in permitted and "192.168.0.0/16" in permitted
    assert "example.com" not in permitted
    context = ssl.create_default_context(cafile=str(tls.ca))
    assert context.cert_store_stats()["x509_ca"] == 1
