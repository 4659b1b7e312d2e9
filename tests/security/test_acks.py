"""The cloud link under attack, against a real daemon and a real Mosquitto (docs/security.md,
"The cloud link: acks, epochs, commands").

`forecourt run` is a child process with a `[sync]` section; its pumps are simulated over a real
socket by this process. The attacker is a client of the broker who can publish on the station's
`acks` topic (the test broker has no ACL: the shipped one would stop it first, see
tests/sync/test_cloud_peer.py). The cloud is `simulator.cloud.CloudPeer`, with the cloud's
signing key.

- a forged ack deletes nothing, is refused whole and raised as a `cloud.alarm`, and the genuine
  acks after it still work (issue case 1);
- cloud commands with integers beyond SQLite's, or a price change for the year 9999, are
  refused, not run into an OverflowError (cases 11 and 14, the cloud's side);
- a station restored from an old backup, stopped and started again, gets every sale of both of
  its ledgers to the cloud, nothing dropped (the ledger epoch).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
import pytest_asyncio

from edge.store import Store
from simulator.cloud import CloudPeer
from simulator.control import Simulator, run_simulator
from sync.keys import generate, load_private_key
from tests.e2e.conftest import USERS, dispensed, sim_pumps
from tests.e2e.daemon import Daemon
from tests.helpers import StationSpec, free_port, wait_until
from tests.mosquitto import Mosquitto

pytestmark = pytest.mark.asyncio(loop_scope="module")

SID = "XJ-TEST-0001"
AUTO_PUMP = 0x51  # pump 2 authorizes itself when its nozzle is lifted
FORGED = 1_000_000_000_000


@dataclass
class Station:
    daemon: Daemon
    sim: Simulator
    broker: Mosquitto
    cloud: CloudPeer
    port: int
    config: Path
    db: Path

    async def health(self) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}") as client:
            response = await client.get("/api/v1/health", timeout=10)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def backlog(self) -> int:
        backlog: int = (await self.health())["sync"]["backlog"]
        return backlog

    async def attack(self, payload: bytes) -> None:
        """Publishes on the station's acks topic as someone other than the cloud."""
        async with aiomqtt.Client("127.0.0.1", self.broker.port,
                                  identifier="tenant-of-the-broker") as client:
            await client.publish(f"fcc/v1/{SID}/acks", payload, qos=1)

    async def pump_idle(self) -> None:
        """Pump 2 read and idle: a nozzle lifted before the station knows the pump is not
        authorized by itself (a safe start), so a customer waits for this."""
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}",
                                     timeout=10) as client:
            login = await client.post("/api/v1/session",
                                      json={"user": "att", "pin": USERS["att"][1]})
            assert login.status_code == 200, login.text
            headers = {"Authorization": f"Bearer {login.json()['token']}"}

            async def idle() -> bool:
                pumps = (await client.get("/api/v1/forecourt", headers=headers)).json()
                return any(p["number"] == 2 and p["state"] == "idle" for p in pumps["pumps"])
            await wait_until(idle, timeout=20, what="pump 2 idle")

    async def sell(self) -> None:
        """One customer on the auto pump: lift, take a litre or two, hang up."""
        await self.pump_idle()
        before = len(self.sim.fills())
        self.sim.lift(AUTO_PUMP, 1)
        await wait_until(lambda: self.sim.pump(AUTO_PUMP).status.name == "FILLING", timeout=15,
                         what="the pump authorized by itself, filling")
        await wait_until(lambda: dispensed(self.sim, AUTO_PUMP) > 100, timeout=15, what="fuel")
        self.sim.hang(AUTO_PUMP, 1)
        await wait_until(lambda: len(self.sim.fills()) > before, timeout=15, what="the fill")

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [e for e in self.cloud.events() if e["type"] == type_]


def station_config(tmp_path: Path, sim: Simulator, broker: Mosquitto, public: Path) -> Path:
    assert sim.url is not None
    spec = StationSpec(port_url=sim.url, db=tmp_path / "station.db", api_port=free_port(),
                       broker=broker.url, cloud_public_key=public)
    path = tmp_path / "station.toml"
    path.write_text(spec.toml(), "utf-8")
    with Store.open(spec.db) as store:
        for name, (role, pin) in USERS.items():
            store.upsert_user(name, role=role, pin=pin)
    return path


async def stop(daemon: Daemon) -> None:
    assert daemon.process is not None
    if daemon.process.returncode is None:
        os.kill(daemon.process.pid, signal.SIGTERM)
    assert await daemon.wait() == 0, daemon.log.read_text(errors="replace")[-2000:]


@asynccontextmanager
async def running_station(tmp_path: Path, *, ack: bool) -> AsyncIterator[Station]:
    private, public = generate(tmp_path / "keys")
    with Mosquitto(tmp_path / "broker") as broker:
        async with run_simulator(sim_pumps()) as sim, \
                CloudPeer(broker.url, SID, ack=ack, private_key=load_private_key(private),
                          client_id="cloud-security") as cloud:
            config = station_config(tmp_path, sim, broker, public)
            port = int(config.read_text().split('listen = "127.0.0.1:')[1].split('"')[0])
            daemon = Daemon(config, port)
            await daemon.start()
            try:
                yield Station(daemon, sim, broker, cloud, port, config, tmp_path / "station.db")
            finally:
                await stop(daemon)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def station(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Station]:
    """A station whose cloud does not ack by itself: the tests ack by hand."""
    async with running_station(tmp_path_factory.mktemp("acks"), ack=False) as running:
        await wait_until(lambda: running.cloud.online() is True, timeout=20, what="online")
        yield running


# ------------------------------------------------------------------------------ forged acks


async def test_a_forged_ack_deletes_no_sale_and_the_genuine_acks_still_work(
        station: Station) -> None:
    await station.sell()
    await wait_until(lambda: station.of_type("sale.completed"), timeout=20, what="the sale")
    sent = station.cloud.stream.highest()
    assert await station.backlog() >= sent >= 1  # nothing acked yet: every event waits

    await station.attack(json.dumps({"upto_seq": FORGED}).encode())

    # Refused whole: an alarm the cloud (and the console) sees, and nothing deleted.
    await wait_until(lambda: station.of_type("cloud.alarm"), timeout=20, what="the alarm")
    [alarm] = station.of_type("cloud.alarm")
    assert alarm["data"]["kind"] == "forged_ack"
    assert alarm["data"]["ack"] == {"upto_seq": FORGED, "epoch": 1}
    assert alarm["data"]["highest_seq"] >= sent
    assert alarm["seq"] > alarm["data"]["highest_seq"]

    async def nothing_deleted() -> bool:  # every event the cloud got is still unacknowledged
        return await station.backlog() == station.cloud.stream.highest()
    await wait_until(nothing_deleted, timeout=20, what="the whole outbox still there")
    log = station.daemon.log.read_text(errors="replace")
    assert f"refused an ack up to seq {FORGED} of epoch 1" in log

    # A sale after the attack, then the cloud's genuine acks: every event leaves the outbox.
    await station.sell()
    await wait_until(lambda: len(station.of_type("sale.completed")) == 2, timeout=20,
                     what="the second sale")
    highest = station.cloud.stream.highest()
    await station.cloud.send_raw(json.dumps({"epoch": 1, "upto_seq": highest}).encode(),
                                 topic=f"fcc/v1/{SID}/acks")

    async def drained() -> bool:
        return await station.backlog() == 0
    await wait_until(drained, timeout=20, what="the outbox emptied by the genuine ack")
    assert station.cloud.gaps() == []
    assert len(station.of_type("cloud.alarm")) == 1


async def test_an_ack_for_an_epoch_the_station_has_not_reached_is_refused(
        station: Station) -> None:
    """`{"epoch": 9, "upto_seq": K}` named every unacknowledged seq: a station that ignored
    the epoch would delete them all. A forged conflict must not move anything either."""
    acked = station.cloud.stream.highest()  # the previous test acked everything up to here
    await station.sell()
    await wait_until(lambda: len(station.of_type("sale.completed")) >= 3, timeout=20,
                     what="a third sale")
    highest = station.cloud.stream.highest()
    assert await station.backlog() == highest - acked

    await station.attack(json.dumps({"epoch": 9, "upto_seq": highest}).encode())
    await station.attack(json.dumps({"conflict": {"epoch": 1, "seq": FORGED}}).encode())
    # A genuine ack of one event after them: once it is applied, the forged ones were dealt
    # with (acks are handled in order), and exactly that one event left the outbox.
    await station.cloud.send_raw(json.dumps({"epoch": 1, "upto_seq": acked + 1}).encode(),
                                 topic=f"fcc/v1/{SID}/acks")

    async def one_gone() -> bool:
        return await station.backlog() == station.cloud.stream.highest() - (acked + 1)
    await wait_until(one_gone, timeout=20, what="only the genuinely acked event gone")
    assert [e["epoch"] for e in station.cloud.events()] == [1] * len(station.cloud.events())
    assert station.of_type("epoch.started") == []  # the forged conflict moved nothing
    health = await station.health()
    assert health["sync"]["connected"] is True


# -------------------------------------------------------------------------- cloud commands


def expires() -> str:
    return (datetime.now(UTC) + timedelta(minutes=5)).isoformat()


@pytest.mark.parametrize("data", [
    {"what": "sales", "since_seq": 2**63},
    {"what": "shift", "args": {"shift_id": 2**63}},
    {"what": "totals", "args": {"page": [2**64]}},
])
async def test_integers_beyond_sqlite_in_a_data_request_are_refused(
        station: Station, data: dict[str, Any]) -> None:
    reply = await station.cloud.command("data.request", {**data, "expires_at": expires()})
    assert reply["data"]["ok"] is False, reply
    assert reply["data"]["error"]["code"] == "invalid_data", reply
    assert "OverflowError" not in station.daemon.log.read_text(errors="replace")


async def test_a_price_schedule_for_the_year_9999_is_refused(station: Station) -> None:
    reply = await station.cloud.command("price.schedule", {
        "price_set_id": "PS-FAR", "effective_at": "9999-12-31T23:59:59+08:00",
        "prices": {"92": "7.62"}, "expires_at": expires()})
    assert reply["data"]["ok"] is False, reply
    assert reply["data"]["error"]["code"] == "effective_at_too_far"
    old = await station.cloud.command("price.schedule", {
        "price_set_id": "PS-OLD", "effective_at": "2001-01-01T00:00:00+08:00",
        "prices": {"92": "7.62"}, "expires_at": expires()})
    assert old["data"]["error"]["code"] == "effective_at_in_past"
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{station.port}") as client:
        login = await client.post("/api/v1/session",
                                  json={"user": "boss", "pin": USERS["boss"][1]})
        prices = await client.get("/api/v1/prices", headers={
            "Authorization": f"Bearer {login.json()['token']}"})
    assert not {s["price_set_id"] for s in prices.json()["schedules"]} & {"PS-FAR", "PS-OLD"}


# ------------------------------------------------------------------- a restore, end to end


def forecourt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge.cli", *args], capture_output=True,
                          text=True, timeout=120)


async def test_a_restored_station_gets_every_sale_of_both_ledgers_to_the_cloud(
        tmp_path: Path) -> None:
    async with running_station(tmp_path, ack=True) as station:
        cloud = station.cloud
        await station.sell()
        backup = tmp_path / "last-night.db"
        made = forecourt("db", "backup", "--config", str(station.config), "--to", str(backup))
        assert made.returncode == 0, made.stderr
        for _ in range(2):  # sold after the backup: the restore loses them locally
            await station.sell()
        await wait_until(lambda: len(station.of_type("sale.completed")) == 3, timeout=30,
                         what="three sales at the cloud")
        lost_ledger = cloud.stream.highest()

        refused = forecourt("db", "restore", "--config", str(station.config), "--from",
                            str(backup))
        assert refused.returncode == 1 and "(in_use)" in refused.stderr  # the daemon runs
        await stop(station.daemon)
        restored = forecourt("db", "restore", "--config", str(station.config), "--from",
                             str(backup))
        assert restored.returncode == 0, restored.stderr
        assert "epoch 2 starts at seq" in restored.stdout
        await station.daemon.start()

        await station.sell()
        await wait_until(lambda: len(station.of_type("sale.completed")) == 4, timeout=30,
                         what="the sale after the restore at the cloud")

        async def drained() -> bool:
            return await station.backlog() == 0
        await wait_until(drained, timeout=30, what="everything acknowledged")
        sales = station.of_type("sale.completed")
        assert [s["epoch"] for s in sales] == [1, 1, 1, 2]
        assert len({s["data"]["id"] for s in sales}) == 4
        assert sales[3]["seq"] <= lost_ledger  # a seq the lost ledger used too: not dropped
        assert [s["id"] for s in cloud.sales()] == [s["data"]["id"] for s in sales]
        [started] = station.of_type("epoch.started")
        assert started["data"]["reason"] == "restore"
        assert cloud.stream.conflicts == []
        assert station.of_type("cloud.alarm") == []  # the cloud's acks were never refused
