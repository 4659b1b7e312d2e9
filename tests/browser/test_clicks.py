"""Buttons that never miss: a hundred emergency stops, a hundred keypad authorizations and a
hundred payments, each a real mouse press and release at the button's place, while other pumps
fuel and sales stream in (state events arrive several times a second meanwhile). A button on
the live screen is held down until the next live message has arrived, as a finger does, so
that a control replaced by an update in between would lose its click.

Before, the pump grid was rebuilt on every `pump.state` event, and 8 of 10 stop clicks on
fuelling pumps sent nothing. The stops are counted where they land: the fillings the simulated
pumps ended because a stop arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from decimal import Decimal
from pathlib import Path

import pytest

from domain.states import FuellingPoint
from simulator.records import FillEnd
from tests.browser.conftest import (
    ATTENDANT,
    CASHIER,
    FLOW,
    MANAGER,
    SLOW,
    WAIT,
    Page,
    Rig,
    chrome,
    now_ms,
)
from tests.helpers import wait_until

pytestmark = pytest.mark.asyncio(loop_scope="session")

CLICKS = 100
SPACING_MS = 120  # the spacing between two stop clicks the console must keep up with
TARGETS = range(1, 9)  # pumps whose buttons are clicked
STREAMING = range(9, 13)  # pumps that fuel meanwhile: their state events flow
SELLING = range(11, 13)  # of those, the ones that sell again and again (the others never end)
SELLING_FLOW = Decimal("120")  # a 15-yuan sale in about a second


def stops(rig: Rig, pumps: Iterable[int]) -> int:
    """Fillings the simulated pumps ended because a stop command arrived."""
    rig.sim.tick()
    return sum(1 for n in pumps for fill in rig.sim.pump(rig.address(n)).fills
               if fill.end is FillEnd.STOP)


async def settle_unpaid(rig: Rig, pumps: Iterable[int] = range(1, 13), *,
                       last_only: bool = False) -> None:
    """Another cashier takes every payment still due on those pumps (through the API), or on
    each pump's last sale only."""
    client = await rig.client(CASHIER)
    store = rig.station.store
    if last_only:
        found = [store.last_sale_of_pump(n) for n in pumps]
        due = [s for s in found if s is not None and not s.paid]
    else:
        wanted = set(pumps)
        due = [s for s in store.sales(since_seq=0, limit=1000, unpaid=True) if s.pump in wanted]
    for sale in due:
        response = await client.post(f"/api/v1/sales/{sale.id}/payments",
                                     json={"method": "wechat", "amount": str(sale.due)})
        # 409: paid meanwhile by the pump's neighbour, which settles too.
        assert response.status_code in (201, 409), response.text


async def settle(rig: Rig, pumps: Iterable[int]) -> None:
    """Every nozzle back, nothing authorized, nothing latched: the pumps idle again. A task cut
    short may leave a pump authorized with nobody fuelling: a stop withdraws that."""
    client = await rig.client(MANAGER)
    for n in pumps:
        rig.hang_up(n)
        pump = rig.station.forecourt.pumps[n]
        if pump.auth is not None or pump.latched is not None:
            await client.post(f"/api/v1/pumps/{n}/stop")
            await wait_until(lambda pump=pump: pump.auth is None and pump.state in (
                FuellingPoint.IDLE, FuellingPoint.STOPPED, FuellingPoint.CALLING),
                timeout=WAIT, what=f"pump {n} settled")
            response = await client.post(f"/api/v1/pumps/{n}/reset")
            assert response.status_code == 200, response.text
        await rig.until_state(n, "idle")


@contextlib.asynccontextmanager
async def streaming(rig: Rig) -> AsyncIterator[None]:
    """Pumps 9-12 fuel all along: 9 and 10 slowly without end, 11 and 12 sale after sale,
    each sale paid at once by a cashier elsewhere."""
    client = await rig.client(MANAGER)

    async def fuel(n: int) -> None:
        address, nozzle = rig.address(n), 2 * n - 1
        sales = n in SELLING
        while True:
            await rig.until_state(n, "idle")
            rig.sim.set_flow(address, SELLING_FLOW if sales else SLOW)
            body = {"preset": {"amount": "15.00"}} if sales else {}
            response = await client.post(f"/api/v1/nozzles/{nozzle}/authorize", json=body)
            assert response.status_code == 202, response.text
            rig.sim.lift(address, 1)
            await rig.until_state(n, "fuelling")
            if not sales:
                await asyncio.Event().wait()  # fuels until the test ends
            await wait_until(lambda: rig.state(n) != "fuelling", timeout=WAIT,
                             what=f"pump {n} at its preset")
            rig.sim.hang(address, 1)
            await rig.until_state(n, "idle")
            await settle_unpaid(rig, [n], last_only=True)  # payments stream too

    tasks = [asyncio.create_task(fuel(n), name=f"stream-{n}") for n in STREAMING]
    try:
        await wait_until(lambda: all(rig.state(n) == "fuelling" for n in STREAMING[:2]) or
                         any(t.done() for t in tasks), timeout=WAIT, what="pumps 9, 10 fuelling")
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await settle(rig, STREAMING)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def next_ready(ready: asyncio.Queue[int], armers: list[asyncio.Task[None]]) -> int:
    """The next pump fuelling and waiting for its click; an arming that failed (a stop that
    never arrived) fails the test with its own message."""
    getter = asyncio.ensure_future(ready.get())
    await asyncio.wait([getter, *armers], return_when=asyncio.FIRST_COMPLETED)
    if getter.done():
        return getter.result()
    getter.cancel()
    failed = next(task for task in armers if task.done())
    failed.result()  # raises what stopped it
    raise AssertionError(f"{failed.get_name()} ended")


async def test_a_hundred_emergency_stops_on_fuelling_pumps_all_arrive(
        station: Rig, tmp_path: Path) -> None:
    rig = station
    client = await rig.client(MANAGER)
    driver = chrome(tmp_path / "chromium")
    page = Page(driver)
    ready: asyncio.Queue[int] = asyncio.Queue()
    clicked = {n: asyncio.Event() for n in TARGETS}
    before = stops(rig, TARGETS)

    async def arm(n: int) -> None:
        """Again and again: authorize, lift, fuel; after the click, hang up and reset."""
        address, pump = rig.address(n), rig.station.forecourt.pumps[n]
        rig.sim.set_flow(address, SLOW)
        while True:
            response = await client.post(f"/api/v1/nozzles/{2 * n - 1}/authorize", json={})
            assert response.status_code == 202, response.text
            rig.sim.lift(address, 1)
            await wait_until(lambda: rig.sim.pump(address).filling_nozzle is not None
                             and rig.state(n) == "fuelling", timeout=WAIT,
                             what=f"pump {n} fuelling")
            await ready.put(n)
            await clicked[n].wait()
            clicked[n].clear()
            # The stop ends the filling; its sale is recorded; the pump stays latched.
            await wait_until(lambda: pump.latched is not None and pump.auth is None
                             and pump.state in (FuellingPoint.IDLE, FuellingPoint.CALLING,
                                                FuellingPoint.STOPPED), timeout=WAIT,
                             what=f"pump {n} stopped and its sale recorded")
            rig.sim.hang(address, 1)
            response = await client.post(f"/api/v1/pumps/{n}/reset")
            assert response.status_code == 200, response.text
            await rig.until_state(n, "idle")

    try:
        await page.login(rig.base, ATTENDANT)
        async with streaming(rig):
            armers = [asyncio.create_task(arm(n), name=f"arm-{n}") for n in TARGETS]
            try:
                last = 0.0
                for _ in range(CLICKS):
                    n = await next_ready(ready, armers)
                    await page.until("return document.getElementById('pump-' + arguments[0])"
                                     ".dataset.state === 'fuelling';",
                                     f"pump {n} fuelling on screen", n)
                    wait = SPACING_MS - (now_ms() - last)
                    if wait > 0:
                        await asyncio.sleep(wait / 1000)  # the spacing asked for, not a wait
                    last = now_ms()
                    await page.do(lambda _, n=n: page.click_held(f"#stop-{n}"))
                    clicked[n].set()
                await wait_until(lambda: stops(rig, TARGETS) - before >= CLICKS, timeout=WAIT,
                                 what="every stop at its pump")
            finally:
                for task in armers:
                    task.cancel()
                await asyncio.gather(*armers, return_exceptions=True)
        assert stops(rig, TARGETS) - before == CLICKS
        assert await page.console_errors() == []
    finally:
        driver.quit()
        await settle_unpaid(rig)
        # The manager looked at the stops: the alarm list starts clean for the tests after.
        listed = (await client.get("/api/v1/alarms", params={"limit": 500})).json()["alarms"]
        for alarm in listed:
            if alarm["acknowledged"] is None:
                await client.post(f"/api/v1/alarms/{alarm['seq']}/ack")
        await settle(rig, TARGETS)


@pytest.mark.timeout(600)
async def test_a_hundred_keypad_authorizations_and_payments_while_sales_stream(
        station: Rig, tmp_path: Path) -> None:
    rig = station
    store = rig.station.store
    driver = chrome(tmp_path / "chromium")
    page = Page(driver)
    idle: asyncio.Queue[int] = asyncio.Queue()
    for n in TARGETS:
        rig.sim.set_flow(rig.address(n), FLOW)
        idle.put_nowait(n)
    start_seq = store.last_seq()
    sold: asyncio.Queue[str] = asyncio.Queue()

    async def fill(n: int) -> None:
        """The customer: lifts once the pump is authorized, fuels the preset, hangs up."""
        address = rig.address(n)
        await rig.until_state(n, "authorized")
        rig.sim.lift(address, 1)
        await wait_until(lambda: rig.state(n) not in ("authorized", "fuelling"),
                         timeout=WAIT, what=f"pump {n} at its preset")
        rig.sim.hang(address, 1)
        pump = rig.station.forecourt.pumps[n]
        await wait_until(lambda: pump.auth is None and rig.state(n) == "idle", timeout=WAIT,
                         what=f"pump {n} idle with its sale recorded")
        sale = store.last_sale_of_pump(n)
        assert sale is not None and sale.seq > start_seq and sale.amount == Decimal("20.00")
        await sold.put(sale.id)
        await idle.put(n)

    async def pay_one(sale_id: str) -> None:
        row = f'#unpaid [data-sale="{sale_id}"] .pay-cash'
        await page.click_live(row, f"the cash button of sale {sale_id}")
        await page.until("return document.querySelector(arguments[0]) === null;",
                         f"sale {sale_id} paid", f'#unpaid [data-sale="{sale_id}"]')

    fills: list[asyncio.Task[None]] = []
    paid = 0
    try:
        await page.login(rig.base, CASHIER)
        async with streaming(rig):
            for _ in range(CLICKS):
                n = await idle.get()
                await page.click_live(f"#auth-{n}", f"the authorize button of pump {n}")
                await page.visible("#keypad-ok")
                for key in "20":
                    await page.click(f'#keypad [data-key="{key}"]')
                await page.until("return document.getElementById('keypad-value').textContent"
                                 " === '20 元';", "20 元 on the keypad")
                await page.click("#keypad-ok")
                await page.until("return document.getElementById('keypad').hidden;",
                                 f"pump {n} authorized")
                fills.append(asyncio.create_task(fill(n), name=f"fill-{n}"))
                while not sold.empty():  # the cashier takes the payments as they come
                    await pay_one(sold.get_nowait())
                    paid += 1
            await asyncio.gather(*fills)
            while paid < CLICKS:
                await pay_one(await sold.get())
                paid += 1
        ours = [s for s in store.sales(since_seq=start_seq, limit=1000, unpaid=None)
                if s.pump in TARGETS]
        assert len(ours) == CLICKS
        assert all(s.paid and [(p.method, p.amount, p.user) for p in s.payments]
                   == [("cash", Decimal("20.00"), CASHIER)] for s in ours)
        assert {store.get_authorization(s.authorization_id).user  # type: ignore[union-attr]
                for s in ours if s.authorization_id} == {CASHIER}
        assert await page.console_errors() == []
    finally:
        for task in fills:
            task.cancel()
        await asyncio.gather(*fills, return_exceptions=True)
        driver.quit()
