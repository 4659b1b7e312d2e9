"""`forecourt scan`: which pumps answer on a line, for commissioning, against the simulator."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from simulator.control import make_pumps, run_simulator
from simulator.firmware import FirmwarePlan
from tests.helpers import PumpSpec, StationSpec, free_port


async def test_scan_names_what_each_pump_answers(tmp_path: Path) -> None:
    pumps = make_pumps(3, firmware=FirmwarePlan.parse(["rev211", "0x51=legacy", "0x52=milli"]))
    async with run_simulator(pumps) as sim:
        assert sim.url is not None
        spec = StationSpec(port_url=sim.url, db=tmp_path / "station.db", api_port=free_port(),
                           pumps=[PumpSpec(1, 0x50, [(1, 1, "92")]),
                                  PumpSpec(2, 0x51, [(2, 1, "92")]),
                                  PumpSpec(3, 0x52, [(3, 1, "92")]),
                                  PumpSpec(4, 0x53, [(4, 1, "92")])])  # nobody at 0x53
        config = tmp_path / "station.toml"
        config.write_text(spec.toml(), "utf-8")
        done = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "edge.cli", "scan", "--line", "line1",
                             "--seconds", "8", "--config", str(config)],
            capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = {line.split(":", 1)[0]: line for line in done.stdout.splitlines()}
    assert "price read-back (DC103)" in rows["pump 1"]
    assert "decimals 2/2/2" in rows["pump 1"] and "suspend yes" in rows["pump 1"]
    # The older pump: no read-back, no suspend, and its 6-byte totals still read.
    assert "price shown at the lift (DC3)" in rows["pump 2"]
    assert "suspend no" in rows["pump 2"] and "1: 0.00 L" in rows["pump 2"]
    # The millilitre pump says so itself.
    assert "decimals 3/2/3" in rows["pump 3"]
    assert rows["pump 4"] == "pump 4: no answer"
