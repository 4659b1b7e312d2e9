"""What the console does so that a slip does not cost a station: the price band, a schedule
cancelled, times in the station's zone whatever the PC's, the shift's pre-close check, a
receipt copy marked as one after a restart, and a console that greys out and comes back.

Each of these failed before: 99 元/升 went live on one click; a schedule could not be
cancelled; 08:00 typed on a PC in Urumqi's zone became 10:00 Beijing time; a shift closed with
29 unpaid sales without a word; a reprint after a restart looked original; the tiles froze at
加油中 with live buttons when the server died.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from domain.model import TotalsReading
from edge.store.console import receipt_counts
from simulator.control import run_simulator
from tests.browser.conftest import (
    CASHIER,
    FINANCE,
    MANAGER,
    WAIT,
    Page,
    Proxy,
    Rig,
    audit_tail,
    chrome,
    https_client,
    running,
    shots_dir,
    sim_pumps,
    write_station,
)
from tests.helpers import wait_until

pytestmark = pytest.mark.asyncio(loop_scope="session")

BEIJING = ZoneInfo("Asia/Shanghai")


def tomorrow() -> str:
    return (datetime.now(BEIJING).date() + timedelta(days=1)).isoformat()


async def test_a_price_beyond_its_band_needs_a_second_confirmation_and_a_reason(
        station: Rig, tmp_path: Path) -> None:
    rig_ = station
    store = rig_.station.store
    client = await rig_.client(MANAGER)
    old = rig_.station.forecourt.prices.prices["92"]
    # The API refuses it too: the console is not the protection.
    refused = await client.post("/api/v1/prices", json={"prices": {"92": "99.00"},
                                                        "emergency": True})
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "price_outside_band"
    driver = chrome(tmp_path / "chromium")
    page = Page(driver, shots_dir(tmp_path))
    try:
        await page.login(rig_.base, MANAGER)
        await page.tab("prices")
        await page.js("document.getElementById('price-grade').value = '92';")
        await page.type("#price-value", "99")
        await page.click("#price-preview")
        change = await page.text("#price-change")
        assert f"{old} → 99 元/升" in change and "+" in change, change
        assert "超出 ±15%" in await page.text("#price-warn")
        schedules = len(store.price_schedules(50))
        await page.click("#price-ok")  # the first confirmation: nothing is sent yet
        await page.visible("#price-ok2", "the second confirmation")
        await page.click("#price-ok2")  # without a reason
        assert "原因" in await page.text("#dialog-err")
        assert len(store.price_schedules(50)) == schedules
        assert rig_.station.forecourt.prices.prices["92"] == old
        await page.type("#price-reason", "国家发改委调价通知")
        await page.shot("prices-band")
        await page.click("#price-ok2")
        await wait_until(lambda: rig_.station.forecourt.prices.prices["92"] == Decimal("99"),
                         timeout=WAIT, what="99 in force after the second confirmation")
        # An audit entry is written once its answer has left: waited for.
        done = await wait_until(lambda: next(
            (e for e in audit_tail(store) if e.action == "prices.schedule"
             and e.outcome == "ok"
             and e.details.get("change", {}).get("reason") == "国家发改委调价通知"), None),
            timeout=WAIT, what="the change in the audit log")
        entries = audit_tail(store)
        change_audited = done.details["change"]
        assert change_audited["reason"] == "国家发改委调价通知"
        assert change_audited["changes"][0]["old"] == str(old)
        assert change_audited["changes"][0]["beyond_band"] is True
        assert any(e.action == "prices.schedule" and e.outcome == "price_outside_band"
                   for e in entries)
        assert await page.console_errors() == []
    finally:
        driver.quit()
        back = await client.post("/api/v1/prices", json={
            "prices": {"92": str(old)}, "emergency": True, "confirm_band": True,
            "reason": "恢复"})
        assert back.status_code == 201, back.text
        await wait_until(lambda: rig_.station.forecourt.prices.prices["92"] == old,
                         timeout=WAIT, what="the price back")


async def schedule_in_console(page: Page, grade: str, price: str, day: str, at: str) -> None:
    await page.tab("prices")
    await page.js("document.getElementById('price-grade').value = arguments[0];", grade)
    await page.type("#price-value", price)
    await page.click("#price-later")
    await page.type("#price-date", day)
    await page.type("#price-time", at)
    await page.click("#price-preview")
    await page.click("#price-ok")
    await page.until("return document.getElementById('dialog').hidden;", "the schedule sent")


async def test_a_pending_schedule_is_cancelled_and_never_applied(
        station: Rig, tmp_path: Path) -> None:
    rig_ = station
    store = rig_.station.store
    driver = chrome(tmp_path / "chromium")
    page = Page(driver)
    try:
        await page.login(rig_.base, MANAGER)
        await schedule_in_console(page, "95", "8.12", tomorrow(), "09:00")
        pending = [s for s in store.price_schedules(50) if s.applied_at is None
                   and s.prices == {"95": Decimal("8.12")}]
        assert len(pending) == 1
        first = pending[0]
        # Changed: another price, an hour later; the first one is cancelled with it.
        item = f'#schedules [data-schedule="{first.price_set_id}"]'
        assert "待生效" in await page.text(item)
        await page.click(f"{item} .edit")
        await page.type("#edit-price", "8.14")
        await page.type("#edit-time", "10:00")
        await page.click("#edit-ok")
        assert "8.14 元/升" in await page.text("#price-change")
        await page.click("#price-ok")
        await page.until("return document.querySelector(arguments[0]).innerText"
                         ".includes('已取消');", "the first schedule replaced", item)
        changed = [s for s in store.price_schedules(50) if s.applied_at is None
                   and s.prices == {"95": Decimal("8.14")}]
        assert len(changed) == 1
        schedule = changed[0]
        assert schedule.effective_at == first.effective_at + timedelta(hours=1)
        item = f'#schedules [data-schedule="{schedule.price_set_id}"]'
        await page.visible(f"{item} .cancel", "the changed schedule")
        await page.click(f"{item} .cancel")
        await page.click("#cancel-ok")
        await page.until("return document.querySelector(arguments[0]).innerText"
                         ".includes('已取消');", "the schedule cancelled", item)
        later = schedule.effective_at + timedelta(hours=1)
        assert schedule.price_set_id not in [s.price_set_id
                                             for s in store.due_price_schedules(later)]
        assert store.apply_price_schedule(schedule.price_set_id).applied_at is None
        await wait_until(lambda: any(
            e.action == "prices.cancel" and e.outcome == "ok"
            and e.target == schedule.price_set_id for e in audit_tail(store)),
            timeout=WAIT, what="the cancellation in the audit log")
        # One in force cannot be cancelled.
        client = await rig_.client(MANAGER)
        now = rig_.station.forecourt.prices.prices["95"]
        made = await client.post("/api/v1/prices", json={"prices": {"95": str(now)},
                                                         "emergency": True})
        assert made.status_code == 201, made.text
        applied = made.json()["price_set_id"]
        await wait_until(lambda: any(s.price_set_id == applied and s.applied_at is not None
                                     for s in store.price_schedules(50)),
                         timeout=WAIT, what="the change in force")
        response = await client.delete(f"/api/v1/prices/schedules/{applied}")
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "schedule_applied"
    finally:
        driver.quit()


async def test_a_browser_in_urumqi_schedules_in_station_time(
        station: Rig, tmp_path: Path) -> None:
    rig_ = station
    store = rig_.station.store
    driver = chrome(tmp_path / "chromium", zone="Asia/Urumqi")
    page = Page(driver)
    try:
        await page.login(rig_.base, MANAGER)
        zone, offset = await page.js("return [Intl.DateTimeFormat().resolvedOptions().timeZone,"
                                     " new Date().getTimezoneOffset()];")
        assert (zone, offset) == ("Asia/Urumqi", -360)  # the PC is two hours behind Beijing
        await page.tab("prices")
        assert await page.text("#price-zone") == "北京时间"
        await schedule_in_console(page, "0", "7.20", tomorrow(), "08:00")
        found = [s for s in store.price_schedules(50) if s.applied_at is None
                 and s.prices == {"0": Decimal("7.20")}]
        assert len(found) == 1
        wanted = datetime.combine(datetime.fromisoformat(tomorrow()).date(), time(8), BEIJING)
        assert found[0].effective_at == wanted, found[0].effective_at
        item = f'#schedules [data-schedule="{found[0].price_set_id}"]'
        assert "08:00" in await page.text(item)
        await page.click(f"{item} .cancel")
        await page.click("#cancel-ok")
        await page.until("return document.querySelector(arguments[0]).innerText"
                         ".includes('已取消');", "cancelled again", item)
    finally:
        driver.quit()


async def test_shift_close_checks_unpaid_sales_and_open_authorizations_first(
        station: Rig, tmp_path: Path) -> None:
    rig_ = station
    store = rig_.station.store
    client = await rig_.client(MANAGER)
    # An unpaid sale on pump 3, and pump 2 authorized with nobody fuelling.
    response = await client.post("/api/v1/nozzles/5/authorize",
                                 json={"preset": {"amount": "8.00"}})
    assert response.status_code == 202, response.text
    rig_.sim.lift(rig_.address(3), 1)
    await wait_until(lambda: rig_.state(3) not in ("authorized", "fuelling"), timeout=WAIT,
                     what="pump 3 at its preset")
    rig_.hang_up(3)
    await rig_.until_state(3, "idle")
    sale = store.last_sale_of_pump(3)
    assert sale is not None and not sale.paid
    response = await client.post("/api/v1/nozzles/3/authorize", json={})
    assert response.status_code == 202, response.text
    driver = chrome(tmp_path / "chromium")
    page = Page(driver)
    try:
        await page.login(rig_.base, MANAGER)
        await page.tab("shift")
        before = store.current_shift()
        assert before is not None
        await page.click("#shift-close")
        unpaid = await page.text("#check-unpaid")
        assert "未收款" in unpaid
        listed = await page.text("#dialog-body")
        assert str(sale.number) in listed and "2号加油机" in listed, listed
        await page.click("#close-ok")  # no reason given
        assert "原因" in await page.text("#dialog-err")
        current = store.current_shift()
        assert current is not None and current.id == before.id
        await page.type("#cash-counted", "50.00")
        await page.type("#close-reason", "白班司机明早付款")
        await page.click("#close-ok")
        asked = await page.until(
            "return document.querySelector('#shift-report #over-short') !== null ? 'closed'"
            " : (document.getElementById('repeat-ok') || {}).offsetParent ? 'asked' : null;",
            "the report, or the question within a minute")
        if asked == "asked":  # another test closed one less than a minute ago
            await page.click("#repeat-ok")
        await page.until("return document.querySelector('#shift-report #over-short') !== null;",
                         "the closed shift's report")
        closed = store.get_shift(before.id)
        assert closed is not None and closed.report is not None
        assert closed.report["close_reason"] == "白班司机明早付款"
        assert closed.report["open_at_close"]["unpaid"] >= 1
        assert closed.report["open_at_close"]["authorizations"]
        assert closed.report["cash"]["counted"] == "50.00"
        shown = await page.text("#shift-report")
        assert "白班司机明早付款" in shown and "长短款" in shown, shown

        # Again at once: the console asks first; saying no closes nothing.
        following = store.current_shift()
        assert following is not None
        await page.click("#shift-close")
        await page.visible("#close-ok", "the pre-close check")
        if await page.js("return document.getElementById('close-reason').isConnected;"):
            await page.type("#close-reason", "再试一次")
        await page.click("#close-ok")
        await page.visible("#repeat-ok", "the question within a minute")
        assert "不到一分钟" in await page.text("#repeat-text")
        await page.click("#dialog-actions button:first-child")
        current = store.current_shift()
        assert current is not None and current.id == following.id
    finally:
        driver.quit()
        await client.post("/api/v1/pumps/2/stop")
        await client.post("/api/v1/pumps/2/reset")
        cashier = await rig_.client(CASHIER)
        await cashier.post(f"/api/v1/sales/{sale.id}/payments",
                           json={"method": "cash", "amount": str(sale.amount)})


async def test_the_console_greys_out_and_comes_back_by_itself(
        station: Rig, tmp_path: Path) -> None:
    rig_ = station
    assert rig_.station.port is not None
    proxy = Proxy(rig_.station.port)
    await proxy.start()
    driver = chrome(tmp_path / "chromium")
    page = Page(driver, shots_dir(tmp_path))
    try:
        await page.login(f"https://127.0.0.1:{proxy.port}", CASHIER)
        await proxy.cut()
        await page.until("return document.body.classList.contains('offline')"
                         " && document.getElementById('strip-box').disabled"
                         " && document.getElementById('stop-1').matches(':disabled')"
                         " && document.getElementById('auth-1').matches(':disabled')"
                         " && !document.getElementById('link').hidden;", "the console greyed")
        assert "连接中断" in await page.text("#link")
        await page.shot("offline")
        await proxy.start()  # the same port: the network is back
        await page.until("return !document.body.classList.contains('offline')"
                         " && !document.getElementById('stop-1').matches(':disabled');",
                         "the console back by itself")
        # Live again: a pump lifted now shows.
        rig_.sim.lift(rig_.address(12), 1)
        await page.until("return document.getElementById('pump-12').dataset.state"
                         " === 'calling';", "pump 12 calling on screen")
        rig_.hang_up(12)
        assert await page.js("return document.getElementById('app').hidden;") is False
    finally:
        driver.quit()
        await proxy.cut()


async def test_a_receipt_printed_before_a_restart_is_a_copy_after_it(tmp_path: Path) -> None:
    data = tmp_path / "station"
    data.mkdir()
    spool = data / "receipts.bin"
    driver = chrome(tmp_path / "chromium")
    page = Page(driver)
    try:
        async with run_simulator(sim_pumps(2)) as sim:
            config = write_station(data, sim, 2, print_at="payment")
            async with running(config) as station:
                first = Rig(station, sim, config, data)
                await first.until_state(1, "idle")
                client = await first.client(CASHIER)
                response = await client.post("/api/v1/nozzles/1/authorize",
                                             json={"preset": {"amount": "12.00"}})
                assert response.status_code == 202, response.text
                sim.lift(first.address(1), 1)
                await wait_until(lambda: first.state(1) not in ("authorized", "fuelling"),
                                 timeout=WAIT, what="the preset reached")
                first.hang_up(1)
                await first.until_state(1, "idle")
                sale = station.store.last_sale_of_pump(1)
                assert sale is not None
                assert not spool.exists() or spool.stat().st_size == 0  # printed at payment
                await page.login(first.base, CASHIER)
                await page.click(f'#unpaid [data-sale="{sale.id}"] .pay-cash')
                await wait_until(lambda: spool.exists() and "已付清".encode("gb18030")
                                 in spool.read_bytes(), timeout=WAIT, what="the paid receipt")
                assert "未付".encode("gb18030") not in spool.read_bytes()
                # The station-wide stop in the header: every pump latched, reset one by one.
                await page.click("#stop-all")
                await page.until("return [...document.querySelectorAll('#strip .t-state')]"
                                 ".every((s) => s.textContent === '已急停');", "every pump latched")
                assert all(p.latched is not None for p in station.forecourt.pumps.values())
                for n in (1, 2):
                    await page.click(f"#reset-{n}")
                    await first.until_state(n, "idle")
                await first.close()
                # The daemon stops: the console greys out at once.
                station.request_stop()
                await page.until("return document.body.classList.contains('offline')"
                                 " && document.getElementById('stop-all').disabled;",
                                 "the console greyed")
            printed = spool.stat().st_size
            async with running(config) as station:
                second = Rig(station, sim, config, data)
                # A restart ends every session: the console says so and asks for the PIN.
                await page.until("return !document.getElementById('login').hidden;",
                                 "the login form")
                assert "登录已过期" in await page.text("#loginerr")
                await second.until_state(1, "idle")
                await page.login(second.base, CASHIER)
                await page.click(f'#recent [data-sale="{sale.id}"] .receipt')
                assert await page.text("#receipt-print") == "补打小票"
                assert "已打印 1 次" in await page.text("#receipt-note")
                await page.click("#receipt-print")
                await wait_until(lambda: spool.stat().st_size > printed, timeout=WAIT,
                                 what="the copy printed")
                assert "补打".encode("gb18030") in spool.read_bytes()[printed:]
                assert station.store.read_with(receipt_counts, [sale.id]) == {sale.id: 2}
                await second.close()
    finally:
        driver.quit()


async def test_what_waits_for_a_manager_has_its_screen(station: Rig, tmp_path: Path) -> None:
    """A pump out of service released, a recovery settled, a locked-out user unlocked, the
    printer asked to retry: each from the console, each audited."""
    rig_ = station
    store = rig_.station.store
    pump = rig_.station.forecourt.pumps[7]
    await pump.take_out_of_service("impossible_figures", problem="beyond_max_flow")
    now = rig_.station.clock()
    review = store.open_review(
        kind="one_witness", grade="92", logical=1, authorization_id=None, order_id=None,
        before=TotalsReading(8, 15, Decimal("5000.00"), Decimal("37500.00"), now, "review"),
        after=TotalsReading(8, 15, Decimal("5002.00"), Decimal("37515.00"), now, "review"),
        filling=None)
    async with https_client(rig_.base) as stranger:
        for _ in range(6):  # wrong PINs for the finance user: locked out
            await stranger.post("/api/v1/session", json={"user": FINANCE, "pin": "0000"})
    driver = chrome(tmp_path / "chromium")
    page = Page(driver, shots_dir(tmp_path))
    try:
        await page.login(rig_.base, MANAGER)
        await page.tab("alarms")
        await page.visible("#service .release", "pump 7 out of service")
        await page.visible(f'#reviews [data-review="{review.id}"] .dismiss', "the review")
        await page.visible(f'#locked [data-user="{FINANCE}"] .unlock', "the locked user")
        await page.shot("waiting")
        assert await page.latin_words() == []
        await page.click("#service .release")
        await page.type("#reason", "计量已校验")
        await page.click("#reason-ok")
        await wait_until(lambda: pump.out_of_service is None, timeout=WAIT,
                         what="pump 7 back in service")
        # The station acts before the browser has its answer: the dialog closes after.
        await page.until("return document.getElementById('dialog').hidden;", "the release sent")
        await page.click(f'#reviews [data-review="{review.id}"] .dismiss')
        await page.type("#reason", "校表放油，已回罐")
        await page.click("#reason-ok")
        await wait_until(lambda: getattr(store.get_review(review.id), "status", None)
                         == "dismissed", timeout=WAIT, what="the review settled")
        await page.until("return document.getElementById('dialog').hidden;", "the review sent")
        await page.click(f'#locked [data-user="{FINANCE}"] .unlock')
        await page.until("return document.getElementById('locked-box').hidden;",
                         "no user locked out")
        page2 = Page(chrome(tmp_path / "chromium2"))
        try:
            await page2.login(rig_.base, FINANCE)  # the right PIN works again at once
        finally:
            page2.driver.quit()
        await page.click("#printer-chip")
        await page.click("#printer-retry")
        await page.until("return document.getElementById('dialog').hidden;", "the retry sent")
        await wait_until(lambda: {e.action for e in audit_tail(store)} >= {
            "pump.release", "review.dismiss", "user.unlock", "printer.retry"},
            timeout=WAIT, what="every one audited")
    finally:
        driver.quit()
