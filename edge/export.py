"""Exports and inspection of the station database for the finance office and the cloud team.

`forecourt db export` writes sales, payments, shifts, tank readings and the audit log of a span
of station-local days, one file per table, as CSV or JSON; `forecourt db inspect` lists the
tables, their rows and the schema version. Both open the database read-only (an SQLite
`file:...?mode=ro` URI): they can run beside the daemon, never write, and never wait for it
(under WAL a reader sees the last committed state).

What belongs to the span, table by table (the daily report's own rules, edge/reports.py):

| table | rows |
|---|---|
| sales | those whose fill ended in the span |
| payments | those of the sales above, whenever they were taken |
| shifts | those open at any time in the span |
| tank_readings | those read in the span |
| audit | the entries written in the span |

Money and volumes stay the decimal text the database holds ("7.50"), never floats.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, tzinfo
from pathlib import Path
from typing import Any

import sqlite_utils

from domain.files import create_private, private_dir
from edge.reports import day_span
from edge.store.codec import time_text

FORMATS = ("csv", "json")


@dataclass(frozen=True)
class Span:
    """[start, end) in UTC text, as the database stores times, for local days first..last."""

    first: date
    last: date
    start: str
    end: str

    @classmethod
    def of_days(cls, first: date, last: date, zone: tzinfo) -> Span:
        if last < first:
            raise ValueError(f"--to {last.isoformat()} is before --from {first.isoformat()}")
        return cls(first, last, time_text(day_span(first, zone)[0]),
                   time_text(day_span(last, zone)[1]))


#: Each table's rows for a span: the query, in the order rows are written.
QUERIES: dict[str, str] = {
    "sales": "SELECT * FROM sales WHERE ended_at >= :start AND ended_at < :end ORDER BY seq",
    "payments": "SELECT p.* FROM payments p JOIN sales s ON s.id = p.sale_id "
                "WHERE s.ended_at >= :start AND s.ended_at < :end "
                "ORDER BY s.seq, p.created_at, p.id",
    "shifts": "SELECT * FROM shifts WHERE opened_at < :end "
              "AND (closed_at IS NULL OR closed_at >= :start) ORDER BY id",
    "tank_readings": "SELECT * FROM tank_readings WHERE read_at >= :start AND read_at < :end "
                     "ORDER BY read_at, id",
    "audit": "SELECT * FROM audit WHERE at >= :start AND at < :end ORDER BY seq",
}
TABLES = tuple(QUERIES)


class ExportError(Exception):
    """The database cannot be read, or the files cannot be written: nothing was."""


def open_read_only(path: Path) -> sqlite_utils.Database:
    """The database through a connection that cannot write (and does not wait for writers)."""
    if not path.is_file():
        raise ExportError(f"there is no database at {path}")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        conn.execute("PRAGMA query_only = 1")
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise ExportError(f"cannot read {path}: {exc}") from None
    return sqlite_utils.Database(conn)


def rows(db: sqlite_utils.Database, table: str, span: Span) -> Iterator[dict[str, Any]]:
    if table not in QUERIES:
        raise ExportError(f"no export for table {table!r}; there are {', '.join(TABLES)}")
    if not db[table].exists():
        return iter(())
    return db.query(QUERIES[table], {"start": span.start, "end": span.end})


@dataclass(frozen=True)
class Written:
    table: str
    file: Path
    rows: int


def export(db: sqlite_utils.Database, span: Span, folder: Path, *, fmt: str = "csv",
           tables: Sequence[str] = TABLES) -> list[Written]:
    """One file per table in `folder` (made 0700; files 0600: they hold the books). Refuses
    to overwrite a file. Everything is read in one read transaction: the files agree with
    each other even while the daemon sells."""
    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r}: use one of {', '.join(FORMATS)}")
    unknown = [t for t in tables if t not in QUERIES]
    if unknown:
        raise ExportError(f"no export for {', '.join(unknown)}; there are {', '.join(TABLES)}")
    targets = {table: folder / f"{table}.{fmt}" for table in tables}
    existing = [str(path) for path in targets.values() if path.exists()]
    if existing:
        raise ExportError(f"{', '.join(existing)} exist(s); an export never overwrites a file")
    private_dir(folder)
    done: list[Written] = []
    conn = db.conn
    conn.execute("BEGIN")
    try:
        for table, path in targets.items():
            count = _write(path, table, rows(db, table, span), fmt,
                           [c.name for c in db[table].columns] if db[table].exists() else [])
            done.append(Written(table, path, count))
    except OSError as exc:
        raise ExportError(f"cannot write the export: {exc}") from None
    finally:
        conn.execute("COMMIT")
    return done


def _write(path: Path, table: str, found: Iterator[dict[str, Any]], fmt: str,
           columns: list[str]) -> int:
    create_private(path)
    count = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        if fmt == "csv":
            writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            for row in found:
                writer.writerow(row)
                count += 1
        else:
            out.write("[")
            for row in found:
                out.write(",\n" if count else "\n")
                out.write(json.dumps(row, ensure_ascii=False))
                count += 1
            out.write("\n]\n")
    return count


@dataclass(frozen=True)
class TableInfo:
    name: str
    rows: int
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Inspection:
    path: Path
    schema_version: int
    size: int
    journal_mode: str
    tables: tuple[TableInfo, ...]


def inspect(db: sqlite_utils.Database, path: Path) -> Inspection:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    mode = db.execute("PRAGMA journal_mode").fetchone()[0]
    tables = tuple(TableInfo(table.name, table.count, tuple(c.name for c in table.columns))
                   for table in db.tables)
    return Inspection(path, int(version), path.stat().st_size, str(mode), tables)
