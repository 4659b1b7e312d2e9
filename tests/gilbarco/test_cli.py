"""``forecourt simulate --protocol gilbarco`` as a user runs it, and its HTTP control API."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import pytest

from drivers.gilbarco import GilbarcoLine, PumpStatus
from simulator.cli import main
from simulator.gilbarco import run_gilbarco_simulator
from simulator.gilbarco.cli import wants_gilbarco
from tests.helpers import wait_until


def test_the_protocol_option_picks_the_simulator() -> None:
    assert wants_gilbarco(["--protocol", "gilbarco", "--pumps", "2"])
    assert wants_gilbarco(["--pumps", "2", "--protocol=gilbarco"])
    assert not wants_gilbarco(["--pumps", "2"])
    assert not wants_gilbarco(["--protocol", "dart"])


@pytest.mark.parametrize(
    "argv",
    [
        ["--listen", "nonsense"],
        ["--pumps", "17"],
        ["--pumps", "0"],
        ["--mode", "9-digit"],
        ["--decimals", "2,2"],
        ["--decimals", "2,2,4"],
        ["--baudrate", "1200"],
        ["--config-function", "1000"],
        ["--config", "/nonexistent/station.toml"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--protocol", "gilbarco", *argv]) == 2
    assert capsys.readouterr().err.strip()


def test_pumps_from_a_station_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "station.toml"
    config.write_text(
        '[[grades]]\ncode = "92"\nname = "92号汽油"\nprice = "7.62"\n'
        '[[lines]]\nid = "g1"\nport = "socket://127.0.0.1:4001"\nprotocol = "gilbarco"\n'
        '[[lines]]\nid = "d1"\nport = "/dev/ttyS0"\nprotocol = "dart"\n'
        '[[pumps]]\nnumber = 1\nline = "g1"\naddress = 3\n'
        '[[pumps.nozzles]]\nnumber = 1\nlogical = 2\ngrade = "92"\n'
        '[[pumps]]\nnumber = 2\nline = "d1"\naddress = 0x50\n'
        '[[pumps.nozzles]]\nnumber = 2\nlogical = 1\ngrade = "92"\n'
    )
    from simulator.gilbarco import pumps_from_config

    pumps = pumps_from_config(config)
    assert [(p.number, p.hoses, p.prices) for p in pumps] == [(3, {2: 92}, {2: 762})]
    assert main(["--protocol", "gilbarco", "--config", str(config), "--line", "d2"]) == 2
    assert "no [[pumps]]" in capsys.readouterr().err


def test_runs_prints_where_it_listens_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "simulate", "--protocol", "gilbarco", "--pumps", "2",
         "--echo", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        line_out = process.stdout.readline()
        control_out = process.stdout.readline()
        assert "Gilbarco line on socket://127.0.0.1:" in line_out and "echo" in line_out
        url = re.search(r"socket://\S+", line_out)
        control = re.search(r"http://\S+", control_out)
        assert url is not None and control is not None

        async def drive() -> None:
            async with GilbarcoLine(url.group(0), [1, 2], echo=True, parity="N") as line:
                await wait_until(lambda: line.status(2) is PumpStatus.IDLE, what="idle")
                request = urllib.request.Request(
                    f"{control.group(0)}/pumps/2/nozzles/1/lift", method="POST")
                await asyncio.to_thread(urllib.request.urlopen, request)
                await wait_until(lambda: line.status(2) is PumpStatus.CALLING, what="calling")

        asyncio.run(drive())
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0


async def test_control_api() -> None:
    async with (
        run_gilbarco_simulator(2, control_port=0) as sim,
        httpx.AsyncClient(base_url=sim.control_url or "") as http,
    ):
        async def post(path: str, body: dict[str, Any] | None = None) -> httpx.Response:
            return await http.post(path, json=body) if body is not None else await http.post(path)

        assert (await post("/pumps/1/nozzles/2/lift")).json()["nozzle_out"] == 2
        assert (await post("/pumps/1/nozzles/1/lift")).status_code == 409
        assert (await post("/pumps/9/nozzles/1/lift")).status_code == 404
        assert (await post("/pumps/1/flow", {"lpm": "-1"})).status_code == 400
        assert (await post("/pumps/1/flow", {"lpm": "25"})).json()["flow_lpm"] == "25"
        assert (await post("/pumps/1/data-error")).json()["data_error"] is True
        answer = (await post("/pumps/1/config-answer", {"answers": False})).json()
        assert answer["answers_config"] is False
        profile = {"needs_read": False, "needs_hangup": False, "hold": 1}
        assert (await post("/pumps/1/end-profile", profile)).json()["end_profile"]["hold"] == 1
        faults = (await post("/pumps/2/faults", {"bad_checksum": 0.5, "delay_ms": 20})).json()
        assert faults == {"silent": False, "bad_checksum": 0.5, "drop": 0.0, "delay_ms": 20.0}
        assert (await post("/faults", {"silent": True})).json()["silent"] is True
        assert (await http.delete("/faults")).status_code == 200
        assert (await http.delete("/pumps/2/faults")).status_code == 200
        state = (await http.get("/state")).json()
        assert [p["pump"] for p in state["pumps"]] == [1, 2]
        assert state["pumps"][0]["hoses"][1]["out"] is True
        assert (await http.get("/fills?pump=1")).json() == {"fills": []}
        assert (await http.get("/pumps/x")).status_code == 404
        assert json.loads((await http.get("/pumps/2")).text)["status"] == "idle"
        assert (await post("/pumps/1/power-cycle")).json()["data_error"] is False
        assert (await post("/pumps/1/nozzles/2/hang")).json()["nozzle_out"] is None
