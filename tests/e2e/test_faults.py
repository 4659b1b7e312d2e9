"""Faults: a silent pump, a corrupted line, a store that cannot write, a bad config."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import httpx

from drivers.dart.bus import BusStats
from simulator.control import Simulator
from tests.e2e.conftest import (
    RunningStation,
    dispensed,
    pump_view,
    sales,
    wait_pump_state,
    wait_sales,
)
from tests.helpers import wait_until

PUMP1 = 0x50


async def wait_quiet_line(stats: BusStats, *, quiet: float, timeout: float) -> None:
    """Until the line has gone `quiet` seconds without noise (fails after `timeout`)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    seen, since = stats.noise, loop.time()
    while loop.time() - since < quiet:
        assert loop.time() < give_up, f"the line never went {quiet} s without noise"
        await asyncio.sleep(0.05)
        if stats.noise != seen:
            seen, since = stats.noise, loop.time()


async def test_a_silent_pump_goes_offline_and_comes_back(
        sim: Simulator, running: RunningStation) -> None:
    client = await running.client()
    await wait_pump_state(client, 1, "idle")
    sim.set_fault(PUMP1, silent=True)
    view = await wait_pump_state(client, 1, "offline", timeout=5)
    assert view["online"] is False
    assert {n["state"] for n in view["nozzles"]} == {"offline"}
    refused = await client.post("/api/v1/nozzles/1/authorize", json={})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "pump_offline"
    assert (await pump_view(client, 2))["online"] is True  # the other pump is unaffected
    sim.clear_faults(PUMP1)
    view = await wait_pump_state(client, 1, "idle", timeout=10)
    assert view["online"] is True
    await client.aclose()


async def test_a_corrupted_line_makes_no_sale_and_no_crash(
        sim: Simulator, running: RunningStation) -> None:
    client = await running.client()
    await wait_pump_state(client, 1, "idle")
    sim.set_fault(None, corrupt=0.5)
    line = running.station.forecourt.lines["line1"]
    await wait_until(lambda: line.stats.bus.crc_errors + line.stats.bus.noise > 5, timeout=10,
                     what="corrupted frames seen")
    await asyncio.sleep(1.0)  # let the controller live with the noise for a while
    assert await sales(client) == []
    sim.clear_faults()
    await wait_pump_state(client, 1, "idle", timeout=15)
    # Wait for a clean second on the line: damaged frames still in flight when the fault was
    # cleared (or a reply made late by a loaded machine) can cost the first command a retry round.
    await wait_quiet_line(line.stats.bus, quiet=1.0, timeout=20)
    # The station still works: a sale after the noise is recorded exactly.
    r = await client.post("/api/v1/nozzles/1/authorize", json={"preset": {"volume": "3.00"}})
    assert r.status_code == 202, r.text
    sim.lift(PUMP1, 1)
    await wait_until(lambda: len(sim.fills()) == 1, timeout=15, what="the fill")
    sim.hang(PUMP1, 1)
    (sale,) = await wait_sales(client, 1)
    assert Decimal(sale["volume"]) == sim.fills()[0].volume_decimal == Decimal("3.00")
    await client.aclose()


async def test_answers_cut_short_cost_retries_not_sales(
        sim: Simulator, running: RunningStation) -> None:
    client = await running.client()
    await wait_pump_state(client, 1, "idle")
    line = running.station.forecourt.lines["line1"]
    timeouts = line.stats.bus.timeouts
    sim.set_fault(None, drop=0.1)
    await wait_until(lambda: line.stats.bus.timeouts > timeouts + 5, timeout=10,
                     what="answers lost on the line")
    # A fill while the line loses bytes: a lost answer is asked again, never guessed. The
    # attendant may need a few tries (the pump drops offline after three lost answers in a row,
    # and an unconfirmed authorization is refused), as on a real bad line.
    async def authorized() -> bool:
        r = await client.post("/api/v1/nozzles/1/authorize", json={"preset": {"volume": "2.00"}})
        assert r.status_code in (202, 409, 504), r.text
        return r.status_code == 202
    await wait_until(authorized, timeout=60, interval=0.5, what="an authorization")
    sim.lift(PUMP1, 1)
    await wait_until(lambda: len(sim.fills()) == 1, timeout=20, what="the fill")
    sim.hang(PUMP1, 1)
    sim.clear_faults()
    (sale,) = await wait_sales(client, 1, timeout=20)
    assert Decimal(sale["volume"]) == sim.fills()[0].volume_decimal == Decimal("2.00")
    await asyncio.sleep(0.5)
    assert len(await sales(client)) == 1
    await client.aclose()


async def test_storage_refusing_writes_refuses_authorizations_until_it_recovers(
        sim: Simulator, running: RunningStation, tmp_path: Path) -> None:
    client = await running.client()
    await wait_pump_state(client, 1, "idle")
    blocker = sqlite3.connect(tmp_path / "station.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holds the database
    try:
        refused = await client.post("/api/v1/nozzles/1/authorize", json={})
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "storage_unavailable"
        health = (await client.get("/api/v1/health")).json()
        assert health["status"] == "degraded"
        assert health["storage"]["writable"] is False
        again = await client.post("/api/v1/nozzles/1/authorize", json={})
        assert again.status_code == 503  # refused at once while the store is known bad
        assert sim.pump(PUMP1).status.name != "AUTHORIZED"
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    async def writable() -> bool:
        body = (await client.get("/api/v1/health")).json()
        return bool(body["storage"]["writable"])

    await wait_until(writable, timeout=10, what="the store to recover")
    ok = await client.post("/api/v1/nozzles/1/authorize", json={})
    assert ok.status_code == 202, ok.text
    await client.aclose()


async def serves_the_next_customer(client: httpx.AsyncClient, sim: Simulator,
                                   running: RunningStation) -> None:
    """After a storage failure: once the store's probe has seen it writable again, the pump
    sells to the next customer (a second fill, a second sale)."""
    await wait_until(lambda: running.station.ledger.writable, timeout=10,
                     what="authorizations allowed again")
    r = await client.post("/api/v1/nozzles/1/authorize", json={"preset": {"volume": "1.00"}})
    assert r.status_code == 202, r.text
    sim.lift(PUMP1, 1)
    await wait_until(lambda: len(sim.fills()) == 2, timeout=20, what="the second fill")
    sim.hang(PUMP1, 1)
    assert len(await wait_sales(client, 2, timeout=20)) == 2


async def test_a_fill_that_starts_while_storage_fails_is_recorded_when_it_recovers(
        sim: Simulator, running: RunningStation, tmp_path: Path) -> None:
    client = await running.client()
    await wait_pump_state(client, 1, "idle")
    r = await client.post("/api/v1/nozzles/1/authorize", json={"preset": {"volume": "2.00"}})
    assert r.status_code == 202, r.text
    blocker = sqlite3.connect(tmp_path / "station.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # the disk fails after the authorization was written
    try:
        # Fuel flows (its "fuelling" state cannot be stored) and ends (its sale cannot be).
        sim.lift(PUMP1, 1)
        await wait_until(lambda: len(sim.fills()) == 1, timeout=20, what="the fill")
        sim.hang(PUMP1, 1)
        await wait_until(lambda: not running.station.ledger.writable, timeout=20,
                         what="the store known unwritable")
        assert await sales(client) == []
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    # The pump was followed throughout: the sale is recorded once the store takes it.
    (sale,) = await wait_sales(client, 1, timeout=30)
    assert Decimal(sale["volume"]) == sim.fills()[0].volume_decimal == Decimal("2.00")
    # And the pump still serves the next customer.
    await wait_pump_state(client, 1, "idle", timeout=15)
    await serves_the_next_customer(client, sim, running)
    await client.aclose()


async def test_a_pump_cut_off_mid_fill_while_storage_fails_is_recovered_when_it_returns(
        sim: Simulator, running: RunningStation, tmp_path: Path) -> None:
    client = await running.client()
    await wait_pump_state(client, 1, "idle")
    pump = running.station.forecourt.pumps[1]
    r = await client.post("/api/v1/nozzles/1/authorize", json={})
    assert r.status_code == 202, r.text
    sim.lift(PUMP1, 1)
    await wait_until(lambda: dispensed(sim, PUMP1) > 50, timeout=10, what="half a litre")
    blocker = sqlite3.connect(tmp_path / "station.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        # The pump loses power mid-fill: its start-up must store the sale it recovers from the
        # totals, and cannot.
        sim.power_cycle(PUMP1)
        await wait_until(lambda: not running.station.ledger.writable, timeout=30,
                         what="the store known unwritable")
        assert not pump.ready
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    sim.hang(PUMP1, 1)
    (sale,) = await wait_sales(client, 1, timeout=30)
    (fill,) = sim.fills()
    assert Decimal(sale["volume"]) == fill.volume_decimal > 0
    assert sale["recovered"] is True
    await wait_until(lambda: pump.ready, timeout=20, what="the pump set up again")
    await serves_the_next_customer(client, sim, running)
    await client.aclose()


def test_run_with_a_bad_config_exits_2_naming_every_problem(tmp_path: Path) -> None:
    db = tmp_path / "never" / "station.db"
    bad = tmp_path / "bad.toml"
    bad.write_text(f"""
[station]
id = "bad id!"
name = "x"
timezone = "Mars/Olympus"
[storage]
path = "{db}"
[[grades]]
code = "92"
name = "92号汽油"
price = 7.5
[[lines]]
id = "line1"
port = "socket://127.0.0.1:1"
[[pumps]]
number = 1
line = "line9"
address = 0x50
colour = "red"
[[pumps.nozzles]]
number = 1
logical = 1
grade = "98"
""", "utf-8")
    result = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--config", str(bad)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    problems = result.stderr.strip().splitlines()
    text = result.stderr
    for needle in ("station.id", "timezone", "price", "colour"):
        assert needle in text, (needle, text)
    assert len(problems) >= 4
    assert not db.parent.exists(), "a bad config must touch nothing"
