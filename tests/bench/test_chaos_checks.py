"""The chaos run's verdict catches each way a sale can go wrong (made-up runs, no processes)."""

from __future__ import annotations

import sys
from decimal import Decimal as D
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.append(str(BENCH))  # after the packages: bench/ has a sync.py of its own

from chaos_checks import (  # noqa: E402
    Attempt,
    CloudSale,
    Fill,
    StoredSale,
    Verdict,
    Window,
    judge,
)

A = 0x50


def fill(after: str, volume: str, amount: str, *, logical: int = 1, started: float = 0.0) -> Fill:
    return Fill(A, logical, D(volume), D(amount), D(after) - D(volume), D(after), started)


def sale(id_: str, after: str, volume: str, amount: str, *, logical: int = 1,
         before: str | None = None) -> StoredSale:
    start = D(before) if before is not None else D(after) - D(volume)
    return StoredSale(id_, A, logical, D(volume), D(amount), start, D(after))


FILLS = [fill("10.00", "10.00", "75.00"), fill("12.50", "2.50", "18.75")]
SALES = [sale("s1", "10.00", "10.00", "75.00"), sale("s2", "12.50", "2.50", "18.75")]
CLOUD = [CloudSale(3, "s1"), CloudSale(5, "s2")]


def verdict(**changes: object) -> Verdict:
    args: dict[str, object] = {
        "fills": FILLS, "sales": SALES, "event_seqs": [1, 2, 3, 4, 5], "cloud_contiguous": 5,
        "cloud_gaps": [], "cloud_sales": CLOUD, "totals_at_start": {(A, 1): D("0.00")},
        "totals_at_end": {(A, 1): D("12.50")},
    }
    args.update(changes)
    return judge(**args)  # type: ignore[arg-type]


def test_a_clean_run_passes_with_its_counts() -> None:
    v = verdict()
    assert v.ok, v.problems
    assert (v.fills, v.sales, v.cloud_sales, v.events) == (2, 2, 2, 5)
    assert (v.lost, v.doubled, v.phantom, v.mismatched, v.totals_breaks) == (0, 0, 0, 0, 0)


def test_a_fill_without_a_sale_is_lost_and_breaks_the_totals() -> None:
    v = verdict(sales=SALES[:1], cloud_sales=CLOUD[:1])
    assert v.lost == 1 and not v.ok
    assert v.totals_breaks == 1  # the pump's totals end 2.50 L past the last sale
    assert any("lost" in p for p in v.problems)


def test_a_lift_with_no_fuel_is_no_sale() -> None:
    v = verdict(fills=[*FILLS, fill("12.50", "0.00", "0.00")])
    assert v.ok and v.fills == 2


def test_a_sale_without_a_fill_is_a_phantom() -> None:
    extra = sale("s3", "15.00", "2.50", "18.75")
    v = verdict(sales=[*SALES, extra], cloud_sales=[*CLOUD, CloudSale(6, "s3")],
                totals_at_end={(A, 1): D("15.00")})
    assert v.phantom == 1 and not v.ok


def test_two_sales_for_one_fill_are_doubled() -> None:
    v = verdict(sales=[*SALES, sale("s1b", "12.50", "2.50", "18.75")])
    assert v.doubled >= 1 and not v.ok


def test_one_sale_sent_twice_under_two_seqs_is_doubled_at_the_cloud() -> None:
    v = verdict(cloud_sales=[*CLOUD, CloudSale(6, "s2")], event_seqs=[1, 2, 3, 4, 5, 6],
                cloud_contiguous=6)
    assert v.doubled == 1 and not v.ok
    assert any("doubled at the cloud" in p for p in v.problems)


def test_a_sale_the_cloud_never_got_is_counted() -> None:
    v = verdict(cloud_sales=CLOUD[:1])
    assert v.cloud_lost == 1 and not v.ok


def test_figures_that_differ_from_the_pump_are_a_mismatch() -> None:
    v = verdict(sales=[SALES[0], sale("s2", "12.50", "2.50", "18.80")])
    assert v.mismatched == 1 and not v.ok


def test_a_sale_whose_totals_do_not_chain_breaks_the_totals() -> None:
    v = verdict(sales=[SALES[0], sale("s2", "12.50", "2.50", "18.75", before="9.90")])
    assert v.totals_breaks == 1 and not v.ok


def test_seq_gaps_at_the_station_or_the_cloud_fail() -> None:
    assert not verdict(event_seqs=[1, 2, 4, 5, 6]).ok
    assert not verdict(cloud_contiguous=3).ok
    assert not verdict(cloud_gaps=[4]).ok


def test_the_full_disk_must_refuse_and_then_recover() -> None:
    window = Window(100.0, 104.0)
    good = [Attempt(101.0, 101.01, 503, "storage_unavailable"), Attempt(106.0, 106.2, 202)]
    v = verdict(windows=[window], attempts=good)
    assert v.ok, v.problems
    assert (v.windows, v.refused_while_full, v.windows_recovered) == (1, 1, 1)
    # Authorized while the disk was full:
    v = verdict(windows=[window], attempts=[*good, Attempt(102.0, 102.1, 202)])
    assert v.accepted_while_full == 1 and not v.ok
    # Nothing was refused (the station did not notice it could not write):
    assert not verdict(windows=[window], attempts=good[1:]).ok
    # Never authorized again afterwards:
    assert not verdict(windows=[window], attempts=good[:1]).ok
    # Fuel started flowing well inside the window:
    late = [*FILLS, fill("14.00", "1.50", "11.25", started=103.0)]
    v = verdict(windows=[window], attempts=good, fills=late,
                sales=[*SALES, sale("s3", "14.00", "1.50", "11.25")],
                cloud_sales=[*CLOUD, CloudSale(6, "s3")], event_seqs=[1, 2, 3, 4, 5, 6],
                cloud_contiguous=6, totals_at_end={(A, 1): D("14.00")})
    assert v.fuel_started_while_full == 1 and not v.ok


def test_a_clock_step_the_daemon_did_not_notice_fails() -> None:
    assert verdict(clock_steps=2, clock_steps_noticed=2).ok
    v = verdict(clock_steps=2, clock_steps_noticed=1)
    assert not v.ok and any("wall clock" in p for p in v.problems)


def test_a_healthy_pump_taken_out_of_service_fails() -> None:
    refused = Attempt(50.0, 50.1, 409, "pump_out_of_service")
    v = verdict(attempts=[Attempt(40.0, 40.1, 202), refused])
    assert not v.ok and any("out of service" in p for p in v.problems)
    assert verdict(attempts=[Attempt(40.0, 40.1, 409, "nozzle_busy")]).ok
