"""The configuration file: parsing, every check with its message, describe(), the shipped files."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import tomllib
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from domain.config_reader import Findings, one_of
from drivers import registry
from drivers.dart.config import Parity
from edge.config import (
    Authorize,
    ConfigError,
    StationConfig,
    describe,
    load_config,
    parse_config,
)
from edge.config.sections import Context, read_document

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "configs"
EXAMPLE = ROOT / "config" / "station.example.toml"
MINIMAL = ROOT / "config" / "minimal.toml"

# A valid station: two lines, three pumps, four nozzles. Cases below change one thing in it.
BASE = """\
[station]
id = "XJ-URC-0001"
name = "北京路加油站"
timezone = "Asia/Shanghai"

[[grades]]
code = "92"
name = "92号汽油"
price = "7.50"

[[grades]]
code = "95"
name = "95号汽油"
price = "8.02"

[[lines]]
id = "line1"
port = "socket://127.0.0.1:4001"

[[lines]]
id = "line2"
port = "loop://"

[[pumps]]
number = 1
line = "line1"
address = 0x50

[[pumps.nozzles]]
number = 1
logical = 1
grade = "92"

[[pumps.nozzles]]
number = 2
logical = 2
grade = "95"

[[pumps]]
number = 2
line = "line1"
address = 0x51

[[pumps.nozzles]]
number = 3
logical = 1
grade = "92"

[[pumps]]
number = 3
line = "line2"
address = 0x50

[[pumps.nozzles]]
number = 4
logical = 1
grade = "95"
"""

SYNC = """
[sync]
broker = "mqtts://mqtt.example.com:8883"
username = "XJ-URC-0001"
password_file = "/etc/forecourt/mqtt.pass"
cloud_public_key = "/etc/forecourt/cloud.pub"
"""


def edit(old: str, new: str, text: str = BASE) -> str:
    """`text` with `old` replaced; `old` must occur exactly once, so a case cannot go stale."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert caught.value.problems, "a ConfigError must carry at least one problem"
    return caught.value.problems


# -- what loads --------------------------------------------------------------------------------


def test_base_loads_with_its_values() -> None:
    config = parse_config(BASE)
    assert config.station.id == "XJ-URC-0001"
    assert config.station.zone == ZoneInfo("Asia/Shanghai")
    assert [g.price for g in config.grades] == [Decimal("7.50"), Decimal("8.02")]
    assert all(type(g.price) is Decimal for g in config.grades)
    assert [p.number for p in config.pumps] == [1, 2, 3]
    assert config.pumps[0].settings.address == 0x50
    assert config.warnings == ()
    assert config.sync is None


def test_defaults_fill_what_is_left_out() -> None:
    config = load_config(MINIMAL, check_files=False)
    line, pump = config.lines[0], config.pumps[0]
    assert line.protocol == "dart"
    dart = line.settings
    assert (dart.baudrate, dart.parity) == (9600, Parity.ODD)
    assert dart.reply_timeout == timedelta(milliseconds=25)
    assert dart.poll_interval == timedelta(0)
    assert (dart.retries, dart.offline_after) == (3, 3)
    assert (pump.settings.ack_poll, pump.settings.one_command_per_block) == (False, False)
    assert pump.settings.price_readback is True
    assert pump.authorize is Authorize.ATTENDANT
    assert (pump.decimals.volume, pump.decimals.amount, pump.decimals.price) == (2, 2, 2)
    assert config.storage.path == Path("/var/lib/forecourt/station.db")
    api = config.api
    assert (api.host, api.port, api.listen) == ("127.0.0.1", 8080, "127.0.0.1:8080")
    assert api.session_ttl == timedelta(hours=8)
    assert (api.pin_lockout_attempts, api.pin_lockout) == (5, timedelta(minutes=15))
    controller = config.controller
    assert controller.sale_check_tolerance_steps == 1
    assert (controller.preset_overrun_volume, controller.preset_overrun_amount) == (
        Decimal("0.5"), Decimal("5"))
    assert controller.max_flow_lpm == Decimal("130")
    assert controller.unreadable_after == timedelta(seconds=60)
    assert controller.lift_timeout == timedelta(seconds=180)
    assert config.sync is None


def test_every_key_is_read_with_its_value() -> None:
    config = load_config(DATA / "full.toml", check_files=False)
    assert config.station.timezone == "Asia/Urumqi"
    assert config.storage.path == DATA / "data" / "station.db"  # relative to the file
    assert (config.api.host, config.api.port, config.api.listen) == ("::1", 8443, "[::1]:8443")
    assert config.api.session_ttl == timedelta(hours=12)
    assert (config.api.pin_lockout_attempts, config.api.pin_lockout) == (3, timedelta(minutes=30))
    assert config.controller.sale_check_tolerance_steps == 2
    assert config.controller.lift_timeout == timedelta(seconds=90)
    assert config.grade("-10").price == Decimal("7.455")
    assert config.controller.max_flow_lpm == Decimal("90")
    assert config.controller.preset_overrun_volume == Decimal("0.25")
    assert config.controller.preset_overrun_amount == Decimal("2")
    assert config.controller.unreadable_after == timedelta(seconds=30)
    line = config.line("bus_A").settings
    assert line.port == "rfc2217://10.0.0.9:4002"
    assert (line.baudrate, line.parity) == (19200, Parity.EVEN)
    assert (line.reply_timeout, line.poll_interval) == (
        timedelta(milliseconds=50),
        timedelta(milliseconds=20),
    )
    assert (line.retries, line.offline_after) == (5, 7)
    pump = config.pump(12)
    assert (pump.settings.address, pump.authorize) == (0x6F, Authorize.AUTO)
    assert (pump.settings.ack_poll, pump.settings.one_command_per_block) == (True, True)
    assert pump.settings.price_readback is False
    assert (pump.decimals.volume, pump.decimals.amount, pump.decimals.price) == (3, 1, 3)
    assert pump.nozzles[0].logical == 8
    sync = config.sync
    assert sync is not None
    assert (sync.host, sync.port, sync.tls) == ("mqtt.example.com", 8883, True)
    assert sync.username == "XJ-KRY-0007"
    assert sync.password_file == DATA / "secrets" / "mqtt.pass"
    assert sync.cloud_public_key == DATA / "secrets" / "cloud.pub"
    assert sync.client_key == DATA / "secrets" / "station.key"


def test_price_gets_at_least_cents_and_keeps_a_third_place() -> None:
    assert parse_config(edit('price = "7.50"', 'price = "7.5"')).grade("92").price == Decimal(
        "7.50"
    )
    assert str(parse_config(edit('price = "7.50"', 'price = "8"')).grade("92").price) == "8.00"
    three_places = BASE.replace("address = 0x", "decimals = { price = 3 }\naddress = 0x")
    config = parse_config(edit('price = "7.50"', 'price = "7.505"', three_places))
    assert str(config.grade("92").price) == "7.505"
    assert {pump.decimals.price for pump in config.pumps} == {3}


def test_config_objects_are_frozen() -> None:
    config = parse_config(BASE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.pumps[0].number = 5  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.station = config.station  # type: ignore[misc]


def test_helpers_find_nozzles_pumps_and_grades() -> None:
    config = parse_config(BASE)
    pump, nozzle = config.nozzle(4)
    assert (pump.number, nozzle.logical, nozzle.grade) == (3, 1, "95")
    assert [p.number for p in config.pumps_on("line1")] == [1, 2]
    assert config.pumps_on("nowhere") == ()
    assert config.grade("95").name == "95号汽油"
    assert config.line("line2").settings.port == "loop://"
    with pytest.raises(KeyError):
        config.nozzle(99)
    with pytest.raises(KeyError):
        config.grade("98")
    with pytest.raises(KeyError):
        config.pump(9)


def test_line_without_pumps_is_a_warning_not_an_error() -> None:
    config = parse_config(edit('line = "line2"\naddress = 0x50', 'line = "line1"\naddress = 0x52'))
    assert config.warnings == ("lines[1]: no pump is on line line2; it stays closed",)


def test_password_over_plain_mqtt_is_a_warning() -> None:
    config = parse_config(BASE + SYNC.replace("mqtts://mqtt.example.com:8883", "mqtt://broker"))
    assert config.sync is not None and (config.sync.port, config.sync.tls) == (1883, False)
    assert config.warnings == (
        "sync.password_file: the password crosses the network in clear over mqtt://",
    )


# -- every check, with its message --------------------------------------------------------------

NOZZLE_3 = 'number = 3\nlogical = 1\ngrade = "92"'
NOZZLE_4 = 'number = 4\nlogical = 1\ngrade = "95"'
PUMP_3_NOZZLES = '\n[[pumps.nozzles]]\nnumber = 4\nlogical = 1\ngrade = "95"\n'

CASES = [
    # cross-field checks
    ("duplicate grade code", 'code = "95"', 'code = "92"',
     'grades[1].code: "92" is already used by grades[0]'),
    ("duplicate line id", 'id = "line2"', 'id = "line1"',
     'lines[1].id: "line1" is already used by lines[0]'),
    ("two lines on one port", 'port = "loop://"', 'port = "socket://127.0.0.1:4001"',
     "lines[1].port: socket://127.0.0.1:4001 is already used by line line1"),
    ("duplicate pump number", 'number = 2\nline = "line1"', 'number = 1\nline = "line1"',
     "pumps[1].number: 1 is already used by pumps[0]"),
    ("duplicate address on a line", "address = 0x51", "address = 0x50",
     "pumps[number=2].address: 0x50 is already used by pump 1 on line1"),
    ("pump on unknown line", 'line = "line2"', 'line = "line9"',
     'pumps[number=3].line: no line "line9" (lines: "line1", "line2")'),
    ("nozzle on unknown grade", NOZZLE_4, NOZZLE_4.replace('"95"', '"98"'),
     'pumps[number=3].nozzles[0].grade: no grade "98" (grades: "92", "95")'),
    ("duplicate station-wide nozzle number", NOZZLE_3, NOZZLE_3.replace("3", "1", 1),
     "pumps[number=2].nozzles[0].number: 1 is already used on pump 1 "
     "(pumps[number=1].nozzles[0])"),
    ("duplicate logical nozzle on a pump", "number = 2\nlogical = 2", "number = 2\nlogical = 1",
     "pumps[number=1].nozzles[1].logical: 1 is already used by nozzle 1 on this pump"),
    ("pump without nozzles", PUMP_3_NOZZLES, "",
     "pumps[number=3].nozzles: missing: at least one [[pumps.nozzles]] entry is required"),
    ("unknown protocol", 'port = "loop://"', 'port = "loop://"\nprotocol = "tokheim"',
     'lines[1].protocol: "tokheim" is not a protocol this station drives '
     f"({one_of(registry.names())})"),
    ("DART nozzle without totals", "number = 2\nlogical = 2", "number = 2\nlogical = 9",
     "pumps[number=1].nozzles[1].logical: 9: a DART pump reports totals for logical nozzles "
     "1..8 only (CD101), so sales on it could not be reconciled"),
    ("price finer than the pump shows", "address = 0x51", "address = 0x51\ndecimals = {price=0}",
     'pumps[number=2].nozzles[0]: grade "92" costs 7.50, finer than pump 2 shows '
     "(decimals.price = 0)"),
    ("price longer than the pump shows", 'price = "8.02"', 'price = "99999.99"',
     'pumps[number=1].nozzles[1]: grade "95" costs 99999.99, more than pump 1 shows (6 digits)'),
    # values
    ("float price", 'price = "8.02"', "price = 8.02",
     "grades[1].price: 8.02 is a TOML float, and a float literal cannot be trusted for money; "
     'quote it: price = "8.02"'),
    ("integer price", 'price = "8.02"', "price = 8",
     'grades[1].price: prices are decimal strings; quote it: price = "8"'),
    ("price with a comma", 'price = "8.02"', 'price = "8,02"',
     'grades[1].price: "8,02" is not a price like "7.50" (at most 3 decimals)'),
    ("price with four places", 'price = "8.02"', 'price = "8.0215"',
     'grades[1].price: "8.0215" is not a price like "7.50" (at most 3 decimals)'),
    ("zero price", 'price = "8.02"', 'price = "0.00"',
     'grades[1].price: "0.00" must be greater than 0'),
    ("bad timezone", '"Asia/Shanghai"', '"Asia/Beijing"',
     'station.timezone: "Asia/Beijing" is not an IANA time zone, e.g. "Asia/Shanghai"'),
    ("timezone in the wrong case", '"Asia/Shanghai"', '"asia/shanghai"',
     'station.timezone: "asia/shanghai" is not an IANA time zone; did you mean "Asia/Shanghai"?'),
    ("machine-dependent timezone", '"Asia/Shanghai"', '"localtime"',
     'station.timezone: "localtime" is not an IANA time zone, e.g. "Asia/Shanghai"'),
    ("station id with a space", 'id = "XJ-URC-0001"', 'id = "XJ URC"',
     'station.id: "XJ URC" is not valid; expected letters, digits and "-", 1 to 64'),
    ("empty station name", 'name = "北京路加油站"', 'name = " "',
     "station.name: must not be empty"),
    ("missing required key", 'timezone = "Asia/Shanghai"\n', "",
     "station.timezone: missing (required)"),
    ("grade code as a number", 'code = "95"', "code = 95",
     'grades[1].code: expected a string, got an integer; quote it: code = "95"'),
    ("address out of range", "address = 0x51", "address = 0x70",
     "pumps[number=2].address: 0x70 is out of range 0x50..0x6F"),
    ("address as a string", "address = 0x51", 'address = "0x51"',
     "pumps[number=2].address: expected an integer, got a string"),
    ("logical nozzle out of range", "number = 2\nlogical = 2", "number = 2\nlogical = 16",
     "pumps[number=1].nozzles[1].logical: 16 is out of range 1..15"),
    ("pump number 0", 'number = 2\nline = "line1"', 'number = 0\nline = "line1"',
     "pumps[number=0].number: 0 is out of range 1..999"),
    ("authorize mode", "address = 0x51", 'address = 0x51\nauthorize = "always"',
     'pumps[number=2].authorize: "always" is not one of "attendant", "auto"'),
    ("decimals above 3", "address = 0x51", "address = 0x51\ndecimals = { volume = 4 }",
     "pumps[number=2].decimals.volume: 4 is out of range 0..3"),
    ("parity", 'port = "loop://"', 'port = "loop://"\nparity = "M"',
     'lines[1].parity: "M" is not one of "N", "E", "O"'),
    ("baudrate", 'port = "loop://"', 'port = "loop://"\nbaudrate = 4800',
     "lines[1].baudrate: 4800 is not one of 9600, 19200"),
    ("boolean as a string", "[[grades]]\ncode = \"92\"",
     '[controller]\nprice_readback = false\n\n[[grades]]\ncode = "92"',
     "controller.price_readback: moved: pumps are asked whether they answer the price "
     "read-back; to turn it off for one pump, set price_readback = false in its [[pumps]] "
     "entry"),
    ("serial port URL scheme", 'port = "loop://"', 'port = "http://10.0.0.9:4001"',
     'lines[1].port: "http://10.0.0.9:4001": http:// is not supported; use a path or '
     "socket://, rfc2217://, loop://, spy://, hwgrep://"),
    ("serial port without a port number", 'port = "loop://"', 'port = "socket://10.0.0.9"',
     'lines[1].port: "socket://10.0.0.9" has no port; write it like socket://10.0.0.9:4001'),
    ("serial port that is no URL", 'port = "loop://"', 'port = "COM3"',
     'lines[1].port: "COM3" is not a serial port; use a device path like "/dev/ttyUSB0" or a '
     'URL like "socket://10.0.0.9:4001"'),
    ("listen without a port", '[[grades]]\ncode = "92"',
     '[api]\nlisten = "localhost"\n\n[[grades]]\ncode = "92"',
     'api.listen: "localhost" has no port; write it like "127.0.0.1:8080"'),
    ("listen on an IPv6 address without brackets", '[[grades]]\ncode = "92"',
     '[api]\nlisten = "::1:8080"\n\n[[grades]]\ncode = "92"',
     'api.listen: "::1:8080": an IPv6 address goes in brackets, like [::1]'),
    ("session time as text", '[[grades]]\ncode = "92"',
     '[api]\nsession_ttl_minutes = "8h"\n\n[[grades]]\ncode = "92"',
     'api.session_ttl_minutes: expected an integer, got a string'),
]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [pytest.param(old, new, expected, id=name) for name, old, new, expected in CASES],
)
def test_each_check_fires_with_its_message(old: str, new: str, expected: str) -> None:
    found = problems(edit(old, new))
    assert expected in found, "\n".join(found)


SYNC_CASES = [
    ("broker URL scheme", "mqtts://mqtt.example.com:8883", "https://mqtt.example.com",
     'sync.broker: "https://mqtt.example.com" must start with mqtt:// or mqtts://'),
    ("broker with credentials", "mqtts://mqtt.example.com:8883", "mqtts://u:p@mqtt.example.com",
     'sync.broker: "mqtts://u:***@mqtt.example.com": put the user in username and the password '
     "in password_file, not in the URL"),
    ("broker port out of range", "mqtts://mqtt.example.com:8883", "mqtts://mqtt.example.com:0",
     'sync.broker: "mqtts://mqtt.example.com:0": the port must be a number 1..65535'),
    ("broker with a path", "mqtts://mqtt.example.com:8883", "mqtts://mqtt.example.com/x",
     'sync.broker: "mqtts://mqtt.example.com/x": a broker URL has no path or query'),
    ("TLS files over plain mqtt", 'broker = "mqtts://mqtt.example.com:8883"',
     'broker = "mqtt://mqtt.example.com"\nca_file = "/etc/forecourt/ca.pem"',
     "sync.ca_file: only used with mqtts://; the broker URL is mqtt://"),
    ("client certificate without its key", 'username = "XJ-URC-0001"',
     'username = "XJ-URC-0001"\nclient_cert = "/etc/forecourt/station.crt"',
     "sync.client_key: missing: client_cert and client_key go together"),
    ("password without a user", 'username = "XJ-URC-0001"\n', "",
     "sync.password_file: a password needs a username"),
    ("missing cloud key", 'cloud_public_key = "/etc/forecourt/cloud.pub"\n', "",
     "sync.cloud_public_key: missing (required)"),
    ("unknown key in sync", 'username = "XJ-URC-0001"', 'user = "XJ-URC-0001"',
     'sync.user: unknown key (did you mean "username"?)'),
]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [pytest.param(old, new, expected, id=name) for name, old, new, expected in SYNC_CASES],
)
def test_each_sync_check_fires_with_its_message(old: str, new: str, expected: str) -> None:
    found = problems(BASE + edit(old, new, SYNC))
    assert expected in found, "\n".join(found)


@pytest.mark.parametrize(
    "port",
    ["/dev/serial/by-id/usb-FTDI_FT232R-if00-port0", "socket://[::1]:4001",
     "rfc2217://10.0.0.9:4002?logging=debug", "loop://", "spy:///dev/ttyS1?file=/tmp/x",
     "hwgrep://0403:6001"],
)
def test_serial_port_forms_accepted(port: str) -> None:
    config = parse_config(edit('port = "loop://"', f'port = "{port}"'))
    assert config.line("line2").settings.port == port


@pytest.mark.parametrize(
    ("broker", "host", "port", "tls"),
    [("mqtt://10.0.0.2", "10.0.0.2", 1883, False), ("mqtts://broker", "broker", 8883, True),
     ("mqtts://[fd00::2]:9883", "fd00::2", 9883, True)],
)
def test_broker_forms_accepted(broker: str, host: str, port: int, tls: bool) -> None:
    sync = parse_config(BASE + edit("mqtts://mqtt.example.com:8883", broker, SYNC)).sync
    assert sync is not None
    assert (sync.host, sync.port, sync.tls) == (host, port, tls)


def test_sync_section_as_given_is_valid() -> None:
    sync = parse_config(BASE + SYNC).sync
    assert sync is not None
    assert (sync.broker, sync.host, sync.port, sync.tls) == (
        "mqtts://mqtt.example.com:8883", "mqtt.example.com", 8883, True
    )


def test_missing_sections_are_each_reported() -> None:
    assert problems("") == [
        "station: missing (required)",
        "grades: missing: at least one [[grades]] entry is required",
        "lines: missing: at least one [[lines]] entry is required",
        "pumps: missing: at least one [[pumps]] entry is required",
    ]


def test_a_grade_with_a_bad_price_is_still_known_to_its_nozzles() -> None:
    # One mistake, one message: the nozzles of grade 95 are not also "on an unknown grade".
    assert problems(edit('price = "8.02"', "price = 8.02")) == [
        "grades[1].price: 8.02 is a TOML float, and a float literal cannot be trusted for "
        'money; quote it: price = "8.02"'
    ]


def test_too_many_pumps_on_a_line() -> None:
    pumps = "".join(
        f'[[pumps]]\nnumber = {n}\nline = "line1"\naddress = {0x50 + (n - 1) % 32}\n'
        f'[[pumps.nozzles]]\nnumber = {n}\nlogical = 1\ngrade = "92"\n'
        for n in range(1, 34)
    )
    text = BASE.split("[[pumps]]", 1)[0] + pumps
    found = problems(text)
    assert "lines[0]: 33 pumps on line1; a DART line has 32 at most" in found
    assert "pumps[number=33].address: 0x50 is already used by pump 1 on line1" in found


def test_five_problems_are_all_reported() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(DATA / "five_problems.toml", check_files=False)
    assert caught.value.problems == [
        'station.timezone: "Mars/Olympus_Mons" is not an IANA time zone, e.g. "Asia/Shanghai"',
        "grades[0].price: 7.5 is a TOML float, and a float literal cannot be trusted for money; "
        'quote it: price = "7.5"',
        'lines[0].parity: "M" is not one of "N", "E", "O"',
        "pumps[number=2].address: 0x50 is already used by pump 1 on line1",
        'pumps[number=2].nozzles[0].grade: no grade "98" (grades: "92")',
    ]


# -- unknown keys ---------------------------------------------------------------------------------


def test_unknown_key_at_top_level() -> None:
    assert problems('colour = "red"\n' + BASE) == ["colour: unknown key"]


def test_unknown_section_at_top_level() -> None:
    assert problems(BASE + '\n[fax]\nport = "/dev/usb/lp0"\n') == ["fax: unknown section"]


def test_unknown_key_nested_with_a_suggestion() -> None:
    assert problems(edit("address = 0x51", "address = 0x51\nadress = 0x51")) == [
        'pumps[number=2].adress: unknown key (did you mean "address"?)'
    ]
    assert problems(edit(NOZZLE_4, NOZZLE_4 + "\ncolor = 1")) == [
        "pumps[number=3].nozzles[0].color: unknown key"
    ]
    assert problems(edit("address = 0x51", "address = 0x51\ndecimals = { prise = 2 }")) == [
        'pumps[number=2].decimals.prise: unknown key (did you mean "price"?)'
    ]
    assert problems(edit('name = "北京路加油站"', 'name = "北京路加油站"\nzone = "UTC"')) == [
        'station.zone: unknown key (did you mean "timezone"?)'
    ]


# -- reading files --------------------------------------------------------------------------------


def test_toml_syntax_error_gives_line_and_column() -> None:
    found = problems(edit('name = "北京路加油站"', 'name "北京路加油站"'))
    assert found == [
        "invalid TOML: Expected '=' after a key in a key/value pair (at line 3, column 6)"
    ]


def test_missing_file_is_one_clear_problem(tmp_path: Path) -> None:
    path = tmp_path / "station.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == ["cannot read the file: it does not exist"]
    assert str(caught.value) == f"{path}: cannot read the file: it does not exist"


def test_directory_and_binary_files_are_one_clear_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert caught.value.problems == ["cannot read the file: it is a directory"]
    binary = tmp_path / "station.toml"
    binary.write_bytes(b"[station]\nname = \"\xff\"\n")
    with pytest.raises(ConfigError) as caught:
        load_config(binary)
    assert caught.value.problems == ["cannot read the file: not UTF-8 text (byte 18)"]


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "station.toml"
    path.write_bytes(b"\xef\xbb\xbf" + BASE.encode())
    assert load_config(path, check_files=False).station.id == "XJ-URC-0001"


def test_error_names_every_problem_with_its_source() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(edit("address = 0x51", "address = 0x70\ncolour = 1"), source="s.toml")
    assert str(caught.value).splitlines() == [
        "s.toml: pumps[number=2].address: 0x70 is out of range 0x50..0x6F",
        "s.toml: pumps[number=2].colour: unknown key",
    ]


def _station_files(tmp_path: Path) -> Path:
    """BASE with a relative database path and a [sync] section whose files are relative."""
    first_grade = '[[grades]]\ncode = "92"'
    text = edit(first_grade, '[storage]\npath = "data/station.db"\n\n' + first_grade)
    text += SYNC.replace("/etc/forecourt/", "keys/")
    path = tmp_path / "station.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_check_files_reports_each_missing_file(tmp_path: Path) -> None:
    path = _station_files(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [
        f"storage.path: directory {tmp_path / 'data'} does not exist",
        f"sync.password_file: {tmp_path / 'keys' / 'mqtt.pass'} does not exist",
        f"sync.cloud_public_key: {tmp_path / 'keys' / 'cloud.pub'} does not exist",
    ]
    # The same file is valid when files are not checked: it may be deployed elsewhere.
    assert load_config(path, check_files=False).storage.path == tmp_path / "data" / "station.db"


def test_check_files_accepts_existing_files_relative_to_the_config(tmp_path: Path) -> None:
    path = _station_files(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "mqtt.pass").write_text("secret\n")
    (tmp_path / "keys" / "mqtt.pass").chmod(0o600)  # a secret is its owner's alone
    (tmp_path / "keys" / "cloud.pub").mkdir()  # a directory is not a key file
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [
        f"sync.cloud_public_key: {tmp_path / 'keys' / 'cloud.pub'} is not a file"
    ]
    (tmp_path / "keys" / "cloud.pub").rmdir()
    (tmp_path / "keys" / "cloud.pub").write_text("MCowBQYDK2VwAyEA\n")
    config = load_config(path)
    assert config.sync is not None
    assert config.sync.cloud_public_key == tmp_path / "keys" / "cloud.pub"
    assert config.storage.path == tmp_path / "data" / "station.db"


# -- describe() and check-config ----------------------------------------------------------------


def test_describe_mentions_every_pump_nozzle_grade_and_line() -> None:
    config = load_config(EXAMPLE, check_files=False)
    text = describe(config)
    for line in config.lines:
        assert f"Line {line.id}: {line.settings.port}" in text
    for pump in config.pumps:
        assert re.search(rf"^  Pump {pump.number}: address 0x{pump.settings.address:02X}\b",
                         text, re.M)
        for nozzle in pump.nozzles:
            grade = config.grade(nozzle.grade)
            expected = (
                f"    Nozzle {nozzle.number} (logical {nozzle.logical}): "
                f"{grade.name} [{grade.code}] at {grade.price}"
            )
            assert expected in text.splitlines()
    assert "Station XJ-URC-0001: 乌鲁木齐北京路加油站 (Asia/Shanghai)" in text
    assert "Sync: off" in text


def test_describe_puts_pumps_under_their_line_and_names_the_sync_target() -> None:
    config = parse_config(BASE + SYNC)
    lines = describe(config).splitlines()
    line2 = lines.index(next(x for x in lines if x.startswith("Line line2")))
    assert lines[line2 + 1].startswith("  Pump 3:")
    assert (
        "Sync: mqtts://mqtt.example.com:8883 as XJ-URC-0001; commands verified with "
        "/etc/forecourt/cloud.pub"
    ) in lines


def test_describe_lists_warnings() -> None:
    config = parse_config(edit('line = "line2"\naddress = 0x50', 'line = "line1"\naddress = 0x52'))
    assert describe(config).splitlines()[-1] == (
        "Warning: lines[1]: no pump is on line line2; it stays closed"
    )


def check_config(*args: str) -> subprocess.CompletedProcess[str]:
    """`forecourt check-config ARGS` as a user runs it."""
    command = [sys.executable, "-m", "edge.cli", "check-config", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_check_config_prints_one_line_per_problem_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "station.toml"
    path.write_text(edit("address = 0x51", "address = 0x50\ncolour = 1"), encoding="utf-8")
    done = check_config("--no-files", str(path))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"{path}: pumps[number=2].colour: unknown key",
        f"{path}: pumps[number=2].address: 0x50 is already used by pump 1 on line1",
    ]


def test_check_config_checks_files_unless_told_not_to(tmp_path: Path) -> None:
    path = _station_files(tmp_path)
    done = check_config(str(path))
    assert (done.returncode, len(done.stderr.splitlines())) == (2, 3)
    done = check_config("--no-files", str(path))
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == describe(load_config(path, check_files=False)) + "\n"


# -- the shipped files ----------------------------------------------------------------------------


def test_example_config_is_a_full_station() -> None:
    config = load_config(EXAMPLE, check_files=False)
    assert isinstance(config, StationConfig)
    assert [line.id for line in config.lines] == ["line1", "line2"]
    assert len(config.pumps) == 4
    assert [g.name for g in config.grades] == ["92号汽油", "95号汽油", "0号柴油"]
    assert {p.authorize for p in config.pumps} == {Authorize.ATTENDANT, Authorize.AUTO}
    assert config.sync is None
    assert config.warnings == ()


def test_example_sync_section_is_valid_once_uncommented() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    head, marker, tail = text.partition("# [sync]")
    assert marker, "the example keeps a commented [sync] section"
    uncommented = marker + tail
    uncommented = "\n".join(line.removeprefix("# ") for line in uncommented.splitlines())
    config = parse_config(head + uncommented)
    assert config.sync is not None
    assert (config.sync.host, config.sync.port) == ("mqtt.example.com", 8883)
    assert config.sync.ca_file == Path("/etc/forecourt/ca.pem")


def test_minimal_config_is_minimal() -> None:
    """Every key left in the minimal file is required: removing any one breaks it."""
    lines = MINIMAL.read_text(encoding="utf-8").splitlines()
    load_config(MINIMAL, check_files=False)
    keys = [i for i, line in enumerate(lines) if re.match(r"^\w+ = ", line)]
    assert len(keys) == 14
    for i in keys:
        with pytest.raises(ConfigError) as caught:
            parse_config("\n".join(lines[:i] + lines[i + 1 :]))
        assert caught.value.problems[0].endswith("missing (required)")


def test_docs_describe_every_key_the_parser_reads() -> None:
    findings = Findings()
    data = tomllib.loads((DATA / "full.toml").read_text(encoding="utf-8"))
    assert read_document(data, Context(findings, None, check_files=False)) is not None
    leaves = {k for k in findings.keys_read if not any(o.startswith(k + ".") for o in
                                                       findings.keys_read)}
    assert len(leaves) >= 40
    docs = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    missing = sorted(key for key in leaves if f"| `{key}` |" not in docs)
    assert missing == []
