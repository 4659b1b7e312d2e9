"""The systemd units as shipped: the properties the station relies on, a comment on every
directive, `systemd-analyze verify` where systemd is installed, and the backup service's own
command lines run for real against a real database."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge.config import load_config
from edge.config.model import Storage
from edge.store import Store
from tests.helpers import StationSpec, free_port

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd"
SERVICE = UNITS / "forecourt.service"
BACKUP = UNITS / "forecourt-backup.service"
TIMER = UNITS / "forecourt-backup.timer"
INSTALLED = "/opt/forecourt/.venv/bin/forecourt"
CONFIG = "/etc/forecourt/station.toml"


@dataclass(frozen=True)
class Directive:
    section: str
    key: str
    value: str
    line: int
    comment_above: bool


def parse_unit(path: Path) -> list[Directive]:
    """Directives in file order (systemd.syntax(7): sections, `Key=value`, `#` comments)."""
    directives: list[Directive] = []
    section = ""
    previous = ""
    for number, raw in enumerate(path.read_text("utf-8").splitlines(), 1):
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif line and not line.startswith(("#", ";")):
            assert "=" in line, f"{path.name}:{number}: not a Key=value line: {raw!r}"
            assert not raw.endswith("\\"), f"{path.name}:{number}: keep directives on one line"
            key, _, value = line.partition("=")
            directives.append(Directive(section, key.strip(), value.strip(), number,
                                        previous.startswith("#")))
        previous = line
    return directives


def values(directives: list[Directive], key: str, section: str = "Service") -> list[str]:
    return [d.value for d in directives if (d.section, d.key) == (section, key)]


def one(directives: list[Directive], key: str, section: str = "Service") -> str:
    found = values(directives, key, section)
    assert len(found) == 1, f"{key}= set {len(found)} times"
    return found[0]


@pytest.fixture(scope="module")
def service() -> list[Directive]:
    return parse_unit(SERVICE)


# ------------------------------------------------------------------------------ the daemon


def test_the_daemon_is_supervised(service: list[Directive]) -> None:
    assert one(service, "Type") == "notify"
    assert one(service, "NotifyAccess") == "main"
    assert one(service, "WatchdogSec") == "30"
    assert one(service, "Restart") == "always"
    # Status 2 is an invalid config (edge.cli.EXIT_CONFIG): a person must fix it.
    assert one(service, "RestartPreventExitStatus") == "2 3"
    assert one(service, "StartLimitIntervalSec", "Unit") == "0"
    assert one(service, "ExecStart") == f"{INSTALLED} run --config {CONFIG}"


def test_the_exit_status_the_unit_names_is_the_cli_s() -> None:
    from edge.cli import EXIT_CONFIG

    assert EXIT_CONFIG == 2


def test_the_daemon_reaches_serial_ports_printers_and_sound(service: list[Directive]) -> None:
    assert one(service, "User") == "forecourt"
    groups = one(service, "SupplementaryGroups").split()
    assert "dialout" in groups and "audio" in groups and "lp" in groups
    assert one(service, "DevicePolicy") == "closed"
    allowed = {value.split()[0]: value.split()[1] for value in values(service, "DeviceAllow")}
    assert allowed == {"char-ttyUSB": "rw", "char-ttyS": "rw", "char-ttyACM": "rw",
                       "char-usb": "rw", "char-alsa": "rw"}
    # PrivateDevices= would hide /dev/ttyUSB0 and the /dev/serial/by-id links.
    assert values(service, "PrivateDevices") in ([], ["no"])


def test_the_daemon_is_confined(service: list[Directive]) -> None:
    assert one(service, "NoNewPrivileges") == "yes"
    assert one(service, "ProtectSystem") == "strict"
    assert one(service, "CapabilityBoundingSet") == ""
    assert one(service, "MemoryDenyWriteExecute") == "yes"
    assert one(service, "SystemCallArchitectures") == "native"
    assert values(service, "SystemCallFilter") == ["@system-service",
                                                    "~@privileged @resources"]
    assert one(service, "SystemCallErrorNumber") == "EPERM"
    assert one(service, "RestrictAddressFamilies").split() == ["AF_UNIX", "AF_INET", "AF_INET6"]


def test_the_default_database_folder_is_writable(service: list[Directive]) -> None:
    writable = [Path(p.lstrip("-+")) for v in values(service, "ReadWritePaths") for p in v.split()]
    state = [Path("/var/lib") / d for d in one(service, "StateDirectory").split()]
    default_dir = Storage.path.parent
    assert any(default_dir == p or p in default_dir.parents for p in writable)
    assert default_dir in state  # created, owned by the service user, at every start


def test_the_shipped_example_config_keeps_its_data_where_the_unit_may_write(
        service: list[Directive]) -> None:
    config = load_config(ROOT / "config" / "station.example.toml", check_files=False)
    writable = [Path(p) for v in values(service, "ReadWritePaths") for p in v.split()]
    assert any(p == config.storage.path.parent or p in config.storage.path.parents
               for p in writable)


def test_resources_favour_the_controller(service: list[Directive]) -> None:
    assert int(one(service, "OOMScoreAdjust")) < 0
    assert int(one(service, "Nice")) < 0
    # pyserial's select() cannot take descriptors above 1023.
    assert one(service, "LimitNOFILE") == "1024"


def test_the_drivers_behind_hotplugged_device_classes_load_at_boot(
        service: list[Directive]) -> None:
    """A char-NAME class is looked up in /proc/devices when the unit starts: its driver must be
    registered by then, or the class stays denied until a restart."""
    modules = {line.strip() for line in (UNITS / "forecourt-modules.conf").read_text("utf-8")
               .splitlines() if line.strip() and not line.startswith("#")}
    # Classes of drivers built into Debian's kernel (ttyS, usb) need no module.
    needs = {"char-ttyUSB": "usbserial", "char-ttyACM": "cdc_acm", "char-alsa": "snd"}
    for value in values(service, "DeviceAllow"):
        klass = value.split()[0]
        if klass in needs:
            assert needs[klass] in modules, f"{klass} needs {needs[klass]} loaded at boot"


# ---------------------------------------------------------------------------- every unit


def unit_files() -> list[Path]:
    return sorted(p for p in UNITS.iterdir() if p.suffix in (".service", ".timer"))


@pytest.mark.parametrize("path", unit_files(), ids=lambda p: p.name)
def test_every_directive_has_a_comment_above_it(path: Path) -> None:
    bare = [f"{path.name}:{d.line}: {d.key}=" for d in parse_unit(path) if not d.comment_above]
    assert not bare, "directives without a comment line saying why:\n" + "\n".join(bare)


def test_the_comment_check_can_fail(tmp_path: Path) -> None:
    unit = tmp_path / "x.service"
    unit.write_text("[Service]\n# why\nType=simple\nUser=nobody\n", "utf-8")
    assert [d.comment_above for d in parse_unit(unit)] == [True, False]


@pytest.fixture(scope="module")
def verifiable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The units with ExecStart= pointing at this checkout's forecourt (verify checks that the
    program exists and is executable; /opt/forecourt is where a station has it)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed here (Debian: systemd)")
    folder = tmp_path_factory.mktemp("units")
    here = str(Path(sys.executable).with_name("forecourt"))
    assert os.access(here, os.X_OK), f"{here} is not installed (pip install -e .)"
    for path in unit_files():
        (folder / path.name).write_text(path.read_text("utf-8").replace(INSTALLED, here), "utf-8")
    yield folder


@pytest.mark.parametrize("name", [p.name for p in unit_files()])
def test_systemd_analyze_verify_accepts_the_unit(verifiable: Path, name: str) -> None:
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", name], cwd=verifiable,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    # Unknown keys and bad values are only warnings to systemd: any remark about our file fails.
    remarks = [line for line in done.stderr.splitlines() if name in line]
    assert not remarks, "\n".join(remarks)


# --------------------------------------------------------------------- the backup service


def test_the_backup_timer_runs_the_backup_service() -> None:
    timer = parse_unit(TIMER)
    assert one(timer, "OnCalendar", "Timer")
    assert one(timer, "Persistent", "Timer") == "true"
    assert one(timer, "WantedBy", "Install") == "timers.target"
    backup = parse_unit(BACKUP)
    assert one(backup, "Type") == "oneshot"
    assert one(backup, "User") == "forecourt"
    assert one(backup, "PrivateNetwork") == "yes"
    assert one(backup, "NoNewPrivileges") == "yes"
    assert one(backup, "ProtectSystem") == "strict"


def _command_line(value: str, executable: str, config: Path,
                  env: dict[str, str]) -> list[str]:
    """An ExecStart= value as systemd runs it: `%%` is `%`, `$$` is `$`, `${NAME}` is the
    variable's value as one word, a word `$NAME` its value split into words, none when empty
    (systemd.service(5), "Command lines")."""
    value = value.replace("%%", "%").replace("$$", "$")
    value = value.replace(INSTALLED, executable).replace(CONFIG, str(config))
    argv: list[str] = []
    for word in shlex.split(value):
        bare = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if bare:
            argv += env.get(bare.group(1), "").split()
        else:
            argv.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}",
                               lambda m: env.get(m.group(1), ""), word))
    return argv


def test_the_backup_service_commands_copy_check_and_prune(tmp_path: Path) -> None:
    db = tmp_path / "station.db"
    config = tmp_path / "station.toml"
    config.write_text(StationSpec(port_url="socket://127.0.0.1:9", db=db,
                                  api_port=free_port()).toml(), "utf-8")
    with Store.open(db) as store:
        store.append_event("test.event", {"amount": "300.00"})
    backup = parse_unit(BACKUP)
    env = {k: v for k, v in os.environ.items() if k not in ("JOURNAL_STREAM", "NOTIFY_SOCKET")}
    for value in values(backup, "Environment"):
        name, _, setting = value.partition("=")
        env[name] = setting
    keep = int(env["BACKUP_KEEP"])
    folder = tmp_path / "backups"
    folder.mkdir()
    env["BACKUP_DIR"] = str(folder)
    older = [folder / f"station-200001{day:02d}T033000Z.db" for day in range(1, keep + 3)]
    for path in older:
        path.write_bytes(b"an older copy")
    here = str(Path(sys.executable).with_name("forecourt"))
    for value in values(backup, "ExecStart"):
        argv = _command_line(value, here, config, env)
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120,
                              check=False)
        assert done.returncode == 0, f"{argv}: {done.stdout}{done.stderr}"
    copies = sorted(folder.iterdir())
    assert len(copies) == keep
    newest = copies[-1]
    assert newest not in older and newest.stat().st_size > 0
    with Store.open(newest) as copy:
        assert [e.data for e in copy.events_since(0)] == [{"amount": "300.00"}]


# ------------------------------------------------------------- MemoryDenyWriteExecute=yes

# Run in a child after PR_SET_MDWE (Linux 6.3+), the kernel's form of MemoryDenyWriteExecute=
# (systemd 252 enforces the same rule with seccomp: no mapping both writable and executable, no
# mprotect adding execute).
MDWE_PROGRAM = """
import ctypes, mmap, os, sqlite3, sys, tempfile, time
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
    print("unsupported", ctypes.get_errno())
    sys.exit(3)
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    sys.exit("a writable and executable mapping was allowed: the guard is not on")
except OSError:
    pass
import edge.station  # every module the daemon loads: FastAPI, pydantic-core, uvloop, aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
key = Ed25519PrivateKey.generate()
key.public_key().verify(key.sign(b"command"), b"command")
folder = tempfile.mkdtemp()
db = sqlite3.connect(os.path.join(folder, "t.db"))
db.execute("PRAGMA journal_mode = WAL"); db.execute("CREATE TABLE t (x)"); db.commit()
# A ctypes callback, as pyttsx3's espeak-ng driver registers: a libffi closure.
compare = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))
numbers = (ctypes.c_int * 4)(3, 1, 4, 2)
libc.qsort(numbers, 4, ctypes.sizeof(ctypes.c_int), compare(lambda a, b: a[0] - b[0]))
assert list(numbers) == [1, 2, 3, 4]
try:
    from drivers.voice import espeak_engine
    engine = espeak_engine()
except Exception as exc:
    print("no espeak-ng here:", exc)
else:
    wav = os.path.join(folder, "v.wav")
    engine.setProperty("voice", "sit/cmn-latn-pinyin")
    engine.save_to_file("一号枪 三百元", wav)
    engine.runAndWait()
    deadline = time.monotonic() + 20
    while not (os.path.exists(wav) and os.path.getsize(wav) > 1000):
        assert time.monotonic() < deadline, "espeak-ng wrote no speech"
        time.sleep(0.05)
    print("spoken")
print("ok")
"""


def test_the_daemon_s_native_code_needs_no_writable_executable_memory() -> None:
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, "-c", MDWE_PROGRAM], capture_output=True, text=True,
                          timeout=120, env=env, cwd=ROOT, check=False)
    if done.returncode == 3:
        pytest.skip(f"this kernel has no PR_SET_MDWE: {done.stdout.strip()}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "ok"
