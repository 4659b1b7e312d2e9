"""A station config with Gilbarco lines: the driver's keys, defaults and checks."""

from __future__ import annotations

import pytest

from drivers.gilbarco.commands import DigitsMode
from drivers.gilbarco.config import GilbarcoLineSettings, GilbarcoPumpSettings, Parity
from drivers.gilbarco.timing import Timing
from edge.config import ConfigError, parse_config

HEAD = '''
[station]
id = "XJ-GIL-0001"
name = "长吉测试站"
timezone = "Asia/Shanghai"

[[grades]]
code = "92"
name = "92号汽油"
price = "7.50"
'''

PUMP = '''
[[pumps]]
number = {number}
line = "g1"
address = {address}
[[pumps.nozzles]]
number = {number}
logical = {logical}
grade = "92"
'''


def config(line: str = "", pumps: str = "", *, price: str = "7.50") -> str:
    head = HEAD.replace('"7.50"', f'"{price}"')
    line_table = f'[[lines]]\nid = "g1"\nport = "/dev/ttyS1"\nprotocol = "gilbarco"\n{line}\n'
    return head + line_table + (pumps or PUMP.format(number=1, address=1, logical=1))


def test_defaults() -> None:
    station = parse_config(config())
    (line,) = station.lines
    assert line.settings == GilbarcoLineSettings(port="/dev/ttyS1")
    settings: GilbarcoLineSettings = line.settings
    assert (settings.baudrate, settings.parity, settings.echo, settings.digits) == (
        5787, Parity.EVEN, False, DigitsMode.STANDARD)
    assert settings.timing == Timing() and settings.config_function == 1
    assert station.pumps[0].settings == GilbarcoPumpSettings(address=1)


def test_every_key() -> None:
    line = '''
baudrate = 9600
parity = "N"
echo = true
digits = "8-digit"
poll_interval_ms = 20
offline_after = 5
read_config = false
config_function = 7
authorize_attempts = 2
[lines.timing]
status_ms = 200
transaction_ms = 500
totals_ms = 800
running_money_ms = 100
special_function_ms = 300
pause_ms = 68
running_money_delay_ms = 2000
'''
    settings = parse_config(config(line)).lines[0].settings
    assert isinstance(settings, GilbarcoLineSettings)
    assert (settings.baudrate, settings.parity, settings.echo, settings.digits) == (
        9600, Parity.NONE, True, DigitsMode.EIGHT)
    assert settings.config_function is None and settings.authorize_attempts == 2
    assert settings.timing == Timing(status=0.2, transaction=0.5, totals=0.8,
                                     running_money=0.1, special_function=0.3, pause=0.068,
                                     running_money_delay=2.0)
    assert settings.poll_interval.total_seconds() == 0.02 and settings.offline_after == 5


@pytest.mark.parametrize(
    ("line", "pumps", "problem"),
    [
        ("baudrate = 19200", "", "lines[0].baudrate: 19200 is not one of 5760, 5787, 9600"),
        ('digits = "9-digit"', "", "lines[0].digits"),
        ("timing = { status_ms = 50 }", "", "lines[0].timing.status_ms: 50 is out of range"),
        ("timing = { totl_ms = 800 }", "", "lines[0].timing.totl_ms: unknown key"),
        ("config_function = 10", "", "010 is the nozzle report"),
        ("ack_poll = true", "", "lines[0].ack_poll: unknown key"),
        ("", PUMP.format(number=1, address=17, logical=1), "address: 17 is out of range 1..16"),
        ("", PUMP.format(number=1, address=0x50, logical=1), "address: 80 is out of range"),
        ("", PUMP.format(number=1, address=3, logical=17), "logical: 17 is out of range"),
        ("", PUMP.format(number=1, address=3, logical=1) + PUMP.format(
            number=2, address=3, logical=1), "3 is already used by pump 1 on g1"),
    ],
)
def test_refused(line: str, pumps: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config(line, pumps))
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_prices_the_pumps_cannot_show() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config(price="100.00"))
    assert any("4 price digits in standard mode" in p for p in caught.value.problems)
    parse_config(config('digits = "8-digit"', price="100.00"))  # 6 digits in 8-digit mode
    with pytest.raises(ConfigError) as caught:
        parse_config(config(price="7.505"))
    assert any("finer than pump 1 shows" in p for p in caught.value.problems)


def test_seventeen_pumps_on_one_line() -> None:
    pumps = "".join(PUMP.format(number=n, address=min(n, 16), logical=1) for n in range(1, 18))
    with pytest.raises(ConfigError) as caught:
        parse_config(config("", pumps))
    assert any("17 pumps on g1; a Gilbarco line has 16 at most" in p
               for p in caught.value.problems)


def test_docs_describe_every_gilbarco_key() -> None:
    import tomllib
    from pathlib import Path

    from domain.config_reader import Findings
    from edge.config.sections import Context, read_document

    text = config('echo = true\n[lines.timing]\nstatus_ms = 200\n')
    findings = Findings()
    assert read_document(tomllib.loads(text), Context(findings, None, check_files=False))
    leaves = {k for k in findings.keys_read
              if not any(o.startswith(k + ".") for o in findings.keys_read)}
    ours = {k for k in leaves if k.startswith(("lines.", "pumps.address"))}
    assert "lines.timing.running_money_delay_ms" in ours and "lines.echo" in ours
    docs = (Path(__file__).parents[2] / "docs" / "config.md").read_text("utf-8")
    assert sorted(k for k in ours if f"| `{k}` |" not in docs) == []
