"""Online backup and a whole-database check, for `forecourt db backup` and `forecourt db verify`.

The backup uses SQLite's online backup API: the daemon keeps running and writing while it copies,
and the copy is a consistent snapshot. The check proves what the station's promises rest on:
SQLite's own integrity check, the audit log's hash chain, and the event log and outbox being
consistent (every outbox row names a stored event; the seq counter is the newest event; no seq
is missing, the events moved out by `forecourt db archive` aside), and every archive's files
still being there, as they were written.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from domain.files import create_private, private_dir
from edge.store.archive import archived_high, archives, check_files
from edge.store.months import verify_closes
from edge.store.store import Store


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str


@dataclass
class Verification:
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings)

    def add(self, check: str, ok: bool, detail: str) -> None:
        self.findings.append(Finding(check, ok, detail))


def backup(store: Store, destination: Path) -> int:
    """Copy the open database to `destination` (a new file, mode 0600, in folders made 0700);
    returns its size in bytes."""
    if destination.exists():
        raise FileExistsError(f"{destination} exists; a backup never overwrites a file")
    private_dir(destination.parent)
    partial = destination.with_name(destination.name + ".partial")
    create_private(partial)  # before SQLite writes a byte of it
    target = sqlite3.connect(partial)
    try:
        with store._db.read() as conn:
            # In one step: under WAL the copy's read transaction does not hold up the daemon's
            # writers, while a copy in steps starts over whenever the daemon commits between two
            # steps, and on a busy station might never finish.
            conn.backup(target, pages=-1)
        result = target.execute("PRAGMA integrity_check").fetchone()[0]
        if result != "ok":
            raise sqlite3.DatabaseError(f"the copy fails its integrity check: {result}")
    finally:
        target.close()
    partial.rename(destination)
    return destination.stat().st_size


def verify(store: Store) -> Verification:
    report = Verification()
    with store._db.read() as conn:
        problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        report.add("integrity", problems == ["ok"], "; ".join(problems[:5]))
        orphans = conn.execute(
            "SELECT COUNT(*) FROM outbox WHERE seq NOT IN (SELECT seq FROM events)").fetchone()[0]
        report.add("outbox", orphans == 0,
                   "every unacknowledged event is stored" if orphans == 0
                   else f"{orphans} outbox rows name no stored event")
        counter = conn.execute(
            "SELECT value FROM counters WHERE name = 'event_seq'").fetchone()[0]
        low, high, count = conn.execute(
            "SELECT MIN(seq), MAX(seq), COUNT(*) FROM events").fetchone()
        # Archived events are in their files: the live ones start right after them.
        first = archived_high(conn) + 1
        high = high or first - 1
        gapless = count == 0 or (low == first and high - low + 1 == count)
        moved = f" (1..{first - 1} archived)" if first > 1 else ""
        report.add("event seq", gapless and counter == high,
                   f"events {first}..{high}{moved}, counter {counter}" if gapless
                   else f"{count} events between {low} and {high}, expected from {first}: "
                        "seqs are missing")
        ok, detail = verify_closes(conn, first)
        report.add("month closes", ok, detail)
    for found in archives(store):
        problems = check_files(found)
        report.add(f"archive {found.name}", not problems,
                   "; ".join(problems) if problems
                   else f"{len(found.files) + 1} files intact in {found.directory}")
    audit = store.audit_verify()
    report.add("audit chain", audit.ok,
               f"{audit.entries} entries intact" if audit.ok
               else f"broken at entry {audit.first_broken}: {audit.reason}")
    return report
