"""A real Chromium loads the console over HTTPS, trusting the station's CA as a cashier's PC
would (an NSS database with the test CA, tests/tls.py), and a plain-HTTP address redirects."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from simulator.control import run_simulator
from tests.e2e.conftest import sim_pumps, start_station, write_config
from tests.helpers import free_port, wait_until
from tests.tls import TlsMaterial, add_tls, make_test_tls

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

pytestmark = pytest.mark.skipif(
    not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK))
    and not os.environ.get("CI"), reason="Debian's chromium and chromium-driver are missing")


@pytest.fixture
def tls(tmp_path: Path) -> TlsMaterial:
    return make_test_tls(tmp_path / "tls")


@pytest.fixture
async def station_urls(tmp_path: Path, tls: TlsMaterial) -> AsyncIterator[tuple[str, str]]:
    """The daemon on HTTPS with the test certificate, and its plain-HTTP redirect."""
    async with run_simulator(pumps=sim_pumps()) as sim:
        assert sim.url is not None
        path = write_config(tmp_path, sim.url)
        redirect = free_port()
        path.write_text(add_tls(path.read_text("utf-8"), tls, redirect_port=redirect), "utf-8")
        station, task = await start_station(path)
        try:
            yield f"https://127.0.0.1:{station.port}/", f"http://127.0.0.1:{redirect}/"
        finally:
            station.request_stop()
            await asyncio.wait_for(task, 20)


@pytest.fixture
def browser(tmp_path: Path, tls: TlsMaterial) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    # The CA trusted in the profile's NSS database, as `certutil` does it on a cashier's PC.
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER, env=tls.chromium_env()),
                              options=options)
    try:
        yield driver
    finally:
        driver.quit()


async def test_chromium_loads_the_console_over_https_and_http_redirects(
        station_urls: tuple[str, str], browser: webdriver.Chrome) -> None:
    https, http = station_urls
    await asyncio.to_thread(browser.get, https)
    await wait_until(lambda: browser.execute_script("return document.readyState") == "complete",
                     timeout=30, what="the console loaded")
    # A page Chromium refused would be its interstitial, not the console: the page fetches
    # from the station like the console does, which only the station's own page can.
    assert browser.current_url == https
    assert "ERR_CERT" not in browser.page_source
    status = await asyncio.to_thread(
        browser.execute_async_script,
        "const done = arguments[0]; fetch('/api/v1/health').then(r => done(r.status), "
        "e => done(String(e)))")
    assert status == 200
    await asyncio.to_thread(browser.get, http + "?from=bookmark")
    await wait_until(lambda: browser.current_url.startswith("https://"), timeout=30,
                     what="the redirect to HTTPS")
    assert browser.current_url == https + "?from=bookmark"


async def test_chromium_refuses_the_station_without_its_ca(
        station_urls: tuple[str, str], tmp_path: Path) -> None:
    https, _ = station_urls
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--no-first-run",
                 f"--user-data-dir={tmp_path / 'stranger'}"):
        options.add_argument(flag)
    home = tmp_path / "empty-home"
    home.mkdir()
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER, env={**os.environ,
                                                                 "HOME": str(home)}),
                              options=options)
    try:
        await asyncio.to_thread(driver.get, https)
        source = driver.page_source
        # Chromium's interstitial, not the console.
        assert "ERR_CERT_AUTHORITY_INVALID" in source or "net::ERR_CERT" in source \
            or "NET::ERR_CERT" in source, source[:300]
    finally:
        driver.quit()
