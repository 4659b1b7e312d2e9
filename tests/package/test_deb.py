"""The Debian package: lintian, the units, and install / upgrade / remove in a Debian 12 root.

What runs (as root, which CI is; skipped elsewhere with the reason):

1. `scripts/package` builds the package of HEAD and of HEAD~1 ("the previous commit": its code,
   units and lock, with this tree's packaging recipe, so that a parent commit from before the
   package existed still has one; scripts/package explains). Packages are kept in
   /var/cache/forecourt-tests/debs by commit and recipe, so a second run builds nothing.
2. lintian on HEAD's package with the reviewed overrides (debian/forecourt.lintian-overrides):
   any other error or warning fails. `systemd-analyze verify` on the packaged units.
3. A Debian 12 root made by mmdebstrap from Debian's archive with the packages forecourt
   depends on (cached as a tarball by package list and ISO week: a week's security updates at
   most behind; a cache in the repository is no option, CI starts from a fresh clone), unpacked
   for this run. In it, with the network cut (`unshare -n`): `apt-get install` of HEAD~1's
   package; the service user, folders and modes checked; the station started by hand
   (`forecourt run` as the forecourt user, no systemd as PID 1) against `forecourt simulate` in
   a network namespace with only loopback; a sale over HTTPS with the station's own CA; stop;
   `apt-get install` of HEAD's package over it (an upgrade with a populated database: the
   daemon migrates it at start, keeping the pre-migration copy when the schema moved); start,
   the new version in health, the first sale still there, another sale; `apt-get remove` keeps
   the database; `apt-get purge` deletes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("FORECOURT_TEST_CACHE", "/var/cache/forecourt-tests"))
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
NETNS = f"forecourt-pkg-{os.getpid()}"
TOOLS = ("mmdebstrap", "lintian", "dpkg-deb", "unshare", "chroot", "ip")

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chroot, mounts, namespaces)"),
    pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                       reason=f"needs {', '.join(TOOLS)} (scripts/dev setup installs them)"),
    pytest.mark.timeout(900),
]


def run(*argv: str | Path, check: bool = True, timeout: float = 600, **kw: object
        ) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=timeout, check=False, **kw)  # type: ignore[call-overload]
    if check and done.returncode != 0:
        raise AssertionError(f"{argv} exited {done.returncode}:\n{done.stdout[-3000:]}\n"
                             f"{done.stderr[-3000:]}")
    return done  # type: ignore[no-any-return]


def recipe_digest() -> str:
    digest = hashlib.sha256()
    for path in [ROOT / "scripts" / "package", *sorted((ROOT / "debian").iterdir())]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def build(rev: str) -> Path:
    commit = run("git", "-C", ROOT, "rev-parse", f"{rev}^{{commit}}").stdout.strip()
    folder = CACHE / "debs" / f"{commit[:12]}-{recipe_digest()}"
    found = sorted(folder.glob("forecourt_*.deb"))
    if found:
        return found[0]
    folder.mkdir(parents=True, exist_ok=True)
    # --fast: gzip, not xz (30 s less per package on this machine; the files are the same).
    run(ROOT / "scripts" / "package", "--fast", "--rev", commit, "--out", folder, timeout=900)
    (deb,) = folder.glob("forecourt_*.deb")
    return deb


@pytest.fixture(scope="module")
def debs() -> tuple[Path, Path]:
    """(HEAD~1's package, HEAD's package)."""
    if run("git", "-C", ROOT, "rev-parse", "--verify", "HEAD~1", check=False).returncode:
        pytest.skip("a clone without HEAD~1 (shallow): no previous commit to upgrade from")
    started = time.monotonic()
    packages = build("HEAD~1"), build("HEAD")
    print(f"packages ready in {time.monotonic() - started:.0f} s: "
          f"{', '.join(f'{p.name} {p.stat().st_size // 1024} KiB' for p in packages)}")
    return packages


def control(deb: Path, field: str) -> str:
    return run("dpkg-deb", "--field", deb, field).stdout.strip()


def test_lintian_finds_nothing_but_the_reviewed_overrides(debs: tuple[Path, Path]) -> None:
    started = time.monotonic()
    done = run("lintian", "--fail-on", "error,warning", "--tag-display-limit", "0", debs[1],
               check=False)
    print(f"lintian: {time.monotonic() - started:.0f} s")
    problems = [line for line in done.stdout.splitlines() if line[:2] in ("E:", "W:")]
    assert done.returncode == 0 and not problems, "\n".join(problems[:40]) + done.stderr


def test_the_packaged_units_verify(debs: tuple[Path, Path], tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    run("dpkg-deb", "-x", debs[1], tmp_path)
    units = sorted((tmp_path / "lib" / "systemd" / "system").iterdir())
    assert {u.name for u in units} == {"forecourt.service", "forecourt-backup.service",
                                       "forecourt-backup.timer"}
    # As installed, but with ExecStart= at the extracted program (verify checks that it is an
    # executable file; /opt/forecourt is where a station has it).
    program = tmp_path / "opt" / "forecourt" / ".venv" / "bin" / "forecourt"
    assert os.access(program, os.X_OK)
    folder = tmp_path / "verify"
    folder.mkdir()
    for unit in units:
        text = unit.read_text("utf-8").replace("/opt/forecourt/.venv/bin/forecourt", str(program))
        (folder / unit.name).write_text(text, "utf-8")
    for unit in units:
        done = run("systemd-analyze", "verify", "--man=no", unit.name, cwd=folder, check=False)
        remarks = [line for line in done.stderr.splitlines() if unit.name in line]
        assert done.returncode == 0 and not remarks, done.stderr


# ------------------------------------------------------------------- the Debian root


def root_packages(deb: Path) -> list[str]:
    """What the package depends on, by name (versions are the archive's), and what the test
    itself runs in the root."""
    names = []
    for alternative in control(deb, "Depends").split(","):
        names.append(alternative.split("|")[0].split("(")[0].strip())
    return sorted({*names, "iproute2"})


def debian_root_tarball(deb: Path) -> Path:
    packages = root_packages(deb)
    year, week, _ = date.today().isocalendar()
    key = hashlib.sha256(f"{SUITE} {' '.join(packages)}".encode()).hexdigest()[:12]
    tarball = CACHE / f"{SUITE}-{key}-{year}w{week:02d}.tar.zst"
    if tarball.is_file():
        return tarball
    CACHE.mkdir(parents=True, exist_ok=True)
    for stale in CACHE.glob(f"{SUITE}-{key}-*.tar.zst"):
        stale.unlink()
    started = time.monotonic()
    partial = tarball.with_suffix(".partial.tar.zst")
    run("mmdebstrap", "--variant=apt", "--quiet", f"--include={','.join(packages)}", SUITE,
        partial, MIRROR, timeout=900)
    partial.rename(tarball)
    print(f"Debian root made in {time.monotonic() - started:.0f} s "
          f"({tarball.stat().st_size // 2**20} MiB compressed)")
    return tarball


class Root:
    """The unpacked Debian root, with /proc mounted, and a network namespace that has only a
    loopback interface for the station, its simulator and the sale."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.processes: list[subprocess.Popen[bytes]] = []

    def chroot(self, *argv: str, user: str | None = None, check: bool = True,
               netns: bool = False, timeout: float = 300, stdin: str | None = None
               ) -> subprocess.CompletedProcess[str]:
        prefix = ["ip", "netns", "exec", NETNS] if netns else ["unshare", "-n"]
        who = [f"--userspec={user}:{user}"] if user else []
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
               "DEBIAN_FRONTEND": "noninteractive", "HOME": "/root"}
        return run(*prefix, "chroot", *who, self.path, *argv, check=check, timeout=timeout,
                   env=env, input=stdin)

    def start(self, name: str, *argv: str, user: str | None = None,
              outside: bool = False) -> subprocess.Popen[bytes]:
        """A process in the network namespace: in the root, or (`outside`) this machine's own
        program, for test equipment that is not the package under test."""
        who = [f"--userspec={user}:{user}"] if user else []
        log = (self.path / "tmp" / f"{name}.log").open("ab")
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        where = [] if outside else ["chroot", *who, str(self.path)]
        process = subprocess.Popen(["ip", "netns", "exec", NETNS, *where, *argv],
                                   stdout=log, stderr=log, env=env)
        self.processes.append(process)
        return process

    def log(self, name: str) -> str:
        return (self.path / "tmp" / f"{name}.log").read_text(errors="replace")[-4000:]

    def stop(self, process: subprocess.Popen[bytes]) -> int:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(30)
        finally:
            self.processes.remove(process)

    def kill_all(self) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait(10)
        self.processes.clear()


@pytest.fixture(scope="module")
def debian_root(debs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[Root]:
    tarball = debian_root_tarball(debs[1])
    path = tmp_path_factory.mktemp("debian-root")
    started = time.monotonic()
    run("tar", "--zstd", "-xpf", tarball, "-C", path)
    print(f"Debian root unpacked in {time.monotonic() - started:.1f} s")
    root = Root(path)
    for deb, name in zip(debs, ("previous.deb", "current.deb"), strict=True):
        shutil.copy(deb, path / "tmp" / name)
    shutil.copy(Path(__file__).with_name("sale.py"), path / "tmp" / "sale.py")
    run("mount", "-t", "proc", "proc", path / "proc")
    run("ip", "netns", "add", NETNS)
    try:
        run("ip", "netns", "exec", NETNS, "ip", "link", "set", "lo", "up")
        yield root
    finally:
        root.kill_all()
        run("ip", "netns", "delete", NETNS, check=False)
        run("umount", "--lazy", path / "proc", check=False)
        shutil.rmtree(path, ignore_errors=True)


STATION = """\
[station]
id = "XJ-PKG-0001"
name = "安装测试站"
timezone = "Asia/Shanghai"

[storage]
path = "/var/lib/forecourt/station.db"

[api]
listen = "127.0.0.1:8443"
tls_cert = "/etc/forecourt/tls/station.crt"
tls_key = "/etc/forecourt/tls/station.key"
redirect_listen = "127.0.0.1:8080"

[controller]
max_flow_litres_per_minute = "1000"

[[grades]]
code = "92"
name = "92号汽油"
price = "7.50"

[[lines]]
id = "line1"
port = "socket://127.0.0.1:4001"
reply_timeout_ms = 200

[[pumps]]
number = 1
line = "line1"
address = 0x50

[[pumps.nozzles]]
number = 1
logical = 1
grade = "92"
"""


def sell(root: Root) -> dict[str, object]:
    """The station started by hand, one sale over HTTPS, the station stopped again."""
    station = root.start("station", "/usr/bin/forecourt", "run", "--config",
                         "/etc/forecourt/station.toml", user="forecourt")
    try:
        done = root.chroot("/usr/bin/python3", "/tmp/sale.py", "https://127.0.0.1:8443",
                           "/etc/forecourt/tls/ca.crt", "http://127.0.0.1:8090", "att", "1111",
                           netns=True, check=False, timeout=180)
        assert done.returncode == 0, (done.stdout + done.stderr + root.log("station")
                                      + root.log("simulator"))
        result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
        redirect = root.chroot("/usr/bin/python3", "-c",
                               "import http.client as h; c = h.HTTPConnection('127.0.0.1', 8080);"
                               " c.request('GET', '/'); r = c.getresponse();"
                               " print(r.status, r.getheader('location'))", netns=True)
        assert redirect.stdout.split() == ["308", "https://127.0.0.1:8443/"]
    finally:
        assert root.stop(station) == 0, root.log("station")
    return result


def start_simulator(root: Root) -> subprocess.Popen[bytes]:
    """The pump: this checkout's simulator in the namespace, running through the upgrade as a
    real pump would (its fill counter and totals go on; a restarted simulator would repeat a
    fill number the station already recorded, and the station rightly records no sale)."""
    forecourt = str(ROOT / ".venv" / "bin" / "forecourt")
    return root.start("simulator", forecourt, "simulate", "--pumps", "1", "--nozzles-per-pump",
                      "1", "--flow", "600", "--listen", "127.0.0.1:4001", "--control",
                      "127.0.0.1:8090", outside=True)


def test_install_upgrade_and_remove_offline(debian_root: Root, debs: tuple[Path, Path]) -> None:
    root = debian_root
    previous, current = (control(d, "Version") for d in debs)
    apt = ("apt-get", "install", "-y", "-q", "--no-install-recommends")
    started = time.monotonic()

    # A fresh install with no network: the Debian packages it needs are on the station.
    root.chroot(*apt, "/tmp/previous.deb")
    assert root.chroot("/usr/bin/forecourt", "--version").stdout.split() == ["forecourt",
                                                                           previous]
    ids = root.chroot("id", "forecourt").stdout
    assert all(f"({g})" in ids for g in ("forecourt", "dialout", "lp", "audio")), ids
    state = root.chroot("stat", "-c", "%a %U %G", "/var/lib/forecourt").stdout.split()
    assert state == ["700", "forecourt", "forecourt"]
    config = root.chroot("stat", "-c", "%a %U %G", "/etc/forecourt/station.toml").stdout.split()
    assert config == ["640", "root", "forecourt"]
    assert (root.path / "etc" / "forecourt" / "tls" / "ca.crt").is_file()
    key = root.chroot("stat", "-c", "%a %U", "/etc/forecourt/tls/station.key").stdout.split()
    assert key == ["600", "forecourt"]
    assert "tls_cert" in (root.path / "etc/forecourt/station.toml").read_text()
    # The byte-code was compiled at install: the service cannot write into /opt.
    assert list((root.path / "opt/forecourt/.venv/lib").glob("python3*/site-packages/edge/"
                                                              "__pycache__/*.pyc"))

    # The station's own config (pumps on the simulator), checked as the service reads it.
    (root.path / "etc/forecourt/station.toml").write_text(STATION, "utf-8")
    root.chroot("/usr/bin/forecourt", "check-config", "/etc/forecourt/station.toml",
                user="forecourt")
    root.chroot("/usr/bin/forecourt", "user", "add", "att", "--role", "attendant",
                "--pin-stdin", "--config", "/etc/forecourt/station.toml", user="forecourt",
                stdin="1111\n")
    start_simulator(root)
    first = sell(root)
    assert first["version"] == previous and first["sales"] == 1

    # The upgrade, offline, over a populated database.
    db = root.path / "var/lib/forecourt/station.db"
    schema_before = root.chroot("/usr/bin/forecourt", "db", "inspect", "--config",
                                "/etc/forecourt/station.toml", user="forecourt").stdout
    root.chroot(*apt, "/tmp/current.deb")
    assert root.chroot("/usr/bin/forecourt", "--version").stdout.split()[1] == current
    assert (root.path / "etc/forecourt/station.toml").read_text("utf-8") == STATION
    second = sell(root)
    assert second["version"] == current and second["sales"] == 2
    schema_after = root.chroot("/usr/bin/forecourt", "db", "inspect", "--config",
                               "/etc/forecourt/station.toml", user="forecourt").stdout
    before, after = (text.split("schema version ")[1].split(",")[0]
                     for text in (schema_before, schema_after))
    if before != after:
        # The daemon migrated the database at its first start, keeping the copy first.
        assert (db.parent / f"station.db.pre-v{after}.bak").is_file()
    root.chroot("/usr/bin/forecourt", "db", "verify", "--config",
                "/etc/forecourt/station.toml", user="forecourt")

    # Remove keeps the books; purge deletes them.
    root.chroot("apt-get", "remove", "-y", "-q", "forecourt")
    assert db.is_file() and not (root.path / "opt/forecourt/.venv").exists()
    assert not (root.path / "usr/bin/forecourt").exists()
    root.chroot("apt-get", "purge", "-y", "-q", "forecourt")
    assert not (root.path / "var/lib/forecourt").exists()
    assert not (root.path / "etc/forecourt").exists()
    print(f"install, sale, upgrade, sale, remove, purge: {time.monotonic() - started:.0f} s")
