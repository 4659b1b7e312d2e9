"""The [printer] section: every key, every refusal named, and the docs in step with the parser."""

from __future__ import annotations

import re
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest

from domain.config_reader import Findings, Table
from drivers.printer import PrinterKind
from edge.config.printer import Printer, check_printer, describe_printer, read_printer
from edge.config.sections import Context

ROOT = Path(__file__).resolve().parents[2]


def read(text: str, *, base: Path | None = None,
         check_files: bool = False) -> tuple[Printer | None, Findings]:
    findings = Findings()
    data = tomllib.loads(text)
    table = Table(data["printer"], "printer", findings, "printer")
    return read_printer(table, Context(findings, base, check_files)), findings


def test_network_printer_with_defaults() -> None:
    printer, findings = read('[printer]\nkind = "network"\naddress = "192.168.1.50"\n')
    assert findings.errors == [] and printer is not None
    t = printer.target
    assert (t.kind, t.host, t.port, t.timeout) == (PrinterKind.NETWORK, "192.168.1.50", 9100, 5)
    assert printer.width == 32 and printer.auto_print and printer.copies == 1
    assert printer.query_status and printer.invoice_url is None
    assert printer.footer == "谢谢惠顾，欢迎再次光临"
    assert printer.job_expiry == timedelta(minutes=60)
    assert printer.spool_dir(Path("/var/lib/forecourt/station.db")) == Path(
        "/var/lib/forecourt/printer-spool")


def test_every_key(tmp_path: Path) -> None:
    printer, findings = read(f'''
[printer]
kind = "serial"
address = "socket://10.0.0.9:4001"
baudrate = 115200
width = 48
auto_print = false
copies = 2
invoice_url = "https://fapiao.example.com/i/{{station_id}}/{{sale_id}}?n={{seq}}"
footer = "谢谢惠顾\\n欢迎再次光临"
spool = "spool"
preview_dir = "{tmp_path / 'previews'}"
query_status = false
timeout_seconds = 3
retry_max_seconds = 120
job_expiry_minutes = 0
''', base=tmp_path, check_files=True)
    assert findings.errors == [] and printer is not None
    assert printer.target.device == "socket://10.0.0.9:4001"
    assert printer.target.baudrate == 115200 and printer.target.timeout == 3
    assert (printer.width, printer.auto_print, printer.copies) == (48, False, 2)
    assert printer.invoice_link(sale_id="S1", seq=7, station_id="XJ-1") == (
        "https://fapiao.example.com/i/XJ-1/S1?n=7")
    assert printer.footer == "谢谢惠顾\n欢迎再次光临"
    assert printer.spool == tmp_path / "spool"
    assert printer.preview_dir == tmp_path / "previews"
    assert not printer.query_status
    assert printer.retry_max == timedelta(seconds=120)
    assert printer.job_expiry is None  # 0: never expire
    assert "Printer: serial socket://10.0.0.9:4001 (80 mm paper)" in describe_printer(printer)


@pytest.mark.parametrize(("address", "expected"), [
    ("usb:0x0416:0x5011", (0x0416, 0x5011, 0x82, 0x01)),
    ("usb:0416:5011:0x81:0x03", (0x0416, 0x5011, 0x81, 0x03)),
])
def test_usb_addresses(address: str, expected: tuple[int, int, int, int]) -> None:
    printer, findings = read(f'[printer]\nkind = "usb"\naddress = "{address}"\n')
    assert findings.errors == [] and printer is not None
    t = printer.target
    assert (t.usb_vendor, t.usb_product, t.usb_in, t.usb_out) == expected


def test_file_printer_never_queries_status(tmp_path: Path) -> None:
    printer, findings = read('[printer]\nkind = "file"\naddress = "out/receipts.bin"\n'
                             'query_status = true\n', base=tmp_path)
    assert findings.errors == [] and printer is not None
    assert printer.target.device == str(tmp_path / "out" / "receipts.bin")
    assert not printer.query_status
    assert findings.warnings == ["printer.query_status: a file cannot answer status queries; "
                                 "not asked"]


@pytest.mark.parametrize(("body", "problem"), [
    ('kind = "bluetooth"\naddress = "x"',
     'printer.kind: "bluetooth" is not one of "network", "serial", "usb", "file"'),
    ('kind = "network"', "printer.address: missing (required)"),
    ('kind = "network"\naddress = "10.0.0.5:99999"',
     'printer.address: "10.0.0.5:99999": the port must be a number 1..65535'),
    ('kind = "serial"\naddress = "COM3"', 'printer.address: "COM3" is not a serial port'),
    ('kind = "usb"\naddress = "0416:5011"', 'printer.address: "0416:5011" is not a USB printer'),
    ('kind = "network"\naddress = "10.0.0.5"\nbaudrate = 9600',
     'printer.baudrate: only used with kind = "serial", not "network"'),
    ('kind = "serial"\naddress = "/dev/ttyS2"\nbaudrate = 1234',
     "printer.baudrate: 1234 is not one of"),
    ('kind = "network"\naddress = "10.0.0.5"\nwidth = 40',
     "printer.width: 40 is not one of 32, 48"),
    ('kind = "network"\naddress = "10.0.0.5"\ncopies = 0', "printer.copies: 0 is out of range"),
    ('kind = "network"\naddress = "10.0.0.5"\ninvoice_url = "https://x.cn/{sale}"',
     "printer.invoice_url: \"https://x.cn/{sale}\": unknown field {sale}"),
    ('kind = "network"\naddress = "10.0.0.5"\ninvoice_url = "https://x.cn/i"',
     "printer.invoice_url: \"https://x.cn/i\" names no sale"),
    ('kind = "network"\naddress = "10.0.0.5"\ninvoice_url = "ftp://x.cn/{sale_id}"',
     "is not an http:// or https:// link"),
    ('kind = "network"\naddress = "10.0.0.5"\ninvoice_url = "https://x.cn/{sale_id"',
     "write a literal brace as {{ or }}"),
    ('kind = "network"\naddress = "10.0.0.5"\nfooter = "a\\u001bb"',
     "printer.footer: only printable characters and line breaks"),
    ('kind = "network"\naddress = "10.0.0.5"\nauto_print = "yes"',
     "printer.auto_print: expected true or false, got a string"),
    ('kind = "network"\naddress = "10.0.0.5"\ntimeout_seconds = 0',
     "printer.timeout_seconds: 0 is out of range 1..60"),
    ('kind = "network"\naddress = "10.0.0.5"\nadress = "10.0.0.6"',
     'printer.adress: unknown key (did you mean "address"?)'),
])
def test_problems_are_named(body: str, problem: str) -> None:
    # As in every section, the whole file is refused when anything is recorded.
    _, findings = read(f"[printer]\n{body}\n")
    assert any(e.startswith(problem) or problem in e for e in findings.errors), findings.errors


def test_paths_are_checked_for_run(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    _, findings = read('[printer]\nkind = "file"\naddress = "nodir/lp0"\nspool = "afile"\n'
                       'preview_dir = "missing/previews"\n', base=tmp_path, check_files=True)
    assert sorted(e.split(":")[0] for e in findings.errors) == [
        "printer.address", "printer.preview_dir", "printer.spool"]


def test_cross_checks_with_the_database(tmp_path: Path) -> None:
    db = tmp_path / "station.db"
    printer, _ = read(f'[printer]\nkind = "file"\naddress = "{db}"\n'
                      f'spool = "{tmp_path}"\npreview_dir = "{tmp_path}"\n')
    assert printer is not None
    findings = Findings()
    check_printer(printer, db, findings)
    assert [e.split(":")[0] for e in findings.errors] == [
        "printer.address", "printer.spool", "printer.preview_dir"]
    fine, _ = read('[printer]\nkind = "network"\naddress = "10.0.0.5"\n')
    assert fine is not None
    clean = Findings()
    check_printer(fine, db, clean)
    assert clean.errors == []


def test_docs_describe_every_key_the_parser_reads() -> None:
    findings = Findings()
    text = ('[printer]\nkind = "serial"\naddress = "/dev/ttyS2"\nbaudrate = 9600\nwidth = 48\n'
            'auto_print = true\nprint_at = "both"\ncopies = 1\ninvoice_url = "https://x.cn/{sale_id}"\n'
            'footer = ""\nspool = "/tmp/s"\npreview_dir = "/tmp/p"\nquery_status = true\n'
            'timeout_seconds = 5\nretry_max_seconds = 60\njob_expiry_minutes = 60\n')
    table = Table(tomllib.loads(text)["printer"], "printer", findings, "printer")
    assert read_printer(table, Context(findings, None, False)) is not None
    assert len(findings.keys_read) == 15
    docs = (ROOT / "docs" / "printer.md").read_text(encoding="utf-8")
    assert sorted(k for k in findings.keys_read if f"| `{k}` |" not in docs) == []
    documented = set(re.findall(r"^\| `(printer\.\w+)` \|", docs, re.MULTILINE))
    assert documented == findings.keys_read
