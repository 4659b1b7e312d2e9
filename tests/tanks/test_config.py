"""The [[gauges]], [[tanks]] and [wetstock] sections: values, defaults and every problem named."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from domain.config_reader import Findings
from drivers.gauges import Register, RegisterKind, Transport, ValueType, WordOrder
from edge.config.tanks import Wetstock, check_tanks, tank_nozzles
from simulator.gauge import demo_tanks_toml

from .conftest import GRADES, PUMPS, STATION_TANKS, parse, settings_of


def test_the_station_tanks_read_as_written() -> None:
    settings = settings_of()
    console, probes = settings.gauges
    assert (console.id, console.url.transport, console.device_id) == ("console", Transport.TCP, 1)
    assert console.word_order is WordOrder.CDAB and console.offline_after == 2
    assert console.poll_interval == timedelta(seconds=10)  # the default
    assert (probes.url.device, probes.url.baudrate, probes.register_type) == (
        "/dev/ttyS3", 9600, RegisterKind.INPUT)
    one, two = settings.tanks
    assert one.probe.volume == Register(6, ValueType.FLOAT32)
    assert one.probe.temperature == Register(4, ValueType.INT16, Decimal("0.1"))
    assert (one.capacity, one.low_stock, one.high_water_mm, one.nozzles) == (
        Decimal(30000), Decimal(3000), Decimal(50), None)
    # address_base = 1: the manual's register 1 is wire address 0.
    assert two.probe.level == Register(0, ValueType.UINT32, Decimal("0.1"))
    assert two.probe.water == Register(2, ValueType.UINT16, Decimal("0.1"))
    assert two.probe.strapping is not None and two.probe.volume is None
    assert two.high_water_mm is None
    assert settings.wetstock == Wetstock(noise=Decimal(10), tolerance=Decimal(20))


def test_no_sections_is_no_tanks() -> None:
    settings, findings = parse("")
    assert settings is not None and settings.tanks == () and settings.gauges == ()
    assert findings.errors == []


def test_the_demo_console_parses_without_a_word() -> None:
    settings, findings = parse(demo_tanks_toml("modbus-tcp://127.0.0.1:5020"))
    assert settings is not None and (findings.errors, findings.warnings) == ([], [])
    assert [t.number for t in settings.tanks] == [1, 2, 3]


def test_every_problem_is_named_at_its_place() -> None:
    text = """
[[gauges]]
id = "console"
url = "modbus-tcp://10.0.0.20:502"
timout_ms = 500

[[gauges]]
id = "console"
url = "modbus-tcp://10.0.0.20:502"

[[gauges]]
id = "bus"
url = "modbus-rtu:///dev/ttyS3"
device_id = 0
word_order = "DCBA"

[[tanks]]
number = 1
grade = "92"
gauge = "nowhere"
capacity = 30000
low_stock = 40000
registers = { level = 0 }

[[tanks]]
number = 2
grade = "95"
gauge = "console"
capacity = "20,000"
strapping = [[0, 0], [100]]
registers = { level = { address = 0, type = "float64" }, volume = 2 }

[[tanks]]
number = 3
grade = "0"
gauge = "console"
capacity = 20000
nozzles = [4, 4]
strapping = [[0, 0], [100, 50]]
registers = { level = 0, volume = 2 }

[wetstock]
noise = 50
delivery_min = 40
"""
    settings, findings = parse(text)
    assert settings is None
    problems = "\n".join(findings.errors)
    for expected in (
        'gauges[2].word_order: "DCBA" is not one of "ABCD", "CDAB"',
        'gauges[0].timout_ms: unknown key (did you mean "timeout_ms"?)',
        'gauges[1].id: "console" is already used by gauges[0]',
        "gauges[1].device_id: 1 on 10.0.0.20:502 is already used by gauge console",
        "gauges[2].device_id: 0 is out of range 1..247",
        'tanks[number=1].gauge: no gauge "nowhere" (gauges: "bus", "console")',
        "tanks[number=1].low_stock: 40000 L is not below the capacity (30000 L)",
        'tanks[number=2].capacity: "20,000" is not a number like "850.5"',
        "tanks[number=2].strapping[1]: expected a [level_mm, litres] pair, got [100]",
        'tanks[number=2].registers.level.type: "float64" is not one of',
        "tanks[number=3].nozzles: nozzle 4 is listed twice",
        "tanks[number=3].registers.volume: give a volume register or a strapping table, not both",
        "wetstock.delivery_min: 40 L must be more than noise (50 L)",
    ):
        assert expected in problems, f"missing {expected!r} in:\n{problems}"


def test_two_tanks_cannot_read_one_register() -> None:
    settings, findings = parse(_GAUGE + _tank(1, "92") + _tank(2, "95", first=1))
    assert settings is None
    assert findings.errors == [
        "tanks[number=2].registers: wire address 1 of gauge g is already read for tank 1"]


def test_a_tank_without_volume_or_strapping_is_refused() -> None:
    settings, findings = parse("""
[[gauges]]
id = "g"
url = "modbus-tcp://10.0.0.20"
[[tanks]]
number = 1
grade = "92"
gauge = "g"
capacity = 1000
registers = { level = 0 }
""")
    assert settings is None
    assert findings.errors == [
        "tanks[number=1].registers.volume: missing: the tank needs a volume register or a "
        "strapping table"]


def test_gauges_sharing_a_port_must_agree_on_its_settings() -> None:
    settings, findings = parse("""
[[gauges]]
id = "a"
url = "modbus-rtu:///dev/ttyS3?baudrate=9600"
[[gauges]]
id = "b"
url = "modbus-rtu:///dev/ttyS3?baudrate=19200"
device_id = 2
""")
    assert settings is None
    assert findings.errors == [
        "gauges[1].url: /dev/ttyS3 is used by gauge a as "
        "modbus-rtu:///dev/ttyS3?baudrate=9600&parity=N; gauges sharing a port or host must "
        "use the same URL"]


def test_floats_are_taken_as_written_and_a_gauge_without_tanks_is_a_warning() -> None:
    settings, findings = parse("""
[[gauges]]
id = "g"
url = "modbus-tcp://10.0.0.20"
[[gauges]]
id = "spare"
url = "modbus-tcp://10.0.0.21"
[[tanks]]
number = 1
grade = "92"
gauge = "g"
capacity = 1000.5
strapping = [[0, 0], [100, 850.5], [200, "1000.5"]]
registers = { level = { address = 0, scale = 0.1 } }
""")
    assert settings is not None
    tank = settings.tanks[0]
    assert tank.capacity == Decimal("1000.5") and tank.probe.level.scale == Decimal("0.1")
    assert tank.probe.strapping is not None
    assert tank.probe.strapping.points[1] == (Decimal(100), Decimal("850.5"))
    assert findings.warnings == ["gauges[1]: no tank uses gauge spare; it is not polled"]


def _check(text: str) -> Findings:
    settings = settings_of(text)
    findings = Findings()
    check_tanks(settings, grade_codes=GRADES, pumps=PUMPS, findings=findings)
    return findings


_GAUGE = '[[gauges]]\nid = "g"\nurl = "modbus-tcp://10.0.0.20"\n'


def _tank(number: int, grade: str, nozzles: str = "", first: int = 0) -> str:
    return (f'[[tanks]]\nnumber = {number}\ngrade = "{grade}"\ngauge = "g"\ncapacity = 1000\n'
            f'{nozzles}registers = {{ level = {first}, volume = {first + 1} }}\n')


def test_nozzles_default_to_every_nozzle_of_the_grade() -> None:
    settings = settings_of(_GAUGE + _tank(1, "92") + _tank(2, "95", first=10))
    assert tank_nozzles(settings, PUMPS) == {1: 1, 3: 1, 2: 2}
    assert _check(_GAUGE + _tank(1, "92")).errors == []


def test_cross_checks_against_grades_and_nozzles() -> None:
    findings = _check(
        _GAUGE
        + _tank(1, "92", "nozzles = [1, 2, 9]\n")
        + _tank(2, "92", "nozzles = [1]\n", first=10)
        + _tank(3, "98", first=20)
    )
    assert findings.errors == [
        'tanks[number=1].nozzles: nozzle 2 sells grade "95", not "92"',
        "tanks[number=1].nozzles: no nozzle 9",
        "tanks[number=2].nozzles: nozzle 1 already draws from tank 1",
        'tanks[number=3].grade: no grade "98" (grades: "0", "92", "95")',
    ]


def test_two_tanks_of_a_grade_must_say_which_nozzles_each_feeds() -> None:
    findings = _check(_GAUGE + _tank(1, "92") + _tank(2, "92", "nozzles = [3]\n", first=10))
    assert findings.errors == [
        'tanks[number=1].nozzles: tanks 1, 2 all hold grade "92": list the nozzles each one feeds']
    findings = _check(_GAUGE + _tank(1, "92", "nozzles = [1]\n"))
    assert findings.warnings == ['tanks: nozzle 3 sells grade "92" but draws from no tank']
    findings = _check(_GAUGE.replace('"g"', '"g"', 1) + _tank(1, "0").replace('"0"', '"95"')
                      + _tank(2, "0", first=10))
    assert findings.errors == [] and findings.warnings == []


DOCS = Path(__file__).parents[2] / "docs" / "tanks.md"


def test_the_documented_examples_parse() -> None:
    blocks = re.findall(r"```toml\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 2
    for block in blocks:
        settings, findings = parse(block)
        assert findings.errors == [] and settings is not None and settings.tanks
    console = settings_of(blocks[0])
    # address_base = 1: the manual's registers 1 and 7 are wire addresses 0 and 6.
    assert console.tanks[0].probe.level.address == 0
    assert console.tanks[0].probe.volume == Register(6, ValueType.FLOAT32)


def test_every_key_read_is_documented() -> None:
    # Readers ask for every key they know, present or not (tank 1 gives each register as a
    # table, so their address, type and scale are asked too).
    _, findings = parse(STATION_TANKS)
    leaves = {k for k in findings.keys_read
              if not any(other.startswith(k + ".") for other in findings.keys_read)}
    docs = DOCS.read_text(encoding="utf-8")
    missing = sorted(key for key in leaves if f"| `{key}` |" not in docs)
    assert len(leaves) > 30 and missing == []
