"""The IFSF driver's configuration keys, through the station's config parser."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from domain.config_reader import Findings
from drivers.ifsf import Lna
from drivers.ifsf.config import FullMode, IfsfLineSettings, IfsfPumpSettings, Member, members
from drivers.ifsf.driver import DRIVER
from drivers.ifsf.messages import NozzleForm
from edge.config.loader import ConfigError, parse_config
from edge.config.sections import Context, read_document

from .station import ifsf_station_toml

ROOT = Path(__file__).parents[2]


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    return caught.value.problems


def test_a_station_with_a_tqc_node_and_a_dit_dispenser() -> None:
    config = parse_config(ifsf_station_toml(extra_line='nozzle_form = "bitmask"\n'
                                            'full = "preset"\nfull_preset_amount = "5000"\n'
                                            "[[lines.nodes]]\nnode = 11\n"
                                            'address = "10.0.0.11:3486"'))
    [line] = config.lines
    settings = line.settings
    assert isinstance(settings, IfsfLineSettings)
    assert settings.controller == Lna(2, 1)
    assert settings.heartbeat_interval == timedelta(seconds=1)
    assert settings.listen == ("127.0.0.1", 0)
    assert settings.nozzle_form is NozzleForm.BITMASK
    assert settings.full is FullMode.PRESET and settings.full_preset_amount == Decimal(5000)
    assert settings.static_nodes == {11: ("10.0.0.11", 3486)}
    assert settings.products == {"92": 92, "95": 95}
    pumps = config.pumps_on("lan1")
    assert [p.settings for p in pumps] == [IfsfPumpSettings(node=1, fuelling_point=1),
                                           IfsfPumpSettings(node=1, fuelling_point=2),
                                           IfsfPumpSettings(nodes=(11, 12))]
    assert members(pumps[0]) == (Member(Lna(1, 1), 1, {1: 1, 2: 2}),)
    assert members(pumps[2]) == (Member(Lna(1, 11), 1, {1: 1}), Member(Lna(1, 12), 1, {2: 1}))
    assert DRIVER.describe_pump(pumps[2]) == "DIT nodes 1.11, 1.12"
    assert "node 2.1" in DRIVER.describe_line(line)
    assert DRIVER.resources(line) == (("udp_port", "UDP port 3486"),
                                      ("listen", "TCP port 0 on 127.0.0.1"))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("node = 1\nfuelling_point = 1\nauthorize", "fuelling_point = 1\nauthorize"),
         "names its node"),
        (("nodes = [11, 12]", "nodes = [11, 11]"), "listed twice"),
        (("nodes = [11, 12]", "nodes = [11]"), "the pump names 1 nodes"),
        (("nodes = [11, 12]", "nodes = []"), "1..8 node numbers"),
        (("fuelling_point = 2", "fuelling_point = 5"), "out of range"),
        (("fuelling_point = 2", "fuelling_point = 1"), "already pump 1"),
        (('grade = "95"\nnumber = 95', 'grade = "95"\nnumber = -1'), "out of range"),
        (('[[lines.products]]\ngrade = "95"\nnumber = 95', ""), "no IFSF product number"),
        (("udp_port = ", "udp_port = 0 #"), "out of range"),
        (('heartbeat_to = "', 'heartbeat_to = "x'), "not an IPv4 address"),
        (("reply_timeout_ms = 2000", 'reply_timeout_ms = 2000\nnozzle_form = "mask"'),
         "not one of"),
        (("reply_timeout_ms = 2000", "reply_timeout_ms = 2000\nbaudrate = 9600"),
         "unknown key"),
    ],
)
def test_refusals(change: tuple[str, str], expected: str) -> None:
    text = ifsf_station_toml()
    assert change[0] in text, change[0]
    found = problems(text.replace(change[0], change[1], 1))
    assert any(expected in p for p in found), found


def test_two_ifsf_lines_cannot_share_the_udp_port() -> None:
    text = ifsf_station_toml()
    second = text[text.index("[[lines]]"):text.index("[[pumps]]")].replace('"lan1"', '"lan2"')
    found = problems(text + second.replace('listen = "127.0.0.1:0"', 'listen = "127.0.0.1:1"')
                     + '\n[[pumps]]\nnumber = 9\nline = "lan2"\nnode = 5\n'
                     '[[pumps.nozzles]]\nnumber = 9\nlogical = 1\ngrade = "92"\n')
    assert any("UDP port 3486 is already used by line lan1" in p for p in found), found


def test_every_ifsf_key_is_documented() -> None:
    every = ('advertise = "10.0.0.2"\nstatus_poll_seconds = 10\nnozzle_form = "number"\n'
             'full = "auto"\nfull_preset_amount = "9999.00"\nprice_wait_seconds = 300\n'
             '[[lines.nodes]]\nnode = 11\naddress = "10.0.0.11:3486"')
    findings = Findings()
    data = tomllib.loads(ifsf_station_toml(extra_line=every))
    assert read_document(data, Context(findings, None, check_files=False)) is not None
    leaves = {k for k in findings.keys_read if k.startswith(("lines.", "pumps."))
              and not any(o.startswith(k + ".") for o in findings.keys_read)}
    assert {"lines.node", "lines.nodes.address", "lines.products.number",
            "pumps.fuelling_point"} <= leaves
    docs = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    missing = sorted(key for key in leaves | {"pumps.nodes"} if f"| `{key}` |" not in docs)
    assert missing == []
