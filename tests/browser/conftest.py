"""Real headless Chromium against the real daemon and the pump simulator (tests/browser).

The station runs in the test's event loop (as in tests/e2e): a DART line of simulated pumps on
a real TCP socket, SQLite in tmp_path, the API on a free port. Selenium blocks, so every
browser call runs in a worker thread (`Page.do`) while the loop serves the station.

Clicks are real: a mouse moved, pressed and released at the element's place now, through the
DevTools protocol's Input.dispatchMouseEvent (`Page.click`), never `element.click()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import pytest_asyncio
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from domain.model import Role
from edge.station import Station
from edge.store import Store
from edge.store.console import last_audit_seq
from simulator.control import Simulator, run_simulator
from simulator.gauge import demo_tank_settings, demo_tanks_toml, run_gauge_simulator
from simulator.pump import SimulatedPump
from tests.e2e.conftest import start_station
from tests.helpers import PumpSpec, StationSpec, free_port, wait_until
from tests.tls import TlsMaterial, add_tls, make_test_tls

T = TypeVar("T")

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
# Generous: a 2-core machine runs the browser, the daemon and the simulator at once.
WAIT = 30.0
FLOW = Decimal("600")  # litres a minute: a 20-yuan preset fills in a fraction of a second
SLOW = Decimal("20")  # the pumps that keep fuelling while the tests click

# Chinese user names: everything on screen is Chinese, the names too.
USERS = {"加油员小王": (Role.ATTENDANT, "1111"), "收银员小李": (Role.CASHIER, "2222"),
         "站长老张": (Role.MANAGER, "3333"), "财务小赵": (Role.FINANCE, "4444")}
ATTENDANT, CASHIER, MANAGER, FINANCE = USERS

PRINTER = '[printer]\nkind = "file"\naddress = "receipts.bin"\nprint_at = "{print_at}"\n'


def browser_available() -> bool:
    return os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if browser_available() or os.environ.get("CI"):
        return
    skip = pytest.mark.skip(reason="Debian's chromium and chromium-driver are not installed "
                                   "(scripts/dev setup installs them); in CI the tests run and "
                                   "fail instead of skipping")
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(skip)


def shots_dir(tmp_path: Path) -> Path:
    if os.environ.get("FORECOURT_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        return DOCS_IMAGES
    return tmp_path / "shots"


# ---------------------------------------------------------------------- the station


def pump_specs(count: int) -> list[PumpSpec]:
    """`count` pumps of two nozzles (92 and 95; every third pump 92 and diesel 0)."""
    specs = []
    for i in range(count):
        second = "0" if i % 3 == 2 else "95"
        specs.append(PumpSpec(i + 1, 0x50 + i, [(2 * i + 1, 1, "92"), (2 * i + 2, 2, second)]))
    return specs


def sim_pumps(count: int) -> list[SimulatedPump]:
    return [SimulatedPump(0x50 + i, {1: 92, 2: 1 if i % 3 == 2 else 95}, flow_lpm=FLOW,
                          ramp_seconds=Decimal("0.1")) for i in range(count)]


@dataclass
class Rig:
    """A running station and its simulated pumps."""

    station: Station
    sim: Simulator
    config: Path
    data: Path
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.station.port}"

    async def client(self, user: str = MANAGER) -> httpx.AsyncClient:
        if user not in self.clients:
            client = https_client(self.base)
            response = await client.post("/api/v1/session",
                                         json={"user": user, "pin": USERS[user][1]})
            assert response.status_code == 200, response.text
            client.headers["Authorization"] = f"Bearer {response.json()['token']}"
            self.clients[user] = client
        return self.clients[user]

    def address(self, pump: int) -> int:
        return 0x50 + pump - 1

    def hang_up(self, pump: int) -> None:
        """The nozzle back in its holster, if it is out."""
        simulated = self.sim.pump(self.address(pump))
        if simulated.nozzle_out is not None:
            self.sim.hang(self.address(pump), simulated.nozzle_out)

    def state(self, pump: int) -> str:
        return str(self.station.forecourt.pumps[pump].view()["state"])

    async def until_state(self, pump: int, *states: str) -> None:
        await wait_until(lambda: self.state(pump) in states, timeout=WAIT,
                         what=f"pump {pump} in {states}")

    async def close(self) -> None:
        for client in self.clients.values():
            await client.aclose()
        self.clients.clear()


def audit_tail(store: Store, count: int = 500) -> list[Any]:
    """The newest `count` audit entries, oldest first."""
    last = store.read_with(last_audit_seq)
    return store.audit_entries(max(0, last - count), count)


@functools.cache
def tls() -> TlsMaterial:
    """The browser tests' station certificate (127.0.0.1) and the test CA that signed it: the
    console is served over HTTPS as on a station, and Chromium trusts that CA through its NSS
    database as a cashier's PC would (tests/tls.py)."""
    return make_test_tls(Path(tempfile.mkdtemp(prefix="forecourt-browser-tls-")))


def https_client(base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, timeout=20, verify=tls().ssl_context())


def over_https(config_text: str) -> str:
    return add_tls(config_text, tls())


def write_station(data: Path, sim: Simulator, pumps: int, *, print_at: str = "fill_end",
                  bands: str = "", tanks: str = "") -> Path:
    spec = StationSpec(port_url=sim.url, db=data / "station.db", api_port=free_port(),
                       pumps=pump_specs(pumps), reply_timeout_ms=200)
    text = over_https(spec.toml().replace('price = "8.02"\n', 'price = "8.02"\n' + bands))
    config = data / "station.toml"
    config.write_text(text + "\n" + PRINTER.format(print_at=print_at) + "\n" + tanks, "utf-8")
    if not (data / "station.db").exists():
        with Store.open(spec.db) as store:
            for name, (role, pin) in USERS.items():
                store.upsert_user(name, role=role, pin=pin)
    return config


@asynccontextmanager
async def running(config: Path) -> AsyncIterator[Station]:
    station, task = await start_station(config)
    try:
        yield station
    finally:
        station.request_stop()
        await asyncio.wait_for(task, 30)


@asynccontextmanager
async def rig(data: Path, pumps: int = 12, *, sim_pumps_: Sequence[SimulatedPump] | None = None,
              print_at: str = "fill_end", bands: str = "",
              tanks: bool = False) -> AsyncIterator[Rig]:
    """A station of `pumps` pumps; with `tanks`, three tanks on a simulated gauge console
    (tank 3 low on stock: its alert is raised at the first reading)."""
    data.mkdir(parents=True, exist_ok=True)
    async with contextlib.AsyncExitStack() as stack:
        sim = await stack.enter_async_context(run_simulator(list(sim_pumps_ or sim_pumps(pumps))))
        tank_config = ""
        if tanks:
            gauges = await stack.enter_async_context(run_gauge_simulator(
                demo_tank_settings(), volumes={1: Decimal("21000"), 2: Decimal("9000"),
                                               3: Decimal("2400")}))
            tank_config = demo_tanks_toml(gauges.url("console"))
        config = write_station(data, sim, pumps, print_at=print_at, bands=bands,
                               tanks=tank_config)
        station = await stack.enter_async_context(running(config))
        await wait_until(lambda: all(p.state.value == "idle"
                                     for p in station.forecourt.pumps.values()),
                         timeout=60, what="every pump idle")
        found = Rig(station, sim, config, data)
        try:
            yield found
        finally:
            await found.close()


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def station(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    """One station of twelve pumps for the browser tests that can share it; stopped when the
    browser tests end, not at the end of the whole run (its pumps would poll through every
    later test)."""
    async with rig(tmp_path_factory.mktemp("station"), tanks=True) as found:
        yield found


# ---------------------------------------------------------------------- the browser


def chrome(profile: Path, size: tuple[int, int] = (1024, 600),
           zone: str | None = None) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--lang=zh-CN", "--hide-scrollbars=false",
                 f"--window-size={size[0]},{size[1]}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    # The page's own console: no script error and no CSP refusal may happen.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Chromium takes its time zone from TZ: a PC set to Urumqi's zone is a browser with TZ set;
    # and trusts the station's CA from the NSS database in its HOME.
    env = tls().chromium_env()
    if zone:
        env["TZ"] = zone
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER, env=env), options=options)
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False})
    return browser


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    driver = chrome(tmp_path / "chromium")
    try:
        yield driver
    finally:
        driver.quit()


# Words a station person may read in Latin letters: none but these brand words.
LATIN_ALLOWED = {"APP"}


class Page:
    """The console in a browser, driven from a worker thread."""

    def __init__(self, driver: WebDriver, shots: Path | None = None) -> None:
        self.driver = driver
        self.shots = shots
        self.saved: list[Path] = []

    async def do(self, action: Callable[[WebDriver], T]) -> T:
        return await asyncio.to_thread(action, self.driver)

    async def js(self, script: str, *args: Any) -> Any:
        return await self.do(lambda d: d.execute_script(script, *args))

    async def until(self, script: str, what: str, *args: Any, timeout: float = WAIT) -> Any:
        """Waits until the script returns something truthy; returns it."""
        def wait(driver: WebDriver) -> Any:
            return WebDriverWait(driver, timeout, poll_frequency=0.05).until(
                lambda d: d.execute_script(script, *args), what)
        return await self.do(wait)

    async def visible(self, css: str, what: str = "") -> None:
        await self.until("const e = document.querySelector(arguments[0]);"
                         "return e !== null && e.offsetParent !== null && !e.disabled;",
                         what or f"{css} visible and enabled", css)

    def press(self, x: float, y: float) -> None:
        for kind in ("mouseMoved", "mousePressed"):
            self.driver.execute_cdp_cmd("Input.dispatchMouseEvent", {
                "type": kind, "x": x, "y": y, "button": "left" if kind != "mouseMoved" else "none",
                "buttons": 1 if kind == "mousePressed" else 0, "clickCount": 1})

    def release(self, x: float, y: float) -> None:
        self.driver.execute_cdp_cmd("Input.dispatchMouseEvent", {
            "type": "mouseReleased", "x": x, "y": y, "button": "left", "buttons": 0,
            "clickCount": 1})

    def place(self, css: str) -> tuple[float, float]:
        rect = self.driver.execute_script(
            "const e = document.querySelector(arguments[0]);"
            "if (!e) return null; e.scrollIntoView({block: 'nearest'});"
            "const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2];",
            css)
        assert rect is not None, f"{css} is not on the page"
        return float(rect[0]), float(rect[1])

    def click_held(self, css: str) -> None:
        """A finger's click on a live screen: pressed, held until the page has received the
        next live message (a pump's state, a sale), released (worker thread). A control that
        a live update replaces in between never gets its click."""
        x, y = self.place(css)
        seen = self.driver.execute_script("return window.FC.received || 0;")
        self.press(x, y)
        try:
            WebDriverWait(self.driver, WAIT, poll_frequency=0.02).until(
                lambda d: d.execute_script("return (window.FC.received || 0) > arguments[0];",
                                           seen), "a live message while the button is held")
        finally:
            self.release(x, y)

    async def click_live(self, css: str, what: str = "") -> None:
        await self.visible(css, what)
        await self.do(lambda _: self.click_held(css))

    def click_now(self, css: str) -> None:
        """A real click at the element's place as it is now (worker thread)."""
        x, y = self.place(css)
        self.press(x, y)
        self.release(x, y)

    async def click(self, css: str, what: str = "") -> None:
        await self.visible(css, what)
        await self.do(lambda _: self.click_now(css))

    async def type(self, css: str, text: str) -> None:
        await self.click(css)
        await self.js("const e = document.querySelector(arguments[0]); e.value = '';"
                      "e.dispatchEvent(new Event('input'));", css)
        await self.do(lambda d: d.execute_cdp_cmd("Input.insertText", {"text": text}))

    async def text(self, css: str) -> str:
        await self.until("const e = document.querySelector(arguments[0]);"
                         "return e !== null && e.offsetParent !== null;", f"{css} shown", css)
        found: str = await self.js("return document.querySelector(arguments[0]).innerText;", css)
        return found

    async def login(self, base: str, user: str) -> None:
        await self.do(lambda d: d.get(base + "/"))
        await self.type("#user", user)
        await self.type("#pin", USERS[user][1])
        await self.click("#go")
        await self.until("return !document.getElementById('app').hidden"
                         " && document.querySelectorAll('#strip .tile').length > 0"
                         " && !document.body.classList.contains('offline');", f"{user} logged in")

    async def logout(self) -> None:
        await self.click("#logout")
        await self.until("return !document.getElementById('login').hidden;", "the login form")

    async def tab(self, name: str) -> None:
        """Shows the tab and waits for the load its showing starts (not an earlier one)."""
        before = await self.js("return document.getElementById('pane-' + arguments[0])"
                               ".dataset.loaded || null;", name)
        await self.click(f'#tabs [data-tab="{name}"]')
        await self.until("const p = document.getElementById('pane-' + arguments[0]);"
                         "return !p.hidden && p.dataset.loaded !== undefined"
                         " && p.dataset.loaded !== arguments[1];",
                         f"the {name} tab loaded", name, before)

    async def shot(self, name: str) -> None:
        if self.shots is None:
            return
        self.shots.mkdir(parents=True, exist_ok=True)
        path = self.shots / f"console-{name}.png"
        assert await self.do(lambda d: d.save_screenshot(str(path))), path
        self.saved.append(path)

    async def latin_words(self) -> list[str]:
        """Latin-letter words in the text a person sees now, outside LATIN_ALLOWED."""
        text: str = await self.js("return document.body.innerText;")
        titles: list[str] = await self.js(
            "return [...document.querySelectorAll('input, textarea')]"
            ".filter((e) => e.offsetParent !== null).map((e) => e.placeholder || '');")
        words = re.findall(r"[A-Za-z]+", text + " " + " ".join(titles))
        return sorted({w for w in words if w not in LATIN_ALLOWED})

    async def console_errors(self) -> list[str]:
        """Script errors and CSP refusals the page logged. A refusal the API answered (a 4xx
        the console shows in Chinese) is logged by Chromium too, and is not one."""
        logs = await self.do(lambda d: d.get_log("browser"))
        return [e["message"] for e in logs if e.get("level") == "SEVERE"
                and not re.search(r"the server responded with a status of 4\d\d", e["message"])]


def now_ms() -> float:
    return time.monotonic() * 1000


class Proxy:
    """A TCP relay between the browser and the station: cut it, and the station is unreachable
    for the console without the daemon stopping (a cable pulled, a switch down)."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self._writers |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                sink.close()

        for task in (asyncio.create_task(pipe(reader, up_writer), name="proxy-up"),
                     asyncio.create_task(pipe(up_reader, writer), name="proxy-down")):
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def cut(self) -> None:
        """Nothing gets through any more: the listener closed, every connection dropped."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        if server is not None:
            await server.wait_closed()
