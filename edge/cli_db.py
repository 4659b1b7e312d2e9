"""`forecourt db export` and `forecourt db inspect`: the books out of the station, read-only.

- `forecourt db export --config FILE --from 2026-11-01 [--to 2026-11-30] --out DIR
  [--format csv|json] [--table sales --table payments ...]`: one file per table (edge/export.py
  says which rows each holds); days are the station's local days.
- `forecourt db inspect --config FILE`: the tables, their rows and the schema version.

Both open the database read-only and may run while the daemon sells (docs/operations.md).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge.config import StationConfig

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

Loader = Callable[..., "StationConfig"]


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{option} {text!r} is not a date (YYYY-MM-DD)") from None


def cmd_db_export(args: argparse.Namespace, load: Loader) -> int:
    from edge.export import TABLES, ExportError, Span, export, open_read_only

    config = load(args.config, check_files=False)
    try:
        first = _day(args.from_, "--from")
        last = _day(args.to, "--to") if args.to else first
        span = Span.of_days(first, last, config.station.zone)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    try:
        db = open_read_only(Path(config.storage.path))
        try:
            written = export(db, span, Path(args.out), fmt=args.format,
                             tables=args.table or TABLES)
        finally:
            db.conn.close()
    except ExportError as exc:
        print(f"export refused: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for item in written:
        print(f"{item.file}: {item.rows} rows")
    print(f"{first.isoformat()} .. {last.isoformat()} ({config.station.timezone}) exported "
          f"from {config.storage.path}")
    return EXIT_OK


def cmd_db_inspect(args: argparse.Namespace, load: Loader) -> int:
    from edge.export import ExportError, inspect, open_read_only
    from edge.store.schema import MIGRATIONS

    config = load(args.config, check_files=False)
    path = Path(config.storage.path)
    try:
        db = open_read_only(path)
        try:
            found = inspect(db, path)
        finally:
            db.conn.close()
    except ExportError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILED
    note = ("" if found.schema_version == len(MIGRATIONS) else
            f" (this forecourt writes version {len(MIGRATIONS)})")
    print(f"{path}: schema version {found.schema_version}{note}, {found.size} bytes, "
          f"journal {found.journal_mode}")
    width = max((len(t.name) for t in found.tables), default=5)
    for table in found.tables:
        print(f"  {table.name:<{width}}  {table.rows:>9} rows  {', '.join(table.columns)}")
    return EXIT_OK


def add_db_parsers(db_sub: Any, load: Loader) -> None:
    from edge.export import FORMATS, TABLES

    export = db_sub.add_parser(
        "export", help="sales, payments, shifts, tank readings and the audit log of a span of "
        "days, as CSV or JSON files (read-only; safe while the daemon runs)")
    export.add_argument("--config", required=True)
    export.add_argument("--from", dest="from_", required=True, metavar="YYYY-MM-DD",
                        help="the first station-local day")
    export.add_argument("--to", metavar="YYYY-MM-DD", help="the last day (default: --from)")
    export.add_argument("--out", required=True, metavar="DIR",
                        help="folder for the files (TABLE.csv or TABLE.json; never overwritten)")
    export.add_argument("--format", choices=FORMATS, default="csv")
    export.add_argument("--table", action="append", choices=TABLES,
                        help="only this table (repeatable; default: all)")
    export.set_defaults(func=lambda args: cmd_db_export(args, load))
    inspect = db_sub.add_parser("inspect", help="tables, row counts and the schema version "
                                "(read-only; safe while the daemon runs)")
    inspect.add_argument("--config", required=True)
    inspect.set_defaults(func=lambda args: cmd_db_inspect(args, load))
