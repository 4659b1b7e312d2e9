"""``forecourt simulate --protocol ifsf`` as a user runs it, and its HTTP control API."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from drivers.ifsf import (
    DataItem,
    FpId,
    FuellingPointAddress,
    IfsfNetwork,
    Lna,
    NodeOnline,
    NodeSettings,
)
from edge.cli import main as forecourt_main
from simulator.ifsf import Layout, make_nodes, run_ifsf_simulator
from simulator.ifsf.cli import build_parser, main, nodes_from_args, wants_ifsf

from .conftest import wait_for
from .station import ifsf_station_toml


@pytest.mark.parametrize(
    "argv",
    [
        ["--protocol", "ifsf", "--nodes", "0"],
        ["--protocol", "ifsf", "--fps", "5"],
        ["--protocol", "ifsf", "--prices", "92"],
        ["--protocol", "ifsf", "--decimals", "2,2"],
        ["--protocol", "ifsf", "--layout", "xyz"],
        ["--protocol", "ifsf", "--controller", "nowhere"],
        ["--protocol", "ifsf", "--first-sequence", "0"],
        ["--protocol", "ifsf", "--line", "lan1"],
        ["--protocol", "ifsf", "--config", "/nonexistent/station.toml"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert forecourt_main(["simulate", *argv]) == 2
    assert capsys.readouterr().err.strip()


def test_protocol_is_recognised() -> None:
    assert wants_ifsf(["--protocol", "ifsf"]) and wants_ifsf(["--protocol=ifsf"])
    assert not wants_ifsf(["--protocol", "dart"]) and not wants_ifsf([])
    args = build_parser().parse_args([])
    assert (args.layout, args.nodes, args.fps, args.nozzles) == ("tqc", 1, 2, 2)
    station = nodes_from_args(args)
    assert (station.udp_port, station.heartbeat_interval, station.heartbeat_to) == (
        3486, 10.0, "255.255.255.255")
    assert [sorted(n.fps) for n in station.nodes] == [[1, 2]]


def test_nodes_from_a_station_config(tmp_path: Path) -> None:
    config = tmp_path / "station.toml"
    config.write_text(ifsf_station_toml(udp_port=3485, extra_line=(
        '[[lines.nodes]]\nnode = 12\naddress = "10.0.0.12:4012"')), "utf-8")
    args = build_parser().parse_args(["--config", str(config), "--nozzle-form", "bitmask"])
    station = nodes_from_args(args)
    assert (station.udp_port, station.heartbeat_interval, station.heartbeat_to) == (
        3485, 1.0, "127.255.255.255")
    assert [str(n.lna) for n in station.nodes] == ["1.1", "1.11", "1.12"]
    tqc, dit11, dit12 = station.nodes
    assert {fp: dict(p.nozzles) for fp, p in tqc.fps.items()} == {1: {1: 92, 2: 95},
                                                                  2: {1: 92}}
    assert dit11.fps[1].nozzles == {1: 92} and dit12.fps[1].nozzles == {1: 95}
    assert tqc.prices == {92: 750, 95: 800}
    assert station.ports == {12: 4012}
    assert all(n.nozzle_form.value == "bitmask" for n in station.nodes)


def test_help_of_both_simulators(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "--heartbeat-to" in capsys.readouterr().out
    assert forecourt_main(["simulate", "--help"]) == 0
    assert "ifsf" in capsys.readouterr().out


def test_runs_prints_its_nodes_and_stops_on_sigterm(udp_port: int) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "simulate", "--protocol", "ifsf", "--layout", "dit",
         "--nodes", "2", "--first-node", "11", "--udp-port", str(udp_port),
         "--heartbeat-to", "127.255.255.255", "--control", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(4)]
        assert re.match(r"IFSF node 1\.11 on 127\.0\.0\.1:\d+: FP1 nozzles \[1\]", lines[0])
        assert lines[1].startswith("IFSF node 1.12 on")
        assert f"127.255.255.255:{udp_port} every 10 s" in lines[2]
        match = re.search(r"http://127\.0\.0\.1:\d+", lines[3])
        assert match
        with urllib.request.urlopen(match.group(0) + "/state", timeout=10) as response:
            state = json.load(response)
        assert [n["node"] for n in state["nodes"]] == ["1.11", "1.12"]
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err


async def test_control_api(udp_port: int) -> None:
    nodes = make_nodes(Layout.TQC, fps=2, nozzles=2, ramp_seconds=Decimal(0))
    network = IfsfNetwork(Lna(2, 1), {Lna(1, 1): NodeSettings(heartbeat_interval=0.5)},
                          udp_port=udp_port, heartbeat_interval=0.5,
                          heartbeat_destination="127.255.255.255", listen=("127.0.0.1", 0))
    seen: list[object] = []

    async def record() -> None:
        async for event in network.events():
            seen.append(event)

    async with (
        run_ifsf_simulator(nodes, udp_port=udp_port, heartbeat_interval=0.5,
                           heartbeat_destination="127.255.255.255", control_port=0) as sim,
        httpx.AsyncClient(base_url=sim.control_url or "") as http,
    ):
        async def post(path: str, body: Any = None) -> httpx.Response:
            return await http.post(path, json=body)

        response = await post("/nodes/1/fps/1/nozzles/1/lift")
        assert response.status_code == 200
        assert response.json()["fps"][0]["lifted"] == 1
        assert (await post("/nodes/1/fps/1/nozzles/2/lift")).status_code == 409
        assert (await post("/nodes/7/fps/1/nozzles/1/lift")).json()["error"]["code"] == (
            "unknown_node")
        assert (await post("/nodes/1/fps/1/flow", {"lpm": "-1"})).status_code == 400
        assert (await post("/nodes/1/fps/1/flow", {"lpm": "80"})).status_code == 200
        faults = (await post("/nodes/1/faults", {"refuse": {"62": 6},
                                                 "price_result": {"2": "0x37"}})).json()
        assert faults["refuse"] == {"62": 6} and faults["price_result"] == {"2": "0x37"}
        assert (await post("/nodes/1/faults", {"price_result": {"1": "0x12"}})).status_code == (
            409)
        assert (await post("/nodes/1/faults", {"price_result": {"9": "0x37"}})).status_code == (
            409)
        assert (await http.delete("/nodes/1/faults")).json()["refuse"] == {}
        response = await post("/nodes/1/stand-alone", {"on": True, "fp": 2})
        assert [fp["stand_alone"] for fp in response.json()["fps"]] == [False, True]
        async with network, asyncio.TaskGroup() as group:
            task = group.create_task(record())
            await wait_for(lambda: any(isinstance(e, NodeOnline) for e in seen), what="online")
            ack = await network.write(Lna(1, 1), FuellingPointAddress(2),
                                      (DataItem(FpId.OPEN_FP),))
            assert ack.accepted
            assert (await http.get("/fills")).json() == {"fills": []}
            # Stand-alone: a filling nobody released ends in the buffer.
            await post("/nodes/1/fps/2/nozzles/1/lift")
            await wait_for(lambda: sim.fp(1, 2).current()[0] > 0, what="fuel")
            await post("/nodes/1/fps/2/nozzles/1/hang")
            [fill] = (await http.get("/fills", params={"node": "1"})).json()["fills"]
            assert (fill["node"], fill["fp"], fill["sequence"], fill["released_by"]) == (
                1, 2, "0001", None)
            assert Decimal(fill["volume"]) > 0 and fill["end"] == "nozzle_in"
            assert (await post("/nodes/1.1/drop-links")).status_code == 200
            assert (await post("/nodes/1/power-cycle")).json()["configuration_needed"]
            task.cancel()
        assert (await http.get("/nodes/x")).status_code == 404
