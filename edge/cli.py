"""The ``forecourt`` command line (CONTRACT section 1).

Exit statuses: 0 done, 1 failed while running, 2 bad configuration or arguments (nothing touched).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from domain.files import PRIVATE_UMASK
from edge import __version__

if TYPE_CHECKING:  # the config package loads lazily: `forecourt --help` stays quick
    from edge.config import StationConfig

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
# The database was written by a newer release (a rollback without its backup): restarting the
# same binary cannot fix it, so systemd must not restart it (RestartPreventExitStatus).
EXIT_SCHEMA_TOO_NEW = 3


def setup_logging(level: str = "INFO") -> None:
    from edge.logs import stream_handler

    # On the journal: no timestamp of ours, a <N> priority prefix per line (edge/logs.py).
    handler = stream_handler(sys.stderr, os.environ)
    # force: python-escpos configures the root logger when it is imported.
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler],
                        force=True)
    # pymodbus logs an error of its own for every failed request; the tank monitor reports a
    # dead gauge once, as an alert.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def _load(path: str, *, check_files: bool = True) -> StationConfig:
    from edge.config import ConfigError, load_config

    try:
        return load_config(path, check_files=check_files)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{path}: {problem}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def _preflight(config: StationConfig, path: str) -> str | None:
    """The one line that says why the station cannot start (edge/preflight.py), or None."""
    from edge.preflight import StartProblem, check_database, check_devices, check_listen

    try:
        check_listen(config.api.host, config.api.port, f"[api] listen in {path}")
        if config.api.redirect is not None:
            check_listen(*config.api.redirect, f"[api] redirect_listen in {path}")
        check_database(Path(config.storage.path), f"[storage] path in {path}")
        devices = [(str(getattr(line.settings, "port", "")), f"{line.where}.port in {path}")
                   for line in config.lines]
        check_devices(devices)
    except StartProblem as exc:
        return str(exc)
    return None


def cmd_run(args: argparse.Namespace) -> int:
    from edge.station import Station

    config = _load(args.config)
    problem = _preflight(config, args.config)
    if problem is not None:
        print(f"forecourt: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(args.log_level)
    from edge.store import SchemaTooNew, StoreError

    station = Station(config)
    try:
        asyncio.run(station.run())
    except SchemaTooNew as exc:  # a StoreError too: caught first
        logging.getLogger("forecourt").critical(
            "station cannot start: %s; install the release that wrote it or restore the "
            "pre-migration copy (docs/install.md, rolling back)", exc)
        return EXIT_SCHEMA_TOO_NEW
    except StoreError as exc:
        if station.started.is_set():
            raise
        # The database could not be opened or written at start: a setting, not a crash.
        print(f"forecourt: the database {config.storage.path} cannot be opened ({exc}); give "
              f"its folder to the user running forecourt, or choose another with [storage] "
              f"path in {args.config}", file=sys.stderr)
        return EXIT_CONFIG
    except Exception as exc:  # the last word before systemd restarts us
        logging.getLogger("forecourt").critical("station failed: %s", _reasons(exc),
                                                exc_info=True)
        return EXIT_FAILED
    return EXIT_OK


def _reasons(exc: BaseException) -> str:
    """What went wrong, in words: the errors inside a task group rather than the group."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_reasons(inner) for inner in exc.exceptions)
    return str(exc) or type(exc).__name__


def cmd_check_config(args: argparse.Namespace) -> int:
    from edge.config import describe

    config = _load(args.file, check_files=not args.no_files)
    print(describe(config))
    return EXIT_OK


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from edge.store import Store, StoreError

    config = _load(args.config, check_files=False)
    try:
        with Store.open(config.storage.path) as store:
            check = store.audit_verify()
    except StoreError as exc:
        print(f"cannot read the audit log: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if check.ok:
        print(f"audit log intact: {check.entries} entries")
        return EXIT_OK
    print(f"audit log broken at entry {check.first_broken}: {check.reason}")
    return EXIT_FAILED


def cmd_db_backup(args: argparse.Namespace) -> int:
    from edge.store import Store
    from edge.store.maintenance import backup

    config = _load(args.config, check_files=False)
    if args.dir is not None:
        return _db_backup_into(args, config)
    destination = Path(args.to)
    with Store.open(config.storage.path) as store:
        try:
            size = backup(store, destination)
        except (OSError, ValueError) as exc:
            print(f"backup failed: {exc}", file=sys.stderr)
            return EXIT_FAILED
    print(f"backup of {config.storage.path} written to {destination} ({size} bytes)")
    return EXIT_OK


def _db_backup_into(args: argparse.Namespace, config: StationConfig) -> int:
    from datetime import UTC, datetime

    from edge.backups import BackupRefused, backup_into
    from edge.store import Store

    database = Path(config.storage.path)
    with Store.open(database) as store:
        try:
            done = backup_into(store, database, Path(args.dir), keep=args.keep,
                               same_disk=args.same_disk, now=datetime.now(UTC))
        except BackupRefused as exc:
            print(f"backup refused: {exc}", file=sys.stderr)
            return EXIT_FAILED
    where = "another disk" if done.offsite else "the database's own disk"
    print(f"backup of {database} written to {done.file} ({done.size} bytes, on {where}), "
          f"read back and verified: events up to {done.last_seq}")
    for old in done.removed:
        print(f"removed {old} (keeping {args.keep})")
    return EXIT_OK


def cmd_db_verify(args: argparse.Namespace) -> int:
    from edge.store import Store
    from edge.store.maintenance import verify

    config = _load(args.config, check_files=False)
    with Store.open(config.storage.path) as store:
        report = verify(store)
    for finding in report.findings:
        print(f"{'ok  ' if finding.ok else 'FAIL'} {finding.check}: {finding.detail}")
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_db_restore(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from edge.store.restore import RestoreError, restore

    config = _load(args.config, check_files=False)
    database = Path(config.storage.path)
    try:
        done = restore(Path(args.from_), database, now=datetime.now(UTC))
    except RestoreError as exc:
        print(f"restore refused ({exc.code}): {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{args.from_} restored as {database}: its events end at seq {done.backup_last_seq}; "
          f"epoch {done.epoch} starts at seq {done.first_seq} (docs/runbook.md)")
    if done.replaced is not None:
        print(f"what {database} held before is kept in {done.replaced}")
    return EXIT_OK


def cmd_db_archive(args: argparse.Namespace) -> int:
    from datetime import date

    from edge.store import Store, StoreError
    from edge.store.archive import ArchiveError, archive_months, archives

    config = _load(args.config, check_files=False)
    try:
        before = None if args.list else date.fromisoformat(args.before)
    except ValueError:
        print(f"--before {args.before!r} is not a date (YYYY-MM-DD)", file=sys.stderr)
        return EXIT_CONFIG
    with Store.open(config.storage.path) as store:
        if before is None:
            found = archives(store)
            for done in found:
                print(f"{done.name}: events {done.seq_low}..{done.seq_high}, "
                      f"{done.rows('sales')} sales, made {done.created_at.isoformat()}, "
                      f"in {done.directory}")
            if not found:
                print("no archives yet")
            return EXIT_OK
        folder = Path(args.to) if args.to else Path(config.storage.path).parent / "archives"
        count = 0
        try:
            for made in archive_months(store, before, zone=config.station.zone,
                                       directory=folder, station=config.station.id):
                count += 1
                print(f"{made.name}: events {made.seq_low}..{made.seq_high} moved to "
                      f"{made.directory}")
                for entry in made.files:
                    print(f"  {entry.file}: {entry.rows} rows, sha256 {entry.sha256}")
                print(f"  {made.manifest_file}: the manifest")
        except (ArchiveError, StoreError, OSError) as exc:
            print(str(exc), file=sys.stderr)
            return EXIT_FAILED
    if count == 0:
        print(f"nothing older than {before.isoformat()} left to archive")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from edge.demo import run_demo
    from edge.preflight import StartProblem, check_listen

    try:
        check_listen("127.0.0.1", args.port, "--port")
    except StartProblem as exc:
        print(f"forecourt: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(args.log_level)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_demo(data=Path(args.data), port=args.port, broker=args.broker,
                             pumps=args.pumps, seed=args.seed, traffic=not args.no_traffic,
                             protocols=args.protocols))
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace, rest: list[str]) -> int:
    from simulator.cli import main as simulate_main

    return simulate_main(rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="forecourt", description="fuel station controller")
    parser.add_argument("--version", action="version", version=f"forecourt {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the station daemon")
    run.add_argument("--config", required=True, help="station config file (TOML)")
    run.add_argument("--log-level", default="INFO")
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="a complete simulated station with customer traffic")
    demo.add_argument("--data", default="demo-data", help="folder for the database, receipts "
                      "and voice files (default: ./demo-data)")
    demo.add_argument("--port", type=int, default=8080, help="console port (default 8080)")
    demo.add_argument("--broker", default=None, help="MQTT broker URL (default: offline)")
    demo.add_argument("--pumps", type=int, default=4, help="pumps on the DART line (1-32; "
                      "firmware rev211, legacy, milli, bare in turn)")
    demo.add_argument("--protocols", type=lambda text: text.split(","),
                      default=["dart", "ifsf", "gilbarco"], metavar="LIST",
                      help="the lines to run (default dart,ifsf,gilbarco)")
    demo.add_argument("--seed", type=int, default=None, help="seed for the customer traffic")
    demo.add_argument("--no-traffic", action="store_true", help="no simulated customers")
    demo.add_argument("--log-level", default="INFO")
    demo.set_defaults(func=cmd_demo)

    sim = sub.add_parser("simulate", help="the pump simulator on its own: DART, IFSF "
                         "(--protocol ifsf) or Gilbarco (--protocol gilbarco) "
                         "(forecourt simulate --help)", add_help=False)
    sim.set_defaults(func=None)

    sub.add_parser("keys", help="Ed25519 keys for signed cloud commands "
                   "(forecourt keys --help)", add_help=False)

    check = sub.add_parser("check-config", help="validate a config and print what it drives")
    check.add_argument("file")
    check.add_argument("--no-files", action="store_true",
                       help="do not require the files it names (keys, passwords) to exist")
    check.set_defaults(func=cmd_check_config)

    db = sub.add_parser("db", help="the station database: backup, verify, restore, archive, "
                       "export and inspect")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_backup = db_sub.add_parser("backup", help="online backup (SQLite backup API) to a new file")
    db_backup.add_argument("--config", required=True)
    target = db_backup.add_mutually_exclusive_group(required=True)
    target.add_argument("--to", help="the backup file to write (must not exist)")
    target.add_argument("--dir", help="a folder on another disk or USB stick: writes "
                        "station-<UTC time>.db there, verifies it, keeps the newest --keep")
    db_backup.add_argument("--keep", type=int, default=14, help="copies kept in --dir "
                           "(default 14)")
    db_backup.add_argument("--same-disk", action="store_true", help="allow --dir on the "
                           "database's own file system (refused otherwise)")
    db_backup.set_defaults(func=cmd_db_backup)
    db_verify = db_sub.add_parser("verify", help="integrity, audit chain, event log and outbox")
    db_verify.add_argument("--config", required=True)
    db_verify.set_defaults(func=cmd_db_verify)
    db_restore = db_sub.add_parser(
        "restore", help="put a backup back as the database, in a new ledger epoch (the daemon "
        "must be stopped; what it replaces is kept beside it)")
    db_restore.add_argument("--config", required=True)
    db_restore.add_argument("--from", dest="from_", required=True, metavar="BACKUP",
                            help="a file written by forecourt db backup")
    db_restore.set_defaults(func=cmd_db_restore)
    db_archive = db_sub.add_parser(
        "archive", help="move sales, events and readings older than a date into compressed "
        "files (docs/retention.md); --list shows the archives made")
    db_archive.add_argument("--config", required=True)
    what = db_archive.add_mutually_exclusive_group(required=True)
    what.add_argument("--before", metavar="YYYY-MM-DD",
                      help="archive what is older than this station-local date")
    what.add_argument("--list", action="store_true", help="show the archives made so far")
    db_archive.add_argument("--to", metavar="DIR",
                            help="folder for the archive files (default: archives/ beside the "
                            "database)")
    db_archive.set_defaults(func=cmd_db_archive)

    from edge.cli_db import add_db_parsers

    add_db_parsers(db_sub, _load)

    from edge.cli_users import add_parsers as add_user_parsers

    add_user_parsers(sub, _load)

    from edge.cli_pumps import add_parsers as add_pump_parsers

    add_pump_parsers(sub, _load)

    from edge.cli_tls import add_parsers as add_tls_parsers

    add_tls_parsers(sub)

    audit = sub.add_parser("audit", help="the audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = audit_sub.add_parser("verify", help="check the audit log's hash chain; exit 1 and "
                                  "name the first broken entry when it is not intact")
    verify.add_argument("--config", required=True)
    verify.set_defaults(func=cmd_audit_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # What the daemon and the commands create is their owner's alone (0600, folders 0700), also
    # files made inside libraries (SQLite's -wal and -shm): see domain/files.py. The umask is
    # given back for a caller in the same process (tests).
    previous = os.umask(PRIVATE_UMASK)
    try:
        return _main(argv)
    finally:
        os.umask(previous)


def _main(argv: Sequence[str] | None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["simulate"]:
        return cmd_simulate(argparse.Namespace(), args_list[1:])
    if args_list[:1] == ["keys"]:
        from sync.keys import main as keys_main

        return keys_main(args_list[1:])
    parser = build_parser()
    args = parser.parse_args(args_list)
    try:
        result: int = args.func(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
