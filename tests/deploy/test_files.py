"""Files and folders the daemon and the command line make are 0600 and 0700 whatever the umask;
secrets stay out of messages; a secret file open to others is refused at config check.

Each case runs in a child process with a permissive umask (0o022, 0o000), as a shell or a cron
job would leave it: the library code on its own (modes set where files are made) and the real
command line (which also sets the umask at start).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pytest

from domain.config_values import broker_url
from edge.config import ConfigError, load_config
from edge.store import Store
from tests.helpers import StationSpec

ROOT = Path(__file__).resolve().parents[2]
UMASKS = [0o022, 0o000]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes(root: Path) -> dict[str, int]:
    """Every file and folder under `root` (not `root` itself) with its mode."""
    return {str(p.relative_to(root)): mode(p) for p in sorted(root.rglob("*"))}


def assert_private(found: dict[str, int], root: Path, *, public: tuple[str, ...] = ()) -> None:
    loose = {name: oct(m) for name, m in found.items() if name not in public and (
        m != (0o700 if (root / name).is_dir() else 0o600))}
    assert loose == {}, f"not private: {loose}"


def run_python(script: str, umask: int, *args: str) -> str:
    """`script` in a child Python with `umask`, from the checkout; its stdout."""
    prelude = f"import os; os.umask({umask:#o})\n"
    done = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(script), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def run_cli(umask: int, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The real `forecourt` command line, started with `umask`."""
    prelude = (f"import os, sys; os.umask({umask:#o})\n"
               "from edge.cli import main\nraise SystemExit(main(sys.argv[1:]))\n")
    return subprocess.run([sys.executable, "-c", prelude, *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=120)


# ------------------------------------------------------------------- what the code makes


LIBRARY = """
import asyncio, json, sqlite3, sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from drivers.files import write_durably
from drivers.printer.spool import Job, Spool
from drivers.printer.transport import PrinterKind, Target, connector
from drivers.voice import Announcement, Output, Priority, Speaker, SpeechSettings
from edge.store import Store
from edge.store.archive_files import TableFile
from edge.store.maintenance import backup
from sync.keys import generate
from edge.store.schema import MIGRATIONS, migrate
from tests.deploy.test_files import modes

root = Path(sys.argv[1])
seen = {}
# The database, its WAL and shared memory, in folders that do not exist yet.
with Store.open(root / "state" / "lib" / "station.db") as store:
    store.upsert_user("att", role="attendant", pin="1111")
    seen.update(modes(root))  # while open: -wal and -shm are there
    backup(store, root / "backups" / "daily" / "station-1.db")
# The copy kept before a migration (of a database at schema 1, as a release left it).
(root / "old").mkdir(mode=0o700)
old = sqlite3.connect(root / "old" / "station.db", isolation_level=None)
migrate(old, MIGRATIONS[:1])
old.close()
os.chmod(root / "old" / "station.db", 0o600)
Store.open(root / "old" / "station.db").close()
# An archive's files.
(root / "archives").mkdir(mode=0o700)
table = TableFile(root / "archives", "2026-01", "sales")
table.write(["id"], [("s1",)])
table.close()
write_durably(root / "archives" / "2026-01.json", b"{}")
# The print spool and a printer that is a file.
spool = Spool(root / "spool" / "printer")
spool.add(lambda n: Job(n, "receipt", "s1", 1, datetime.now(UTC), b"receipt"))
spool.quarantine(spool.add(lambda n: Job(n, "receipt", "s2", 1, datetime.now(UTC), b"x")).number)
printer = connector(Target(PrinterKind.FILE, "receipts.prn",
                           device=str(root / "receipts.prn")))()
printer.open(); printer._raw(b"receipt"); printer.close()
# Keys.
generate(root / "keys" / "cloud")

# Voice output kept as files (real espeak-ng).
async def speak():
    settings = SpeechSettings(output=Output.FILES, folder=root / "voice" / "out")
    async with Speaker(settings, zone=ZoneInfo("Asia/Shanghai")) as speaker:
        speaker.announce(Announcement("一号枪已授权", Priority.SERVICE, "authorized"))
        await speaker.drained()
    assert speaker.said == 1, speaker.alarm

asyncio.run(speak())
seen.update(modes(root))
print(json.dumps(seen))
"""


@pytest.mark.parametrize("umask", UMASKS, ids=oct)
def test_files_the_code_makes_are_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    found = json.loads(run_python(LIBRARY, umask, str(tmp_path)))
    for expected in ("state/lib/station.db", "state/lib/station.db-wal",
                     "state/lib/station.db-shm", "backups/daily/station-1.db",
                     "old/station.db.pre-v1.bak".replace("v1", f"v{_current()}"),
                     "archives/2026-01.sales.jsonl.gz", "archives/2026-01.json",
                     "spool/printer/0000000001.job", "spool/printer/last-number",
                     "spool/printer/corrupt", "receipts.prn", "keys/cloud/cloud.key",
                     "voice/out"):
        assert expected in found, sorted(found)
    assert any(name.startswith("voice/out/") and name.endswith(".wav") for name in found)
    # The public key is meant to be copied to every station; it alone stays readable.
    assert found["keys/cloud/cloud.pub"] == 0o644
    assert_private(found, tmp_path, public=("keys/cloud/cloud.pub",))


def _current() -> int:
    from edge.store.schema import MIGRATIONS

    return len(MIGRATIONS)


@pytest.mark.parametrize("umask", UMASKS, ids=oct)
def test_files_the_command_line_makes_are_private(tmp_path: Path, umask: int) -> None:
    db = tmp_path / "state" / "station.db"
    config = tmp_path / "station.toml"
    config.write_text(StationSpec(port_url="socket://127.0.0.1:1", db=db, api_port=1).toml())
    os.chmod(config, 0o600)
    done = run_cli(umask, "user", "add", "att", "--role", "attendant", "--pin", "-",
                   "--config", str(config), stdin="1111\n")
    assert done.returncode == 0, done.stderr
    done = run_cli(umask, "db", "backup", "--config", str(config), "--to",
                   str(tmp_path / "backups" / "station-1.db"))
    assert done.returncode == 0, done.stderr
    done = run_cli(umask, "db", "archive", "--config", str(config), "--before",
                   date.today().isoformat(), "--to", str(tmp_path / "archives"))
    assert done.returncode == 0, done.stderr
    done = run_cli(umask, "keys", "generate", "--out", str(tmp_path / "keys"))
    assert done.returncode == 0, done.stderr
    found = modes(tmp_path)
    assert {"state/station.db", "backups/station-1.db", "keys/cloud.key"} <= set(found)
    assert_private(found, tmp_path, public=("keys/cloud.pub",))


def test_a_database_left_readable_by_an_older_release_is_made_private(tmp_path: Path) -> None:
    db = tmp_path / "station.db"
    with Store.open(db) as store:
        store.upsert_user("att", role="attendant", pin="1111")
    os.chmod(db, 0o644)
    with Store.open(db):
        assert mode(db) == 0o600
        assert mode(db.with_name("station.db-wal")) == 0o600


def test_the_command_line_sets_a_private_umask_and_gives_it_back() -> None:
    script = """
    import os
    from edge import cli
    seen = []
    def check(args):
        seen.append(os.umask(0o077))
        return 0
    cli.cmd_check_config = check
    parser = cli.build_parser
    cli.build_parser = lambda: (lambda p: (p.set_defaults(func=check), p)[1])(parser())
    cli.main(["check-config", "x.toml"])
    print(oct(seen[0]), oct(os.umask(0)))
    """
    assert run_python(script, 0o002).split() == ["0o77", "0o2"]


# ------------------------------------------------------------------- secrets


SECRET = "Hunter2-s3cret"


@pytest.mark.parametrize("url", [
    f"mqtt://station:{SECRET}@mqtt.example.com",
    f"mqtts://station:{SECRET}@mqtt.example.com:8883",
    f"mqtts://station:{SECRET}@mqtt.example.com:99999",
    f"mqtts://station:{SECRET}@",
    f"mqtts://station:{SECRET}@host/path?x=1",
    f"http://station:{SECRET}@mqtt.example.com",
    f"mqtts://:{SECRET}@[::1",
])
def test_a_broker_url_with_a_password_is_refused_without_showing_it(url: str) -> None:
    with pytest.raises(ValueError) as refused:
        broker_url(url)
    message = str(refused.value)
    assert SECRET not in message
    assert "password_file" in message or "URL" in message


def _sync_config(tmp_path: Path, extra: str) -> Path:
    key = tmp_path / "cloud.pub"
    key.write_text("MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n")
    spec = StationSpec(port_url="socket://127.0.0.1:1", db=tmp_path / "station.db", api_port=1)
    config = tmp_path / "station.toml"
    config.write_text(spec.toml() + '\n[sync]\nbroker = "mqtts://mqtt.example.com:8883"\n'
                      f'cloud_public_key = "{key}"\nusername = "XJ-TEST-0001"\n' + extra)
    return config


@pytest.mark.parametrize("loose", [0o644, 0o640, 0o604, 0o660])
def test_a_password_file_open_to_others_is_refused_with_the_fix(tmp_path: Path,
                                                                 loose: int) -> None:
    secret = tmp_path / "mqtt.pass"
    secret.write_text(SECRET + "\n")
    os.chmod(secret, loose)
    config = _sync_config(tmp_path, f'password_file = "{secret}"\n')
    with pytest.raises(ConfigError) as refused:
        load_config(config)
    text = "\n".join(refused.value.problems)
    assert f"sync.password_file: {secret} is open to other users (mode {loose:04o})" in text
    assert f"chmod 600 {secret}" in text
    assert SECRET not in text
    os.chmod(secret, 0o600)
    assert load_config(config).sync is not None
    os.chmod(secret, loose)
    assert load_config(config, check_files=False).sync is not None  # `--no-files`


def test_a_tls_key_open_to_others_is_refused(tmp_path: Path) -> None:
    cert, key = tmp_path / "station.crt", tmp_path / "station.key"
    cert.write_text("certificate\n")
    key.write_text("private key\n")
    os.chmod(cert, 0o644)  # a certificate is public
    os.chmod(key, 0o640)
    config = _sync_config(tmp_path, f'client_cert = "{cert}"\nclient_key = "{key}"\n')
    with pytest.raises(ConfigError) as refused:
        load_config(config)
    assert [p for p in refused.value.problems if "chmod" in p] == [
        f"sync.client_key: {key} is open to other users (mode 0640); "
        f"a secret must be its owner's alone: chmod 600 {key}"]
