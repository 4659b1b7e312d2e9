"""The daemon's services under its supervisor: a peripheral that dies is restarted while health
says degraded; a critical one that dies ends `forecourt run` with exit status 1 (systemd then
restarts it), after an orderly stop."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import pytest

from edge.receipts import ReceiptService
from simulator.control import Simulator
from tests.e2e.conftest import start_station, write_config
from tests.helpers import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


def with_printer(config: Path) -> Path:
    receipts = config.parent / "receipts.prn"
    config.write_text(config.read_text("utf-8") + f'\n[printer]\nkind = "file"\n'
                      f'address = "{receipts}"\n', "utf-8")
    return config


async def health(base_url: str) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
        response = await client.get("/api/v1/health")
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body


def service(body: dict[str, object], name: str) -> dict[str, object]:
    services = body["services"]
    assert isinstance(services, list)
    found: dict[str, object] = next(s for s in services if s["name"] == name)
    return found


async def test_a_dead_peripheral_is_restarted_and_health_degraded_meanwhile(
        sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert sim.url is not None
    crash = asyncio.Event()
    runs = 0
    run = ReceiptService.run

    async def crashing_once(self: ReceiptService) -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            await crash.wait()
            raise RuntimeError("the receipts loop crashed")
        await run(self)

    monkeypatch.setattr(ReceiptService, "run", crashing_once)
    station, task = await start_station(with_printer(write_config(tmp_path, sim.url)))
    base = f"http://127.0.0.1:{station.port}"
    try:
        before = await health(base)
        assert before["status"] == "ok"
        assert service(before, "printer") == {"name": "printer", "critical": False,
                                              "state": "running", "restarts": 0, "error": None}
        crash.set()

        async def degraded() -> dict[str, object] | None:
            body = await health(base)
            return body if body["status"] == "degraded" else None

        body = await wait_until(degraded, what="health degraded")
        assert service(body, "printer")["state"] == "restarting"
        assert service(body, "printer")["error"] == "RuntimeError: the receipts loop crashed"

        async def ok_again() -> dict[str, object] | None:
            body = await health(base)
            return body if body["status"] == "ok" else None

        body = await wait_until(ok_again, what="health ok again")
        assert service(body, "printer")["state"] == "running"
        assert service(body, "printer")["restarts"] == 1
        assert runs == 2
        assert not task.done()  # the station ran on throughout
    finally:
        station.request_stop()
        await asyncio.wait_for(task, 20)


# The real command line, with one task of a critical service made to die once the daemon serves
# and the test says so (a file appears): the store probe, or the forecourt's live-state task.
DYING = """
import asyncio, sys
from pathlib import Path

from edge.forecourt import Forecourt
from edge.ledger import Ledger

trigger = Path(sys.argv[1])


async def dies(self):
    while not trigger.exists():
        await asyncio.sleep(0.05)
    raise RuntimeError("the {what} crashed")


{patched} = dies
from edge.cli import main

raise SystemExit(main(sys.argv[2:]))
"""

CRITICAL = [("store-probe", "store probe", "Ledger.probe", "store probe"),
            ("forecourt", "forecourt", "Forecourt._publish_live", "live state")]


@pytest.mark.parametrize(("name", "label", "patched", "what"), CRITICAL,
                         ids=[c[0] for c in CRITICAL])
async def test_a_dead_critical_service_ends_forecourt_run_with_status_1(
        sim: Simulator, tmp_path: Path, name: str, label: str, patched: str,
        what: str) -> None:
    assert sim.url is not None
    port = free_port()
    config = write_config(tmp_path, sim.url, port)
    trigger = tmp_path / "die-now"
    log = tmp_path / "daemon.log"
    with open(log, "wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", DYING.format(what=what, patched=patched), str(trigger), "run",
            "--config", str(config), cwd=ROOT, stdout=out, stderr=out)
    try:
        async def serving() -> bool:
            assert process.returncode is None, log.read_text(errors="replace")
            try:
                return (await health(f"http://127.0.0.1:{port}"))["status"] == "ok"
            except httpx.HTTPError:
                return False

        await wait_until(serving, timeout=20, what="the daemon serving")
        trigger.touch()
        code = await asyncio.wait_for(process.wait(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = log.read_text(errors="replace")
    assert code == 1, text
    lines = text.splitlines()
    reason = f"RuntimeError: the {what} crashed"
    died = [line for line in lines if f"critical service {name} died" in line]
    assert died[0].endswith(f"critical service {name} died: {reason}; the station stops in "
                            "order and exits 1 so that systemd restarts it"), text
    # The last word, at critical, with the service's own traceback as its cause.
    final = next(i for i, line in enumerate(lines) if "station failed:" in line)
    assert lines[final].endswith(f"station failed: critical service {name} died: {reason}"), text
    cause = lines[final:]
    assert any(line.endswith(", in dies") for line in cause), text
    assert any(line.endswith(reason) for line in cause), text
    assert "station stopped" in text  # an orderly stop: lines closed, store closed
