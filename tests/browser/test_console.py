"""The attendant console in real headless Chromium against the real daemon and a simulated pump.

A manager logs in, watches pump 1 go from idle to fuelling and back, takes the payment, reprints
the receipt and closes the shift. With ``FORECOURT_SCREENSHOTS=1`` the screenshots of each step
replace the ones in docs/images (docs/console.md shows them); otherwise they go to tmp_path.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from edge.station import Station
from edge.store import Store
from simulator.control import Simulator, run_simulator
from tests.e2e.conftest import USERS, sim_pumps, start_station
from tests.helpers import StationSpec, free_port, wait_until

T = TypeVar("T")

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PUMP1 = 0x50
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
# Generous: a 2-core CI machine runs the browser, the daemon and the simulator at once.
WAIT = 20.0

PRINTER = '[printer]\nkind = "file"\naddress = "receipts.bin"\npreview_dir = "receipts"\n'


def browser_available() -> bool:
    return os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)


pytestmark = pytest.mark.skipif(
    not browser_available() and not os.environ.get("CI"),
    reason="Debian's chromium and chromium-driver are not installed (scripts/dev setup installs "
           "them); in CI the test runs and fails instead of skipping")


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    if os.environ.get("FORECOURT_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        return DOCS_IMAGES
    return tmp_path / "shots"


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--lang=zh-CN",
                 "--window-size=1280,1600", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    # The page's own console, to check that no script failed and no CSP rule refused anything.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield browser
    finally:
        browser.quit()  # ends chromium and chromedriver


@pytest.fixture
async def station(tmp_path: Path) -> AsyncIterator[tuple[Station, Simulator]]:
    async with run_simulator(sim_pumps()) as sim:
        spec = StationSpec(port_url=sim.url, db=tmp_path / "station.db", api_port=free_port())
        config = tmp_path / "station.toml"
        config.write_text(spec.toml() + "\n" + PRINTER, "utf-8")
        with Store.open(spec.db) as store:
            for name, (role, pin) in USERS.items():
                store.upsert_user(name, role=role, pin=pin)
        running, task = await start_station(config)
        try:
            await wait_until(lambda: running.forecourt.pumps[1].state.value == "idle",
                             timeout=WAIT, what="pump 1 idle")
            yield running, sim
        finally:
            running.request_stop()
            await asyncio.wait_for(task, 20)


class Console:
    """The page, driven from a worker thread: Selenium blocks, the station needs its loop."""

    def __init__(self, driver: WebDriver, shots: Path) -> None:
        self.driver = driver
        self.shots = shots
        self.saved: list[Path] = []

    async def do(self, action: Callable[[WebDriver], T]) -> T:
        return await asyncio.to_thread(action, self.driver)

    async def until(self, condition: Callable[[WebDriver], Any], what: str) -> Any:
        def wait(driver: WebDriver) -> Any:
            return WebDriverWait(driver, WAIT, poll_frequency=0.05).until(condition, what)
        return await self.do(wait)

    async def click(self, css: str) -> None:
        element = await self.until(ec.element_to_be_clickable((By.CSS_SELECTOR, css)),
                                   f"{css} clickable")
        await self.do(lambda _: element.click())

    async def text(self, css: str) -> str:
        element = await self.until(ec.visibility_of_element_located((By.CSS_SELECTOR, css)),
                                   f"{css} visible")
        result: str = await self.do(lambda _: element.text)
        return result

    async def nozzle_state(self, state: str) -> None:
        await self.until(ec.presence_of_element_located(
            (By.CSS_SELECTOR, f'#nozzle-1[data-state="{state}"]')), f"nozzle 1 {state}")

    async def shot(self, name: str, show: str | None = None) -> None:
        if show is not None:
            await self.do(lambda d: d.execute_script(
                "document.querySelector(arguments[0]).scrollIntoView();", show))
        self.shots.mkdir(parents=True, exist_ok=True)
        path = self.shots / f"console-{name}.png"
        assert await self.do(lambda d: d.save_screenshot(str(path))), path
        self.saved.append(path)


async def test_manager_sells_takes_payment_reprints_and_closes_the_shift(
        station: tuple[Station, Simulator], driver: webdriver.Chrome, shots: Path,
        tmp_path: Path) -> None:
    running, sim = station
    page = Console(driver, shots)
    base = f"http://127.0.0.1:{running.port}/"

    await page.do(lambda d: d.get(base))
    await page.do(lambda d: d.find_element(By.ID, "user").send_keys("boss"))
    await page.do(lambda d: d.find_element(By.ID, "pin").send_keys(USERS["boss"][1]))
    await page.shot("1-login")
    await page.click("#go")
    assert "站长" in await page.text("#who")

    # Pump 1 idle; a manager sees every action.
    await page.nozzle_state("idle")
    assert "空闲" in await page.text("#nozzle-1")
    assert await page.text("#shift-close") == "一键班结"
    assert await page.do(lambda d: d.find_element(By.ID, "audit-panel").is_displayed())
    await page.shot("2-forecourt")

    # A 30-litre preset typed on the keypad.
    await page.click("#authorize-1")
    await page.click("#mode-volume")
    for key in "30":
        await page.click(f'[data-key="{key}"]')
    assert await page.text("#keypad-value") == "30 升"
    await page.shot("3-keypad")
    await page.click("#keypad-ok")
    await page.until(ec.invisibility_of_element_located((By.ID, "keypad")), "keypad closed")
    await page.nozzle_state("authorized")
    assert running.forecourt.pumps[1].auth is not None

    sim.lift(PUMP1, 1)
    await page.nozzle_state("fuelling")
    await page.until(lambda d: d.find_element(By.CSS_SELECTOR, "#nozzle-1 .volume").text
                     not in ("0.00 升", ""), "live volume on the tile")
    await page.shot("4-fuelling")
    await wait_until(lambda: sim.fills(), timeout=WAIT, what="the fill to end at the preset")
    sim.hang(PUMP1, 1)
    await page.nozzle_state("idle")

    # The sale shows unpaid, with exactly what the pump delivered.
    row = await page.until(ec.visibility_of_element_located(
        (By.CSS_SELECTOR, "#unpaid tbody tr")), "an unpaid sale")
    sale_id: str = await page.do(lambda _: row.get_attribute("data-sale"))
    sale = await running.ledger.read(running.store.get_sale, sale_id)
    assert sale is not None and not sale.paid
    assert str(sale.volume) == "30.00"
    cells = await page.do(lambda _: [c.text for c in row.find_elements(By.TAG_NAME, "td")])
    assert cells[3] == "30.00" and cells[4] == f"￥{sale.amount}", cells
    assert cells[5] == f"￥{sale.amount}", cells
    await page.shot("5-unpaid")

    # Cash for the whole amount: the sale leaves the list and its receipt preview opens.
    await page.click(f'tr[data-sale="{sale_id}"] .pay-cash')
    await page.until(ec.visibility_of_element_located((By.ID, "unpaid-none")), "no unpaid sale")
    paid = await running.ledger.read(running.store.get_sale, sale_id)
    assert paid is not None and paid.paid
    assert [(p.method, p.amount) for p in paid.payments] == [("cash", sale.amount)]
    await page.until(lambda d: d.execute_script(
        "const i = document.getElementById('receipt-img');"
        "return !i.hidden && i.complete && i.naturalWidth > 0;"), "the receipt preview")

    # The sale printed on its own when it completed; this is the reprint (补打).
    spool = tmp_path / "receipts.bin"
    await wait_until(lambda: spool.exists() and spool.stat().st_size > 0, timeout=WAIT,
                     what="the sale's first receipt")
    await wait_until(lambda: running.receipts is not None
                     and running.receipts.status()["pending_jobs"] == 0,
                     timeout=WAIT, what="the first receipt printed")
    printed = spool.stat().st_size
    await page.click("#receipt-print")
    message = await page.text("#receipt-msg")
    assert message.startswith("已送打印"), message
    await wait_until(lambda: spool.stat().st_size > printed, timeout=WAIT,
                     what="the reprint on the printer")
    await page.shot("6-receipt", "#receipt-panel")

    # One click closes the shift; the report shows the sale and the cash.
    await page.click("#shift-close")
    await page.until(ec.alert_is_present(), "the confirmation")
    await page.do(lambda d: d.switch_to.alert.accept())
    report = await page.text("#shift-report .report")
    assert "第 1 班" in report, report
    assert "交易 1 笔" in report and f"已收 ￥{sale.amount}" in report, report
    assert "现金" in report, report
    await page.shot("7-shift", "#shift-panel")

    # The day's report shows the sale by grade and the cash taken.
    await page.click("#report-load")
    await page.until(lambda d: "合计 1 笔" in d.find_element(By.ID, "report").text,
                     "the daily report")
    daily = await page.text("#report")
    assert "92号汽油" in daily and "现金" in daily and f"￥{sale.amount}" in daily, daily
    await page.shot("8-report", "#report-panel")

    # An emergency price change from the console reaches the pumps.
    await page.do(lambda d: d.find_element(By.ID, "price-value").send_keys("7.62"))
    await page.click("#price-form button[type=submit]")
    await page.until(lambda d: "7.62" in d.find_element(By.ID, "prices").text, "the new price")
    await page.until(lambda _: running.forecourt.prices.prices["92"] == Decimal("7.62"),
                     "the station's current price")
    await page.shot("9-prices", "#prices-panel")

    # The browser saw no script error and no CSP refusal.
    logs = await asyncio.to_thread(driver.get_log, "browser")
    console_errors = [e["message"] for e in logs if e.get("level") == "SEVERE"]
    assert console_errors == [], console_errors
    assert all(p.stat().st_size > 0 for p in page.saved)


def log_in(driver: WebDriver, user: str) -> None:
    name = driver.find_element(By.ID, "user")
    name.clear()
    name.send_keys(user)
    driver.find_element(By.ID, "pin").send_keys(USERS[user][1])


async def test_each_role_sees_only_what_it_may_do(
        station: tuple[Station, Simulator], driver: WebDriver) -> None:
    running, _ = station
    page = Console(driver, Path())
    await page.do(lambda d: d.get(f"http://127.0.0.1:{running.port}/"))
    # (user, authorize and stop, shift close, audit log)
    for user, operate, close, audit in [("att", True, False, False), ("fin", False, False, True),
                                        ("cash", True, False, False), ("boss", True, True, True)]:
        await page.do(partial(log_in, user=user))
        await page.click("#go")
        await page.nozzle_state("idle")
        seen = await page.do(lambda d: {
            "operate": bool(d.find_elements(By.ID, "authorize-1"))
            and bool(d.find_elements(By.ID, "stop-1")),
            "close": d.find_element(By.ID, "shift-panel").is_displayed(),
            "audit": d.find_element(By.ID, "audit-panel").is_displayed()})
        assert seen == {"operate": operate, "close": close, "audit": audit}, user
        await page.click("#logout")
        await page.until(ec.visibility_of_element_located((By.ID, "login")), "the login form")
        assert not await page.do(lambda d: d.find_elements(By.CSS_SELECTOR, "#pumps .pump"))


def test_the_console_loads_nothing_from_outside() -> None:
    static = Path(__file__).resolve().parents[2] / "edge" / "static"
    for path in static.iterdir():
        text = path.read_text("utf-8").replace("http://www.w3.org/2000/svg", "")
        assert "http://" not in text and "https://" not in text, path

