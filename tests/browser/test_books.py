"""The books in the console (账务): a manager receives a delivery beyond the loss threshold, an
attendant puts a nozzle in non-sale mode for a 20 L self-check, a manager closes a month and
keeps a credit account, with real clicks in headless Chromium against the real daemon.

With FORECOURT_SCREENSHOTS=1 the screenshots land in docs/images (docs/operations.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulator.control import run_simulator
from tests.books.test_e2e import BOOKS, _script_month
from tests.browser.conftest import (
    ATTENDANT,
    MANAGER,
    USERS,
    Page,
    chrome,
    over_https,
    pump_specs,
    running,
    shots_dir,
    sim_pumps,
)
from tests.helpers import StationSpec, free_port, wait_until


async def test_a_manager_keeps_the_books_in_the_console(tmp_path: Path) -> None:
    from edge.store import Store

    async with run_simulator(sim_pumps(2)) as sim:
        spec = StationSpec(port_url=sim.url, db=tmp_path / "station.db", api_port=free_port(),
                           pumps=pump_specs(2), reply_timeout_ms=200)
        config = tmp_path / "station.toml"
        config.write_text(over_https(spec.toml()) + BOOKS.format(gauge_port=free_port(),
                                                     printer=tmp_path / "printer.bin"), "utf-8")
        with Store.open(spec.db) as store:
            for name, (role, pin) in USERS.items():
                store.upsert_user(name, role=role, pin=pin)
        _script_month(spec.db)  # October 2026, with sales, a delivery and non-sale fuel
        async with running(config) as station:
            base = f"https://127.0.0.1:{station.port}"
            await wait_until(lambda: all(p.state.value == "idle"
                                         for p in station.forecourt.pumps.values()),
                             timeout=60, what="every pump idle")
            driver = chrome(tmp_path / "chromium", size=(1280, 800))
            page = Page(driver, shots_dir(tmp_path))
            try:
                await _delivery(page, base)
                await _month_and_account(page, base)
                await page.logout()
                await _self_check(page, base, sim)
                assert await page.console_errors() == []
            finally:
                driver.quit()
            fills = station.store.events_since(0, 5000)
            kinds = [e.data["kind"] for e in fills if e.type == "nonsale.recorded"]
            assert "self_check" in kinds


async def _status(page: Page, words: str) -> str:
    found: str = await page.until(
        "const t = document.getElementById('status').textContent;"
        "return t.includes(arguments[0]) ? t : null;", f"the status saying {words}", words)
    return found


async def _delivery(page: Page, base: str) -> None:
    await page.login(base, MANAGER)
    await page.click("#tab-books", "the books tab")
    await page.visible("#dlv-open", "the delivery form")
    for css, text in (("#dlv-tank", "1"), ("#dlv-number", "提货单20261204"),
                      ("#dlv-truck", "新A12345"), ("#dlv-seals", "甲001 甲002"),
                      ("#dlv-volume", "10000"), ("#dlv-density", "737.5"),
                      ("#dlv-temp", "20"), ("#dlv-before-volume", "5000"),
                      ("#dlv-before-temp", "20"), ("#dlv-before-reason", "液位仪离线，量油尺实测")):
        await page.type(css, text)
    await page.shot("books-delivery-open")
    await page.click("#dlv-open")
    await page.visible("#rcv-go", "the open receipt")
    for css, text in (("#rcv-driver", "张师傅"), ("#rcv-receiver", "李站长"),
                      ("#rcv-after-volume", "14950"), ("#rcv-after-temp", "20"),
                      ("#rcv-after-reason", "液位仪离线，量油尺实测")):
        await page.type(css, text)
    await page.click("#rcv-go")
    await _status(page, "损耗超出允许范围")  # outcome_required, in Chinese
    await page.js("const s = document.getElementById('rcv-outcome'); s.value = 'driver_pays';"
                  "s.dispatchEvent(new Event('change'));")
    await page.click("#rcv-go")
    said = await _status(page, "验收完成")
    assert "损耗 50.00 升" in said and "超耗由司机赔付" in said
    await page.shot("books-delivery-received")


async def _month_and_account(page: Page, base: str) -> None:
    await page.click('#books-sections [data-section="month"]')
    await page.visible("#mc-month")
    await page.js("const m = document.getElementById('mc-month'); m.value = '2026-10';")
    await page.click("#mc-load")
    table: str = await page.until(
        "const r = document.getElementById('mc-report');"
        "return r && r.innerText.includes('9000.00') ? r.innerText : null;", "October's book")
    assert "10928.00" in table and "12.00" in table and "正常" in table
    await page.click("#mc-close")
    await page.click("#mc-confirm")
    await _status(page, "已月结")
    await page.until("return document.getElementById('mc-close') === null;", "the month closed")
    await page.shot("books-month-closed")

    await page.click('#books-sections [data-section="accounts"]')
    for css, text in (("#ac-id", "FLEET-1"), ("#ac-name", "乌鲁木齐公交公司"),
                      ("#ac-plates", "新A12345"), ("#ac-amount", "500"), ("#ac-fills", "1")):
        await page.type(css, text)
    await page.click("#ac-save")
    await page.until("return document.getElementById('books-accounts').innerText"
                     ".includes('乌鲁木齐公交公司');", "the account listed")
    await page.shot("books-accounts")


async def _self_check(page: Page, base: str, sim: Any) -> None:
    await page.login(base, ATTENDANT)
    await page.click("#tab-books", "the books tab")
    await page.visible("#ns-go", "the non-sale form")
    hidden: bool = await page.js("return document.querySelector("
                                 "'#books-sections [data-section=\"month\"]').hidden === false"
                                 " && document.querySelector("
                                 "'#books-sections [data-section=\"delivery\"]').hidden;")
    assert hidden, "an attendant sees the non-sale form and the month, not the delivery"
    await page.type("#ns-nozzle", "1")
    await page.type("#ns-witnesses", "李站长")
    await page.shot("books-self-check")
    await page.click("#ns-go")
    await _status(page, "已授权")
    sim.lift(0x50, 1)
    await wait_until(lambda: len(sim.fills()) >= 1, timeout=30, what="the 20 L can filled")
    sim.hang(0x50, 1)
