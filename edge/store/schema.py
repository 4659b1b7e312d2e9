"""The ledger's schema, as numbered migrations.

`PRAGMA user_version` holds how many migrations a database has had. Each migration runs in
one transaction together with the new user_version, so a crash or a full disk mid-way leaves
the database at the previous version, never between two. Migrations are only ever appended:
a released step is never edited.

Money, volumes and totalizers are TEXT decimals, times RFC 3339 TEXT in UTC (see codec.py).
"""

from __future__ import annotations

import sqlite3

from edge.store.errors import SchemaTooNew

_V1 = (
    """CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    # The event seq lives in a counter row, not in MAX(events.seq): once old events are
    # archived away, MAX+1 would hand out numbers the cloud has already seen.
    """CREATE TABLE counters (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    )""",
    "INSERT INTO counters (name, value) VALUES ('event_seq', 0)",
    """CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        ts TEXT NOT NULL,
        data TEXT NOT NULL
    )""",
    # One row per event the cloud has not acknowledged yet.
    """CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY REFERENCES events (seq)
    )""",
    """CREATE TABLE prices (
        grade TEXT PRIMARY KEY,
        price TEXT NOT NULL,
        price_set_id TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    """CREATE TABLE price_changes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        price_set_id TEXT NOT NULL,
        grade TEXT NOT NULL,
        old_price TEXT,
        new_price TEXT NOT NULL,
        source TEXT NOT NULL,
        effective_at TEXT NOT NULL,
        applied_at TEXT NOT NULL
    )""",
    """CREATE TABLE authorizations (
        id TEXT PRIMARY KEY,
        pump INTEGER NOT NULL,
        nozzle INTEGER,
        preset_kind TEXT CHECK (preset_kind IN ('amount', 'volume')),
        preset_value TEXT,
        source TEXT NOT NULL,
        user_name TEXT,
        order_id TEXT,
        state TEXT NOT NULL,
        reason TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    "CREATE INDEX authorizations_by_state ON authorizations (state)",
    """CREATE TABLE totals (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        pump INTEGER NOT NULL,
        nozzle INTEGER NOT NULL,
        volume_total TEXT NOT NULL,
        amount_total TEXT NOT NULL,
        read_at TEXT NOT NULL,
        source TEXT NOT NULL
    )""",
    "CREATE INDEX totals_by_nozzle ON totals (pump, nozzle, id)",
    # fill_key is the volume totalizer after the fill in one canonical text: it identifies
    # the fill, so a sale recorded twice (a retry, a recovery after restart) is one row.
    """CREATE TABLE sales (
        id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL UNIQUE,
        pump INTEGER NOT NULL,
        nozzle INTEGER NOT NULL,
        logical INTEGER NOT NULL,
        grade TEXT NOT NULL,
        price TEXT NOT NULL,
        volume TEXT NOT NULL,
        amount TEXT NOT NULL,
        price_set_id TEXT,
        started_at TEXT,
        ended_at TEXT NOT NULL,
        authorization_id TEXT,
        order_id TEXT,
        recovered INTEGER NOT NULL,
        totals_volume_before TEXT,
        totals_volume_after TEXT NOT NULL,
        totals_amount_before TEXT,
        totals_amount_after TEXT NOT NULL,
        fill_key TEXT NOT NULL,
        paid INTEGER NOT NULL DEFAULT 0,
        UNIQUE (pump, nozzle, fill_key)
    )""",
    "CREATE INDEX sales_unpaid ON sales (seq) WHERE paid = 0",
    "CREATE INDEX sales_by_order ON sales (order_id) WHERE order_id IS NOT NULL",
    """CREATE TABLE payments (
        id TEXT PRIMARY KEY,
        sale_id TEXT NOT NULL REFERENCES sales (id),
        method TEXT NOT NULL,
        amount TEXT NOT NULL,
        user_name TEXT,
        created_at TEXT NOT NULL
    )""",
    "CREATE INDEX payments_by_sale ON payments (sale_id)",
    """CREATE TABLE users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        pin_hash TEXT NOT NULL,
        failed_attempts INTEGER NOT NULL DEFAULT 0,
        locked_until TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
)

# Cloud commands: the replay cache, app orders, price schedules and what each pump was last
# programmed with.
_V2 = (
    # Every command id accepted, kept until it could no longer be accepted anyway (its
    # expires_at): a command seen once is never run twice, even across restarts.
    """CREATE TABLE commands_seen (
        id TEXT PRIMARY KEY,
        expires_at TEXT NOT NULL,
        seen_at TEXT NOT NULL
    )""",
    "CREATE INDEX commands_seen_by_expiry ON commands_seen (expires_at)",
    """CREATE TABLE orders (
        order_id TEXT PRIMARY KEY,
        nozzle INTEGER NOT NULL,
        grade TEXT NOT NULL,
        price TEXT NOT NULL,
        preset_kind TEXT NOT NULL CHECK (preset_kind IN ('amount', 'volume')),
        preset_value TEXT NOT NULL,
        paid TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        sale_id TEXT,
        refund TEXT,
        authorization_id TEXT,
        expires_at TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    "CREATE INDEX orders_by_status ON orders (status)",
    "CREATE INDEX orders_by_authorization ON orders (authorization_id) "
    "WHERE authorization_id IS NOT NULL",
    # prices: a JSON object grade -> decimal text, as the schedule was given.
    """CREATE TABLE price_schedules (
        price_set_id TEXT PRIMARY KEY,
        effective_at TEXT NOT NULL,
        prices TEXT NOT NULL,
        source TEXT NOT NULL,
        created_at TEXT NOT NULL,
        applied_at TEXT
    )""",
    "CREATE INDEX price_schedules_pending ON price_schedules (effective_at, price_set_id) "
    "WHERE applied_at IS NULL",
    """CREATE TABLE pump_price_sets (
        pump INTEGER PRIMARY KEY,
        price_set_id TEXT NOT NULL,
        at TEXT NOT NULL
    )""",
)

# Tanks: gauge readings (the history reports and the daily reconciliation read), the alerts
# open now, detected deliveries and each day's wetstock reconciliation.
_V3 = (
    # closes_day: the station-local date (YYYY-MM-DD) this reading closes; the next day's
    # reconciliation opens with it. Other readings are the history behind tank.reading events.
    """CREATE TABLE tank_readings (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tank INTEGER NOT NULL,
        grade TEXT NOT NULL,
        read_at TEXT NOT NULL,
        level_mm TEXT NOT NULL,
        water_mm TEXT,
        temperature_c TEXT,
        volume_l TEXT NOT NULL,
        ullage_l TEXT NOT NULL,
        closes_day TEXT
    )""",
    "CREATE INDEX tank_readings_by_tank ON tank_readings (tank, read_at)",
    "CREATE UNIQUE INDEX tank_day_closes ON tank_readings (tank, closes_day) "
    "WHERE closes_day IS NOT NULL",
    # data: the raise event's data, as the API shows the alert.
    """CREATE TABLE tank_alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tank INTEGER NOT NULL,
        kind TEXT NOT NULL,
        raised_at TEXT NOT NULL,
        cleared_at TEXT,
        data TEXT NOT NULL
    )""",
    "CREATE UNIQUE INDEX tank_alerts_open ON tank_alerts (tank, kind) WHERE cleared_at IS NULL",
    """CREATE TABLE tank_deliveries (
        id TEXT PRIMARY KEY,
        tank INTEGER NOT NULL,
        grade TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT NOT NULL,
        volume_l TEXT NOT NULL,
        start_volume_l TEXT NOT NULL,
        end_volume_l TEXT NOT NULL,
        sold_l TEXT NOT NULL,
        detected_at TEXT NOT NULL
    )""",
    "CREATE INDEX tank_deliveries_by_tank ON tank_deliveries (tank, ended_at)",
    """CREATE TABLE tank_reconciliations (
        tank INTEGER NOT NULL,
        day TEXT NOT NULL,
        grade TEXT NOT NULL,
        opening_at TEXT NOT NULL,
        closing_at TEXT NOT NULL,
        opening_l TEXT NOT NULL,
        deliveries_l TEXT NOT NULL,
        sales_l TEXT NOT NULL,
        expected_l TEXT NOT NULL,
        closing_l TEXT NOT NULL,
        variance_l TEXT NOT NULL,
        tolerance_l TEXT NOT NULL,
        flagged INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (tank, day)
    )""",
    # The reconciliation sums a tank's sales by nozzle and time.
    "CREATE INDEX sales_by_nozzle_time ON sales (nozzle, ended_at)",
)

# The audit log: append-only and hash-chained. hash is sha256 over a canonical JSON of the
# other columns and prev_hash (see audit.py), so an edited or removed row breaks the chain.
# The triggers make a tamper deliberate: it needs dropping them first, and verify still sees it.
_V4 = (
    """CREATE TABLE audit (
        seq INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        role TEXT,
        action TEXT NOT NULL,
        target TEXT,
        outcome TEXT NOT NULL,
        details TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    )""",
    # How many entries were written: removing the newest rows is found by comparing (audit.py).
    "INSERT INTO counters (name, value) VALUES ('audit_seq', 0)",
    """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END""",
    """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END""",
)

# Shifts (班结): the shift open now and those closed. A shift owns the events (and so the sales,
# whose seq is their event's) with start_seq < seq <= end_seq; end_seq is the seq of its
# shift.closed event. totals_mark is MAX(totals.id) when it opened: a nozzle first read after
# that opens the shift at its first reading. report: the closing report as JSON, frozen.
_V5 = (
    """CREATE TABLE shifts (
        id INTEGER PRIMARY KEY,
        opened_at TEXT NOT NULL,
        opened_by TEXT,
        start_seq INTEGER NOT NULL,
        totals_mark INTEGER NOT NULL,
        closed_at TEXT,
        closed_by TEXT,
        end_seq INTEGER,
        report TEXT
    )""",
    # At most one shift is open.
    "CREATE UNIQUE INDEX shifts_one_open ON shifts ((closed_at IS NULL)) WHERE closed_at IS NULL",
    # The totalizers a shift opened and closed with, per nozzle.
    """CREATE TABLE shift_totals (
        shift INTEGER NOT NULL REFERENCES shifts (id),
        side TEXT NOT NULL CHECK (side IN ('open', 'close')),
        pump INTEGER NOT NULL,
        nozzle INTEGER NOT NULL,
        volume_total TEXT NOT NULL,
        amount_total TEXT NOT NULL,
        read_at TEXT NOT NULL,
        PRIMARY KEY (shift, side, nozzle)
    )""",
)

# Five years of sales: the index the day-report and metrics reads need, and the record of what
# `forecourt db archive` moved out of the live database (see archive.py and docs/retention.md).
_V6 = (
    # The daily report and today's metrics read the sales of a span of ended_at; without this
    # they read every sale the station ever made (sales_by_nozzle_time starts with the nozzle).
    "CREATE INDEX sales_by_end ON sales (ended_at)",
    # One row per archive run that deleted what it wrote. Events seq_low..seq_high left the
    # database (seq_low > seq_high: that run held no event); the live events start after the
    # newest seq_high. manifest: the manifest file's exact text, whose sha256 and the files'
    # sha256 it lists are what `db verify` checks the files on disk against.
    """CREATE TABLE archives (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        before TEXT NOT NULL,
        cutoff TEXT NOT NULL,
        seq_low INTEGER NOT NULL,
        seq_high INTEGER NOT NULL,
        directory TEXT NOT NULL,
        manifest TEXT NOT NULL
    )""",
)

# Hardening (docs/security.md): the ledger's epoch, disabled users, pumps out of service.
_V7 = (
    # A ledger restored from a backup, or created on a station the cloud already knows, starts
    # a new epoch: the cloud deduplicates by (station, epoch, seq), so a seq it committed is
    # never reused for another event (docs/cloud.md, "Epochs").
    "ALTER TABLE events ADD COLUMN epoch INTEGER NOT NULL DEFAULT 1",
    "INSERT INTO counters (name, value) VALUES ('epoch', 1)",
    # A disabled user cannot log in; their sessions end when it is set.
    "ALTER TABLE users ADD COLUMN disabled_at TEXT",
    # A pump taken out of service (impossible figures, a fill that cannot be read) stays out,
    # across restarts, until a person releases it through the API or the CLI.
    """CREATE TABLE pump_service (
        pump INTEGER PRIMARY KEY,
        since TEXT NOT NULL,
        reason TEXT NOT NULL,
        details TEXT NOT NULL
    )""",
)

# The neutral fuelling point (docs/architecture.md): the pump's own key for a sale, flags on a
# sale, and the recoveries a person must settle.
_V8 = (
    # Where the protocol keeps its own key for a finished sale (IFSF: node, fuelling point,
    # transaction number, amount and volume): unique per pump, so a buffered sale read again
    # after a restart is recorded once.
    "ALTER TABLE sales ADD COLUMN pump_key TEXT",
    "CREATE UNIQUE INDEX sales_by_pump_key ON sales (pump, pump_key) WHERE pump_key IS NOT NULL",
    # JSON list of what is unusual about the sale: "impossible_figures", "standalone",
    # "reviewed".
    "ALTER TABLE sales ADD COLUMN flags TEXT NOT NULL DEFAULT '[]'",
    # Fuel that left a nozzle while nothing recorded it, without two agreeing witnesses: no
    # sale until a person accepts it (or dismisses it with a reason).
    """CREATE TABLE reviews (
        id TEXT PRIMARY KEY,
        pump INTEGER NOT NULL,
        nozzle INTEGER NOT NULL,
        logical INTEGER NOT NULL,
        grade TEXT NOT NULL,
        kind TEXT NOT NULL,
        created_at TEXT NOT NULL,
        totals_volume_before TEXT NOT NULL,
        totals_volume_after TEXT NOT NULL,
        totals_amount_before TEXT,
        totals_amount_after TEXT,
        filling TEXT,
        authorization_id TEXT,
        order_id TEXT,
        status TEXT NOT NULL CHECK (status IN ('open', 'accepted', 'dismissed')),
        settled_by TEXT,
        settled_at TEXT,
        reason TEXT,
        sale_id TEXT
    )""",
    "CREATE INDEX reviews_open ON reviews (created_at) WHERE status = 'open'",
)

# The station's books (docs/books.md): deliveries received (卸油验收), fuel that left a nozzle
# without being a sale, totalizer corrections, nozzle totals at each price change, month closes
# (进销存) and their later corrections, and credit accounts (挂账). Each record that the cloud
# hears of carries the seq of its event.
_V9 = (
    # bill, before_reading, after_reading, figures: JSON as the API shows them. received_l and
    # received_std_l are the litres the tank's book takes in (observed, and at 20 degC).
    """CREATE TABLE delivery_receipts (
        id TEXT PRIMARY KEY,
        tank INTEGER NOT NULL,
        grade TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'received', 'cancelled')),
        delivery_id TEXT,
        opened_at TEXT NOT NULL,
        opened_by TEXT NOT NULL,
        paused_nozzles TEXT NOT NULL,
        nozzle_totals TEXT NOT NULL,
        bill TEXT NOT NULL,
        before_reading TEXT,
        after_reading TEXT,
        figures TEXT,
        received_l TEXT,
        received_std_l TEXT,
        outcome TEXT,
        driver TEXT,
        receiver TEXT,
        supervisor TEXT,
        note TEXT,
        closed_at TEXT,
        seq INTEGER UNIQUE
    )""",
    "CREATE INDEX delivery_receipts_by_close ON delivery_receipts (closed_at) "
    "WHERE status = 'received'",
    # The non-sale mode an attendant put a nozzle in: read when its fill is recorded.
    """CREATE TABLE nonsale_requests (
        authorization_id TEXT PRIMARY KEY,
        nozzle INTEGER NOT NULL,
        kind TEXT NOT NULL,
        reason TEXT NOT NULL,
        witnesses TEXT NOT NULL,
        to_tank INTEGER,
        user_name TEXT NOT NULL,
        created_at TEXT NOT NULL
    )""",
    # A fill that is no sale: identified like a sale by the volume totalizer after it.
    """CREATE TABLE nonsale_fills (
        id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL UNIQUE,
        authorization_id TEXT,
        pump INTEGER NOT NULL,
        nozzle INTEGER NOT NULL,
        logical INTEGER NOT NULL,
        grade TEXT NOT NULL,
        kind TEXT NOT NULL,
        reason TEXT NOT NULL,
        witnesses TEXT NOT NULL,
        to_tank INTEGER,
        tax_notice INTEGER NOT NULL,
        price TEXT NOT NULL,
        volume TEXT NOT NULL,
        amount TEXT NOT NULL,
        totals_volume_before TEXT,
        totals_volume_after TEXT NOT NULL,
        totals_amount_before TEXT,
        totals_amount_after TEXT NOT NULL,
        started_at TEXT,
        ended_at TEXT NOT NULL,
        user_name TEXT,
        fill_key TEXT NOT NULL,
        UNIQUE (pump, nozzle, fill_key)
    )""",
    "CREATE INDEX nonsale_fills_by_end ON nonsale_fills (ended_at)",
    # A jump of a nozzle's totalizers that moved no fuel (a reset, a board swap).
    """CREATE TABLE totals_corrections (
        id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL UNIQUE,
        pump INTEGER NOT NULL,
        nozzle INTEGER NOT NULL,
        cause TEXT NOT NULL,
        before_volume TEXT NOT NULL,
        before_amount TEXT NOT NULL,
        after_volume TEXT NOT NULL,
        after_amount TEXT NOT NULL,
        note TEXT NOT NULL,
        user_name TEXT NOT NULL,
        created_at TEXT NOT NULL
    )""",
    # Each nozzle's totals when a pump took a new price set; seq: its price.applied event.
    """CREATE TABLE price_totals (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        seq INTEGER NOT NULL,
        price_set_id TEXT NOT NULL,
        pump INTEGER NOT NULL,
        nozzle INTEGER NOT NULL,
        grade TEXT NOT NULL,
        price TEXT NOT NULL,
        volume_total TEXT NOT NULL,
        amount_total TEXT NOT NULL,
        read_at TEXT NOT NULL,
        UNIQUE (seq, nozzle)
    )""",
    "CREATE INDEX price_totals_by_nozzle ON price_totals (nozzle, read_at)",
    # A closed month (YYYY-MM) is never changed: corrections go into a later month.
    """CREATE TABLE month_closes (
        month TEXT PRIMARY KEY,
        seq INTEGER NOT NULL UNIQUE,
        start_at TEXT NOT NULL,
        end_at TEXT NOT NULL,
        closed_at TEXT NOT NULL,
        closed_by TEXT NOT NULL,
        report TEXT NOT NULL
    )""",
    """CREATE TRIGGER month_closes_no_update BEFORE UPDATE ON month_closes
    BEGIN SELECT RAISE(ABORT, 'a closed month is immutable'); END""",
    """CREATE TRIGGER month_closes_no_delete BEFORE DELETE ON month_closes
    BEGIN SELECT RAISE(ABORT, 'a closed month is immutable'); END""",
    """CREATE TABLE book_adjustments (
        id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL UNIQUE,
        month TEXT NOT NULL,
        corrects_month TEXT,
        tank INTEGER NOT NULL,
        grade TEXT NOT NULL,
        volume_l TEXT NOT NULL,
        reason TEXT NOT NULL,
        user_name TEXT NOT NULL,
        created_at TEXT NOT NULL
    )""",
    # limits: JSON {grades, amount, volume, fills} a day (null: no limit of that kind).
    """CREATE TABLE credit_accounts (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('active', 'blocked')),
        limits TEXT NOT NULL,
        blocked_reason TEXT,
        source TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    """CREATE TABLE credit_identifiers (
        kind TEXT NOT NULL CHECK (kind IN ('card', 'plate')),
        value TEXT NOT NULL,
        account_id TEXT NOT NULL REFERENCES credit_accounts (id),
        PRIMARY KEY (kind, value)
    )""",
    # One use of an account: held while the pump is asked, authorized, then sold (or
    # released). day: the station-local date its limits count against.
    """CREATE TABLE account_uses (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES credit_accounts (id),
        day TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('held', 'authorized', 'sold', 'released')),
        identifier TEXT NOT NULL,
        signer TEXT NOT NULL,
        user_name TEXT,
        nozzle INTEGER NOT NULL,
        grade TEXT NOT NULL,
        allowance_amount TEXT,
        allowance_volume TEXT,
        authorization_id TEXT UNIQUE,
        sale_id TEXT UNIQUE,
        volume TEXT,
        amount TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    "CREATE INDEX account_uses_by_day ON account_uses (account_id, day)",
)

# The console (docs/console.md): a number people can say aloud for each sale, what each sale's
# receipt printed, alarms a person acknowledged, and price schedules a manager cancelled.
_V10 = (
    # day: the station-local date the sale ended (YYYY-MM-DD); n: its place in that day, from 1.
    # Written in the sale's own transaction; shown as MMDD-NNNN ("1204-0042").
    """CREATE TABLE sale_numbers (
        sale_id TEXT PRIMARY KEY,
        day TEXT NOT NULL,
        n INTEGER NOT NULL,
        UNIQUE (day, n)
    )""",
    # How often a sale's receipt was printed: a print after the first is a copy (补打), also
    # after a restart.
    """CREATE TABLE receipt_prints (
        sale_id TEXT PRIMARY KEY,
        count INTEGER NOT NULL,
        first_at TEXT NOT NULL,
        last_at TEXT NOT NULL
    )""",
    # An alarm event (by its seq) a person has seen and acknowledged.
    """CREATE TABLE alarm_acks (
        seq INTEGER PRIMARY KEY,
        user_name TEXT NOT NULL,
        at TEXT NOT NULL
    )""",
    # A pending schedule a manager cancelled: it is never applied.
    "ALTER TABLE price_schedules ADD COLUMN cancelled_at TEXT",
    "ALTER TABLE price_schedules ADD COLUMN cancelled_by TEXT",
    # The alarm list reads the newest events of a few types.
    "CREATE INDEX events_by_type ON events (type, seq)",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, _V9, _V10)


def schema_version(conn: sqlite3.Connection) -> int:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    assert isinstance(version, int)
    return version


def check_version(conn: sqlite3.Connection, known: int = len(MIGRATIONS)) -> int:
    """The database's schema version; SchemaTooNew when it is newer than `known`."""
    found = schema_version(conn)
    if found > known:
        raise SchemaTooNew(found, known)
    return found


def migrate(conn: sqlite3.Connection, migrations: tuple[tuple[str, ...], ...] = MIGRATIONS) -> int:
    """Brings the database up to the newest schema; returns the version it is at.

    Raises SchemaTooNew, touching nothing, when the database is newer than `migrations`.
    sqlite3 errors are left to the caller to translate.
    """
    known = len(migrations)
    found = check_version(conn, known)
    while found < known:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Read again under the write lock: another process may have migrated meanwhile.
            found = check_version(conn, known)
            if found < known:
                for statement in migrations[found]:
                    conn.execute(statement)
                found += 1
                conn.execute(f"PRAGMA user_version = {found:d}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return found
