"""Five years of a busy station: 2,000,000 sales in a real database file.

Every read the console and the cloud's pulls make must be served by an index: the statements a
store call really runs are caught with the connection's trace callback and each one's
`EXPLAIN QUERY PLAN` is checked, and the rows the calls return are checked against values
computed here from the same formulas the database was filled with.

The file is built once for the module through `Store.open` (the real migrations), then filled
inside SQLite (INSERT ... SELECT over a recursive counter) in one transaction with the journal
off: several times faster than executemany from Python, which matters at this size. Sale i
(0-based) is recorded at T0 + i * 79 s (about 1,090 a day), on nozzle i % 16 + 1; every tenth
sale is followed by a non-sale event, so seqs and sale numbers differ. Each sale has its
`sale.completed` event, its totalizer reading and its payment(s); every 40th is an app order.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from edge.reports import daily_report, day_span
from edge.store import Store

from .conftest import store_connection

SALES = 2_000_000
T0 = datetime(2021, 11, 23, tzinfo=UTC)
STEP = 79  # seconds between sales
SHANGHAI = ZoneInfo("Asia/Shanghai")
PRICES = {"92": 750, "95": 802, "0": 716}  # fen per litre
GRADES = {1: "92", 2: "95", 0: "0"}  # by (nozzle % 3)
UNPAID = [i for i in range(SALES) if i % 250_000 == 123_456] + list(range(SALES - 40, SALES))
SHIFT_FROM = SALES - 500  # the open shift holds the sales from this one on
OUTBOX = 300  # the newest events, not yet acknowledged by the cloud
# Tables that grow with the station's traffic: reading one of them whole is a defect.
BIG = ("sales", "events", "payments", "totals", "orders", "authorizations", "tank_readings",
       "audit")

_COUNTER = "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < :sales) "
_MS = f"((:t0 + i * {STEP}) * 1000)"
_UNPAID = f"(i % 250000 = 123456 OR i >= {SALES - 40})"
# Sale i's grade, price, volume and amount texts, by k = volume index * 3 + grade index: 18,000
# rows looked up by key, rather than the same arithmetic and printf 2,000,000 times.
_MONEY = """CREATE TEMP TABLE money AS
    WITH RECURSIVE v(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM v WHERE k + 1 < 18000),
    f(k, g, cl, fen) AS (SELECT k, k % 3, 1000 + k / 3,
        CASE k % 3 WHEN 1 THEN 750 WHEN 2 THEN 802 ELSE 716 END FROM v)
    SELECT k, CASE g WHEN 1 THEN '92' WHEN 2 THEN '95' ELSE '0' END AS grade,
        printf('%d.%02d', fen / 100, fen % 100) AS price,
        printf('%d.%02d', cl / 100, cl % 100) AS volume,
        printf('%d.%02d', (cl * fen + 50) / 10000, (cl * fen + 50) / 100 % 100) AS amount
    FROM f"""


def seq(i: int) -> int:
    return i + i // 10 + 1


def volume(i: int) -> Decimal:
    return Decimal(1000 + i * 7919 % 6000) / 100


def grade(i: int) -> str:
    return GRADES[(i % 16 + 1) % 3]


def amount(i: int) -> Decimal:
    fen = (1000 + i * 7919 % 6000) * PRICES[grade(i)]
    return Decimal((fen + 50) // 100) / 100


def ended_at(i: int) -> datetime:
    return T0 + timedelta(seconds=i * STEP)


def fill(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # 16 KiB pages instead of 4: the same schema and plans, a third less CPU to fill it.
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute("PRAGMA page_size = 16384")
        conn.execute("VACUUM")
        conn.execute("PRAGMA journal_mode = OFF")  # a throwaway file: no rollback needed
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -1048576")  # 1 GiB: the indexes stay in memory
        params = {"sales": SALES, "t0": int(T0.timestamp())}
        conn.execute("BEGIN")
        conn.execute(_MONEY)
        conn.execute("CREATE UNIQUE INDEX temp.money_k ON money (k)")
        conn.execute(
            _COUNTER + "INSERT INTO sales (id, seq, pump, nozzle, logical, grade, price, volume, "
            "amount, price_set_id, ended_at, order_id, recovered, totals_volume_after, "
            "totals_amount_after, fill_key, paid) "
            f"SELECT printf('%08x-%04x-7000-8000-%012x', {_MS} >> 16, {_MS} & 65535, i), "
            "i + i / 10 + 1, (i % 16 + 2) / 2, i % 16 + 1, i % 2 + 1, m.grade, m.price, "
            "m.volume, m.amount, 'config', "
            f"strftime('%Y-%m-%dT%H:%M:%S.000000+00:00', :t0 + i * {STEP}, 'unixepoch'), "
            "CASE WHEN i % 40 = 3 THEN printf('order-%07d', i) END, 0, "
            "(100000 + i) || '.00', (700000 + i) || '.00', 100000 + i, "
            f"NOT {_UNPAID} FROM n JOIN money AS m ON m.k = i * 7919 % 6000 * 3 + (i % 16 + 1) % 3",
            params)  # fmt: skip
        conn.execute(
            "INSERT INTO events (seq, id, type, ts, data) SELECT seq, replace(id, '-7000-', "
            "'-7001-'), 'sale.completed', ended_at, '{\"id\":\"' || id || '\"}' FROM sales "
            "ORDER BY seq")  # fmt: skip
        conn.execute(
            _COUNTER + "INSERT INTO events (seq, id, type, ts, data) SELECT i + i / 10 + 2, "
            f"printf('%08x-%04x-7003-8000-%012x', {_MS} >> 16, {_MS} & 65535, i), "
            f"'tank.reading', strftime('%Y-%m-%dT%H:%M:%S.000000+00:00', :t0 + i * {STEP} + 30, "
            "'unixepoch'), '{\"tank\":1}' FROM n WHERE i % 10 = 9", params)  # fmt: skip
        conn.execute(
            "INSERT INTO totals (pump, nozzle, volume_total, amount_total, read_at, source) "
            "SELECT pump, nozzle, totals_volume_after, totals_amount_after, ended_at, 'sale' "
            "FROM sales ORDER BY seq")  # fmt: skip
        # Every 25th sale is paid in two parts: 50.00 in cash, the rest by WeChat.
        cents = "CAST(replace(amount, '.', '') AS INTEGER)"
        conn.execute(
            "INSERT INTO payments (id, sale_id, method, amount, user_name, created_at) "
            "SELECT replace(id, '-7000-', '-7002-'), id, CASE WHEN (fill_key - 100000) % 25 = 0 "
            "THEN 'wechat' ELSE 'cash' END, CASE WHEN (fill_key - 100000) % 25 = 0 THEN "
            f"printf('%d.%02d', ({cents} - 5000) / 100, ({cents} - 5000) % 100) ELSE amount END, "
            "'cashier', ended_at FROM sales WHERE paid = 1 ORDER BY seq")  # fmt: skip
        conn.execute(
            "INSERT INTO payments (id, sale_id, method, amount, user_name, created_at) "
            "SELECT replace(id, '-7000-', '-7004-'), id, 'cash', '50.00', 'cashier', ended_at "
            "FROM sales WHERE paid = 1 AND (fill_key - 100000) % 25 = 0 ORDER BY seq")
        conn.execute(
            "INSERT INTO orders (order_id, nozzle, grade, price, preset_kind, preset_value, paid, "
            "status, sale_id, refund, expires_at, created_at, updated_at) SELECT order_id, "
            "nozzle, grade, price, 'amount', '300.00', '300.00', 'completed', id, NULL, "
            "ended_at, ended_at, ended_at FROM sales WHERE order_id IS NOT NULL ORDER BY seq")
        last = seq(SALES - 1) + 1
        conn.execute("UPDATE counters SET value = ? WHERE name = 'event_seq'", (last,))
        conn.execute("INSERT INTO outbox (seq) SELECT seq FROM events WHERE seq > ?",
                     (last - OUTBOX,))
        mark = SHIFT_FROM  # MAX(totals.id) when it opened: sale i's reading has id i + 1
        conn.execute(
            "INSERT INTO shifts (id, opened_at, start_seq, totals_mark) VALUES (1, ?, ?, ?)",
            (ended_at(SHIFT_FROM - 1).isoformat(timespec="microseconds"), seq(SHIFT_FROM) - 1,
             mark))  # fmt: skip
        conn.execute(
            "INSERT INTO shift_totals (shift, side, pump, nozzle, volume_total, amount_total, "
            "read_at) SELECT 1, 'open', pump, nozzle, volume_total, amount_total, read_at "
            "FROM totals WHERE id IN (SELECT MAX(id) FROM totals WHERE id <= ? "
            "GROUP BY pump, nozzle)", (mark,))  # fmt: skip
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode = WAL")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path = tmp_path_factory.mktemp("scale") / "station.db"
    Store.open(path).close()  # the real schema, every migration
    fill(path)
    with Store.open(path, zone=SHANGHAI) as store:
        yield store
    for leftover in path.parent.iterdir():
        leftover.unlink()  # 2 GB is too much to leave to pytest's tmp retention


def plans(store: Store, call: Callable[[], Any]) -> list[tuple[str, list[str]]]:
    """Each SELECT the call ran, with its query plan."""
    conn = store_connection(store)
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        call()
    finally:
        conn.set_trace_callback(None)
    return [(sql, [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)])
            for sql in seen if sql.lstrip().upper().startswith(("SELECT", "WITH"))]


def whole_table_reads(store: Store, call: Callable[[], Any]) -> list[str]:
    found = []
    for sql, steps in plans(store, call):
        assert steps, sql
        aliases = {alias: name for name, alias in re.findall(r"(\w+) AS (\w+)", sql)}
        for step in steps:
            # "SCAN t" reads the table, "SCAN t USING [COVERING] INDEX i" a whole index: both
            # grow with the years. SEARCH is a seek.
            scanned = re.match(r"SCAN (\w+)", step)
            if scanned and aliases.get(scanned[1], scanned[1]) in BIG:
                found.append(f"{step}  <-  {sql[:160]}")
    return found


def day_of(i: int) -> date:
    return ended_at(i).astimezone(SHANGHAI).date()


PAGES: dict[str, Callable[[Store], Any]] = {
    # The console and GET /api/v1/sales: pages in seq order, the unpaid list, one sale.
    "sales page": lambda s: s.sales(since_seq=seq(1_234_567), limit=100),
    "sales page, paid only": lambda s: s.sales(since_seq=seq(654_321), limit=100, unpaid=False),
    "unpaid list": lambda s: s.sales(unpaid=True, limit=200),
    "sale by id": lambda s: s.get_sale(s.sales(since_seq=seq(777_776), limit=1)[0].id),
    "order by id": lambda s: s.get_order("order-0777763"),
    # GET /api/v1/reports/daily and the metrics' today.
    "daily report": lambda s: s.sales_ended_between(*day_span(date(2024, 2, 29), SHANGHAI)),
    # The cloud's data.request pulls: sales and totals.
    "sales pull": lambda s: s.sales(since_seq=0, limit=500),
    "totals pull": lambda s: s.latest_totals(),
    # The cloud link: what is still to send, and the newest events.
    "outbox": lambda s: s.outbox_pending(limit=500),
    "events since": lambda s: s.events_since(seq(1_999_000), 500),
    "audit page": lambda s: s.audit_entries(0, 1000),
}


@pytest.mark.parametrize("page", PAGES)
def test_the_query_is_served_by_an_index(big: Store, page: str) -> None:
    assert whole_table_reads(big, lambda: PAGES[page](big)) == []


def test_the_open_shift_report_is_served_by_indexes(big: Store) -> None:
    grades = {n: GRADES[n % 3] for n in range(1, 17)}
    assert whole_table_reads(big, lambda: big.shift_report(None, grades=grades)) == []


def test_a_page_since_a_seq_gives_the_sales_that_follow(big: Store) -> None:
    page = big.sales(since_seq=seq(1_234_567), limit=100)
    assert [s.seq for s in page] == [seq(i) for i in range(1_234_568, 1_234_668)]
    first = page[0]
    assert (first.volume, first.amount, first.grade) == (volume(1_234_568), amount(1_234_568),
                                                         grade(1_234_568))
    assert first.ended_at == ended_at(1_234_568)
    # Between two sales a tank reading took a seq: the next page starts after the last sale.
    assert big.sales(since_seq=seq(1_234_569) + 1, limit=1)[0].seq == seq(1_234_570)


def test_the_unpaid_list_is_the_unpaid_sales(big: Store) -> None:
    unpaid = big.sales(unpaid=True, limit=200)
    assert [s.seq for s in unpaid] == [seq(i) for i in UNPAID]
    assert all(not s.paid and s.payments == () for s in unpaid)
    paid = big.sales(since_seq=seq(UNPAID[0]) - 1, limit=3, unpaid=False)
    assert [s.seq for s in paid] == [seq(UNPAID[0] + 1), seq(UNPAID[0] + 2), seq(UNPAID[0] + 3)]


def test_a_sale_by_id_comes_with_its_payments(big: Store) -> None:
    i = 777_775  # a 25th: paid in two parts
    [listed] = big.sales(since_seq=seq(i) - 1, limit=1)
    sale = big.get_sale(listed.id)
    assert sale is not None and sale.seq == seq(i)
    assert sorted((p.method, p.amount) for p in sale.payments) == [
        ("cash", Decimal("50.00")), ("wechat", amount(i) - 50)]
    assert sale.paid


def test_one_days_report_adds_up_to_the_sales_of_that_day(big: Store) -> None:
    day = date(2024, 2, 29)
    start, end = day_span(day, SHANGHAI)
    found = big.sales_ended_between(start, end)
    first = -(-int((start - T0).total_seconds()) // STEP)  # the first sale at or after start
    mine = [i for i in range(first, first + 2000) if ended_at(i) < end]
    assert ended_at(first - 1) < start <= ended_at(first) and len(mine) > 1000
    assert [s.seq for s in found] == [seq(i) for i in mine]
    report = daily_report(found, day=day, zone=SHANGHAI)
    assert report.totals.count == len(mine)
    assert report.totals.volume == sum(volume(i) for i in mine)
    assert report.totals.amount == sum(amount(i) for i in mine)
    for code in PRICES:
        assert report.by_grade[code].amount == sum(amount(i) for i in mine if grade(i) == code)
    split = [i for i in mine if i % 25 == 0]
    assert report.by_method["wechat"].amount == sum(amount(i) - 50 for i in split)
    assert report.by_method["cash"].amount == (
        sum(amount(i) for i in mine if i % 25) + 50 * len(split))
    assert report.unpaid == 0


def test_the_totals_pull_gives_each_nozzles_latest_reading(big: Store) -> None:
    latest = big.latest_totals()
    assert [(r.pump, r.nozzle) for r in latest] == [((n + 1) // 2, n) for n in range(1, 17)]
    for reading in latest:
        i = SALES - 16 + reading.nozzle - 1  # the last sale on that nozzle
        assert reading.volume_total == 100000 + i
        assert reading.read_at == ended_at(i)


def test_the_open_shift_report_holds_its_sales(big: Store) -> None:
    grades = {n: GRADES[n % 3] for n in range(1, 17)}
    report = big.shift_report(None, grades=grades)
    assert report is not None and report["status"] == "open"
    mine = range(SHIFT_FROM, SALES)
    assert report["counts"]["sales"] == len(mine)
    assert Decimal(report["totals"]["amount"]) == sum(amount(i) for i in mine)
    assert report["counts"]["unpaid"] == 40
    assert report["counts"]["mismatches"] == 16  # the synthetic totalizers move 1 L a sale


def test_the_cloud_link_reads_the_unacknowledged_tail(big: Store) -> None:
    pending = big.outbox_pending(limit=500)
    last = seq(SALES - 1) + 1
    assert [e.seq for e in pending] == list(range(last - OUTBOX + 1, last + 1))
    assert big.last_seq() == last
    assert big.outbox_backlog() == OUTBOX
