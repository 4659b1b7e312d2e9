"""What the benches share: child processes that always end, station configs, /proc readings,
the console's WebSocket view and a description of the machine.

Every process a bench starts is a ``Child``: its own session (a Ctrl-C at the terminal reaches
the bench only, which then stops its children in order: daemon before simulator), a parent-death
signal (a bench killed outright still takes them down), output to a log file in the run's
temporary folder (shown when something fails), and on exit SIGTERM, then SIGKILL after a grace
period. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
from websockets.asyncio.client import ClientConnection

__all__ = [
    "BenchError",
    "Child",
    "Daemon",
    "ForecourtWatch",
    "IfsfSimulatorProcess",
    "SimulatorProcess",
    "daemon",
    "die_with_parent",
    "forecourt_command",
    "free_port",
    "free_udp_port",
    "ifsf_simulator",
    "ifsf_station_toml",
    "machine",
    "percentile",
    "revision",
    "simulator",
    "station_toml",
]

STOP_GRACE = 10.0  # seconds a child has to exit after SIGTERM before it is killed
START_TIMEOUT = 30.0  # seconds a child has to become ready
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# Loaded before any fork: the child must not run the dynamic loader between fork and exec.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


class BenchError(Exception):
    """A bench could not run (a child failed to start or died); the message says why."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_udp_port() -> int:
    """A UDP port nobody holds on any address (an IFSF LAN's heartbeats stay in its run)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", 0))
        return int(sock.getsockname()[1])


def forecourt_command() -> list[str]:
    """The ``forecourt`` entry point of this interpreter's environment."""
    script = Path(sys.executable).with_name("forecourt")
    if script.exists():
        return [str(script)]
    found = shutil.which("forecourt")
    if found:
        return [found]
    return [sys.executable, "-m", "edge.cli"]


def die_with_parent() -> None:
    # Runs in the child between fork and exec: one system call, nothing that could lock.
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Child:
    """A subprocess that is stopped on exit, whatever happened; use ``with Child(...) as c:``."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError(f"{self.name} was not started")
        return self._process

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after ``STOP_GRACE``; the exit status (None if never run)."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                return process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                process.kill()
        return process.wait()

    def check_alive(self) -> None:
        status = self.process.poll()
        if status is not None:
            raise BenchError(f"{self.name} exited with status {status}:\n{self.log_tail()}")

    @contextmanager
    def explained(self) -> Iterator[None]:
        """A ``BenchError`` raised within carries the end of this child's log as it was then."""
        try:
            yield
        except BenchError as error:
            raise BenchError(f"{error}\n--- {self.name}, last lines of its log:\n"
                             f"{self.log_tail()}") from None

    def log(self) -> str:
        try:
            return self.log_path.read_text("utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    # ---- what the kernel says about it ------------------------------------------------------

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process, all threads (/proc/PID/stat utime + stime)."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces; field 3 on
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS

    def memory_kb(self) -> dict[str, int]:
        """VmRSS (resident now) and VmHWM (resident at peak), in kB, from /proc/PID/status."""
        found = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0])
        return found


@dataclass
class SimulatorProcess:
    """``forecourt simulate`` in its own process, with its line URL and control API URL."""

    child: Child
    url: str
    control_url: str

    async def frames(self, client: httpx.AsyncClient) -> int:
        """Frames the simulated pumps have received so far (its own count, from /state)."""
        response = await client.get(f"{self.control_url}/state")
        response.raise_for_status()
        return int(response.json()["stats"]["frames"])


@asynccontextmanager
async def simulator(
    folder: Path, pumps: int, *, line_faithful: bool, baudrate: int
) -> AsyncIterator[SimulatorProcess]:
    """Start it on free ports, wait until it listens; stopped when the block is left."""
    argv = [*forecourt_command(), "simulate", "--listen", "127.0.0.1:0",
            "--control", "127.0.0.1:0", "--pumps", str(pumps), "--baudrate", str(baudrate)]
    if line_faithful:
        argv.append("--line-faithful")
    mode = "line-faithful" if line_faithful else "unpaced"
    with Child(f"simulator ({pumps} pumps, {mode})", argv,
               folder / f"simulator-{pumps}-{mode}.log") as child:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            text = child.log()
            line = re.search(r"DART line on (socket://\S+)", text)
            control = re.search(r"control API on (http://\S+)", text)
            if line and control:
                break
            child.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"{child.name} did not start:\n{child.log_tail()}")
            await asyncio.sleep(0.05)
        with child.explained():
            yield SimulatorProcess(child, line.group(1), control.group(1))


@dataclass
class IfsfSimulatorProcess:
    """``forecourt simulate --protocol ifsf`` in its own process, with its control API URL."""

    child: Child
    control_url: str

    async def counters(self, client: httpx.AsyncClient) -> dict[str, int]:
        """The nodes' own link counters, summed (``GET /state``): messages ``received`` from
        the controller and ``sent`` to it, ``lost`` (one message per read), ``undelivered``
        and ``errors``."""
        response = await client.get(f"{self.control_url}/state")
        response.raise_for_status()
        total: dict[str, int] = {}
        for node in response.json()["nodes"]:
            for key, value in node["stats"].items():
                total[key] = total.get(key, 0) + int(value)
        return total


@asynccontextmanager
async def ifsf_simulator(folder: Path, *, nodes: int, fps: int, udp_port: int,
                         heartbeat_interval: float, prices: str = "92=7.50,95=8.02",
                         flow_lpm: int = 40) -> AsyncIterator[IfsfSimulatorProcess]:
    """TQC nodes 1.1.. of ``fps`` fuelling points (nozzle 1 product 92, nozzle 2 product 95),
    heartbeating to 127.255.255.255 on ``udp_port``; stopped when the block is left."""
    argv = [*forecourt_command(), "simulate", "--protocol", "ifsf", "--nodes", str(nodes),
            "--fps", str(fps), "--nozzles", "2", "--prices", prices, "--flow", str(flow_lpm),
            "--udp-port", str(udp_port), "--heartbeat-interval", f"{heartbeat_interval:g}",
            "--heartbeat-to", "127.255.255.255", "--control", "127.0.0.1:0"]
    with Child(f"IFSF simulator ({nodes} nodes x {fps} FPs)", argv,
               folder / f"simulator-ifsf-{nodes}x{fps}.log") as child:
        deadline = time.monotonic() + START_TIMEOUT
        while not (control := re.search(r"control API on (http://\S+)", child.log())):
            child.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"{child.name} did not start:\n{child.log_tail()}")
            await asyncio.sleep(0.05)
        with child.explained():
            yield IfsfSimulatorProcess(child, control.group(1))


def ifsf_station_toml(*, db: Path, api_port: int, nodes: int, fps: int, udp_port: int,
                      heartbeat_interval: int, station_id: str = "BENCH-IFSF",
                      sections: str = "") -> str:
    """A station of ``nodes`` x ``fps`` attendant-mode IFSF fuelling points (pump 1 is node
    1.1 FP1, pump ``fps`` + 1 is node 1.2 FP1...), two nozzles each (92, 95) with the grades,
    prices and product numbers of ``ifsf_simulator``; heartbeats to 127.255.255.255."""
    out = [
        f'[station]\nid = "{station_id}"\nname = "bench"\ntimezone = "Asia/Shanghai"\n',
        f"[storage]\npath = {str(db)!r}\n",
        f'[api]\nlisten = "127.0.0.1:{api_port}"\nmetrics_open = true\n',
        sections,
        '[[grades]]\ncode = "92"\nname = "92号汽油"\nprice = "7.50"\n',
        '[[grades]]\ncode = "95"\nname = "95号汽油"\nprice = "8.02"\n',
        f'[[lines]]\nid = "lan1"\nprotocol = "ifsf"\nnode = 1\nudp_port = {udp_port}\n'
        f"heartbeat_interval_seconds = {heartbeat_interval}\n"
        f'heartbeat_to = "127.255.255.255"\nlisten = "127.0.0.1:0"\n',
        '[[lines.products]]\ngrade = "92"\nnumber = 92\n',
        '[[lines.products]]\ngrade = "95"\nnumber = 95\n',
    ]
    for index in range(nodes * fps):
        node, fp = 1 + index // fps, 1 + index % fps
        out.append(f'[[pumps]]\nnumber = {index + 1}\nline = "lan1"\nnode = {node}\n'
                   f'fuelling_point = {fp}\nauthorize = "attendant"\n')
        for logical, grade in ((1, "92"), (2, "95")):
            out.append(f"[[pumps.nozzles]]\nnumber = {2 * index + logical}\n"
                       f'logical = {logical}\ngrade = "{grade}"\n')
    return "\n".join(out)


def station_toml(*, line_url: str, db: Path, api_port: int, pumps: int, baudrate: int,
                 reply_timeout_ms: int = 100, station_id: str = "BENCH-0001",
                 auto_from: int | None = None, sections: str = "") -> str:
    """A station of ``pumps`` attendant-mode dispensers at 0x50.., two nozzles each (92, 95);
    pumps numbered ``auto_from`` and up are in auto mode, ``sections`` is more TOML.

    The grades match what ``forecourt simulate --nozzles-per-pump 2`` reports (DC7), so the
    price read-back and the grade checks pass as on a correctly configured site. The reply
    timeout is 100 ms rather than DART's 25: the pumps are a process on a machine that is busy
    with the controller too, and a socket:// line gets the network's latency added (docs/config.md).
    """
    out = [
        f'[station]\nid = "{station_id}"\nname = "bench"\ntimezone = "Asia/Shanghai"\n',
        f"[storage]\npath = {str(db)!r}\n",
        f'[api]\nlisten = "127.0.0.1:{api_port}"\nmetrics_open = true\n',
        sections,
        '[[grades]]\ncode = "92"\nname = "92号汽油"\nprice = "7.50"\n',
        '[[grades]]\ncode = "95"\nname = "95号汽油"\nprice = "8.02"\n',
        f'[[lines]]\nid = "line1"\nport = "{line_url}"\nprotocol = "dart"\n'
        f'baudrate = {baudrate}\nparity = "O"\nreply_timeout_ms = {reply_timeout_ms}\n',
    ]
    for index in range(pumps):
        mode = "auto" if auto_from is not None and index + 1 >= auto_from else "attendant"
        out.append(f'[[pumps]]\nnumber = {index + 1}\nline = "line1"\n'
                   f'address = {0x50 + index:#x}\nauthorize = "{mode}"\n')
        for logical, grade in ((1, "92"), (2, "95")):
            out.append(f"[[pumps.nozzles]]\nnumber = {2 * index + logical}\n"
                       f'logical = {logical}\ngrade = "{grade}"\n')
    return "\n".join(out)


@dataclass
class Daemon:
    """``forecourt run`` in its own process, with the base URL of its API."""

    child: Child
    base_url: str

    async def all_online(self, client: httpx.AsyncClient, pumps: int) -> bool:
        try:
            response = await client.get(f"{self.base_url}/api/v1/health")
        except httpx.TransportError:
            return False
        if response.status_code != 200:
            return False
        lines = response.json().get("lines", [])
        return sum(int(line.get("pumps_online", 0)) for line in lines) >= pumps

    async def metric(self, client: httpx.AsyncClient, name: str) -> float:
        """Sum of a metric's samples (every label) in ``GET /metrics``."""
        response = await client.get(f"{self.base_url}/metrics")
        response.raise_for_status()
        total = 0.0
        for line in response.text.splitlines():
            if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
                total += float(line.rsplit(" ", 1)[1])
        return total


@asynccontextmanager
async def daemon(config: Path, api_port: int, pumps: int) -> AsyncIterator[Daemon]:
    """Start it, wait until its API answers and every pump is online; stopped on leaving."""
    argv = [*forecourt_command(), "run", "--config", str(config), "--log-level", "WARNING"]
    with Child(f"daemon ({pumps} pumps)", argv,
               config.with_name(f"daemon-{pumps}.log")) as child:
        running = Daemon(child, f"http://127.0.0.1:{api_port}")
        deadline = time.monotonic() + START_TIMEOUT
        async with httpx.AsyncClient(timeout=2.0) as client:
            while not await running.all_online(client, pumps):
                child.check_alive()
                if time.monotonic() > deadline:
                    raise BenchError(f"{child.name}: pumps not online within "
                                     f"{START_TIMEOUT:.0f} s:\n{child.log_tail()}")
                await asyncio.sleep(0.1)
        with child.explained():
            yield running


class ForecourtWatch:
    """The console's view of the forecourt, kept from the daemon's WebSocket messages."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.pumps: dict[int, dict[str, Any]] = {}

    def nozzle_is(self, pump: int, nozzle: int, state: str) -> Callable[[], bool]:
        def check() -> bool:
            view = self.pumps.get(pump)
            return view is not None and any(
                n["number"] == nozzle and n["state"] == state for n in view["nozzles"])
        return check

    def pump_is(self, pump: int, state: str) -> Callable[[], bool]:
        def check() -> bool:
            view = self.pumps.get(pump)
            return view is not None and view["state"] == state
        return check

    async def until(self, condition: Callable[[], bool], timeout: float, what: str) -> float:
        """Read messages until ``condition`` holds; ``perf_counter()`` when the last arrived."""
        arrived = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                while not condition():
                    message = json.loads(await self.socket.recv())
                    arrived = time.perf_counter()
                    if message.get("type") == "forecourt.snapshot":
                        self.pumps = {p["number"]: p for p in message["data"]["pumps"]}
                    elif message.get("type") == "pump.state":
                        self.pumps[message["data"]["number"]] = message["data"]
        except TimeoutError:
            states = ", ".join(f"{n}: {v['state']}" for n, v in sorted(self.pumps.items()))
            raise BenchError(f"no WebSocket message showed {what} within {timeout:.1f} s "
                             f"(pumps {states or 'unknown'})") from None
        return arrived


def machine() -> dict[str, Any]:
    """What a figure was measured on: CPUs, processor, OS, Python."""
    return {"cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "processor": _cpu_model()}


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def revision() -> str:
    """The commit the code was measured at (read only: no index refresh, no lock)."""
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=5, cwd=Path(__file__).resolve().parent,
                              env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"}, check=False)
    except OSError:
        return "unknown"
    return done.stdout.strip() or "unknown"


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile: the smallest value with at least ``share`` of them at or below."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@asynccontextmanager
async def mosquitto_child(folder: Path, start_timeout: float = 10.0) -> AsyncIterator[Any]:
    """A fresh Mosquitto (the tests' config) as a child that dies with the bench.

    TCP_NODELAY as in config/mosquitto/mosquitto.conf: with Nagle, PUBACKs wait for the next
    packet. Yields the ``tests.mosquitto.Mosquitto`` config (``.url``, ``.port``).
    """
    from tests.mosquitto import Mosquitto, mosquitto_binary

    config = Mosquitto(folder, extra="set_tcp_nodelay true")
    argv = [mosquitto_binary(), "-c", str(config.config)]
    with Child("mosquitto", argv, folder / "mosquitto.out") as child:
        deadline = time.monotonic() + start_timeout
        while True:
            child.check_alive()
            try:
                with socket.create_connection(("127.0.0.1", config.port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchError(f"mosquitto did not listen: {child.log_tail()}") from None
                await asyncio.sleep(0.05)
        yield config


def run_and_report(name: str, bench: Callable[[], Any], render: Callable[[Any], str],
                   as_json: bool) -> int:
    """Every bench's ending: run it, print the table or the JSON, and exit as a command does
    (130 on Ctrl-C, 143 on SIGTERM, 1 on a bench error)."""
    try:
        report = asyncio.run(bench())
    except KeyboardInterrupt:
        print(f"bench/{name}: interrupted", file=sys.stderr)
        return 130
    except asyncio.CancelledError:
        print(f"bench/{name}: terminated", file=sys.stderr)
        return 143
    except (BenchError, TimeoutError) as error:
        print(f"bench/{name}: {error or 'timed out'}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if as_json else render(report))
    return 0
