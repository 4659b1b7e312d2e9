"""``GET /metrics``: station figures in the Prometheus text format.

Values are read at scrape time from the live objects (a custom collector), so there is nothing to
keep in step and nothing counted twice.

Who may scrape (docs/api.md): the bearer token in [api] metrics_token_file (a Prometheus), a
session of a role that reads the station's books, or anybody when [api] metrics_open is set for
a local Prometheus. The sales figures (how much the station sold today, and since the daemon
started) go only with the token or such a session, never to an anonymous client.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from domain.model import Role

if TYPE_CHECKING:
    from edge.config import Api
    from edge.station import Station

#: Roles whose session may read every metric, sales included: those who read the books.
SALES_READERS = frozenset({Role.MANAGER, Role.FINANCE, Role.ADMIN})


def sees_sales(role: Role) -> bool:
    return role in SALES_READERS


def metrics_token(api: Api) -> str | None:
    """The scrape token from [api] metrics_token_file (checked when the config was read)."""
    if api.metrics_token_file is None:
        return None
    token = api.metrics_token_file.read_text("utf-8").strip()
    if not token:
        raise ValueError(f"{api.metrics_token_file} holds no token")
    return token


class StationCollector(Collector):
    def __init__(self, station: Station, *, sales: bool) -> None:
        self.station = station
        self.sales = sales

    def collect(self) -> Iterator[Metric]:
        station = self.station
        up = GaugeMetricFamily("forecourt_pump_online", "1 when the pump answers on its line",
                               labels=["pump"])
        state = GaugeMetricFamily("forecourt_pump_fuelling", "1 while fuel flows",
                                  labels=["pump"])
        for number, pump in sorted(station.forecourt.pumps.items()):
            up.add_metric([str(number)], 1.0 if pump.online else 0.0)
            state.add_metric([str(number)], 1.0 if pump.state.value == "fuelling" else 0.0)
        yield up
        yield state
        exchanges = CounterMetricFamily("forecourt_line_exchanges",
                                        "request/answer exchanges on the line", labels=["line"])
        timeouts = CounterMetricFamily("forecourt_line_timeouts",
                                       "requests a pump did not answer in time", labels=["line"])
        noise = CounterMetricFamily("forecourt_line_noise",
                                    "malformed frames or garbage seen on the line",
                                    labels=["line"])
        for line_id, health in station.forecourt.line_health().items():
            for family, key in ((exchanges, "exchanges"), (timeouts, "timeouts"),
                                (noise, "noise")):
                value = health.get(key)
                if isinstance(value, int | float):
                    family.add_metric([line_id], float(value))
        yield exchanges
        yield timeouts
        yield noise
        if self.sales:
            yield CounterMetricFamily("forecourt_sales_recorded",
                                      "sales recorded since the daemon started",
                                      value=float(station.ledger.sales_recorded))
        yield GaugeMetricFamily("forecourt_store_writable",
                                "1 when sales can be recorded (0: authorizations refused)",
                                value=1.0 if station.ledger.writable else 0.0)
        yield CounterMetricFamily("forecourt_clock_steps",
                                  "wall clock steps seen since the daemon started",
                                  value=float(station.clock_watch.steps))
        yield GaugeMetricFamily("forecourt_outbox_backlog", "events not yet acknowledged",
                                value=float(station.store.outbox_backlog()))
        yield GaugeMetricFamily("forecourt_console_sessions", "open console sessions",
                                value=float(len(station.sessions)))
        yield GaugeMetricFamily("forecourt_event_subscribers", "live event subscribers",
                                value=float(station.hub.subscribers))
        logins = station.sessions.counters
        yield CounterMetricFamily("forecourt_logins", "sessions opened since the daemon started",
                                  value=float(logins.opened))
        failed = CounterMetricFamily("forecourt_login_failures",
                                     "logins refused since the daemon started, by reason",
                                     labels=["reason"])
        for reason, count in logins.failures().items():
            failed.add_metric([reason], float(count))
        yield failed
        if self.sales:
            yield from self._today(station)
        if station.link is not None:
            yield GaugeMetricFamily("forecourt_cloud_connected", "1 while the MQTT link is up",
                                    value=1.0 if station.link.connected else 0.0)
            yield CounterMetricFamily("forecourt_cloud_events_resent",
                                      "events sent again (reconnects, ack timeouts)",
                                      value=float(station.link.resent))
            yield CounterMetricFamily("forecourt_cloud_forged_acks",
                                      "acks refused: above the highest seq the ledger assigned",
                                      value=float(station.link.forged_acks))
        if station.receipts is not None:
            status = station.receipts.status()
            yield GaugeMetricFamily("forecourt_printer_pending_jobs",
                                    "print jobs waiting for the printer",
                                    value=float(status["pending_jobs"]))

    @staticmethod
    def _today(station: Station) -> Iterator[Metric]:
        """Today's sales (station time) by grade: the figures a manager watches."""
        now = station.now()
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        sales = station.store.sales_ended_between(start, now + timedelta(seconds=1))
        volume = GaugeMetricFamily("forecourt_sales_today_litres",
                                   "litres sold today (station time)", labels=["grade"])
        amount = GaugeMetricFamily("forecourt_sales_today_yuan",
                                   "sales amount today (station time)", labels=["grade"])
        count = GaugeMetricFamily("forecourt_sales_today", "sales today (station time)",
                                  labels=["grade"])
        for grade in station.config.grades:
            mine = [sale for sale in sales if sale.grade == grade.code]
            # Decimal sums, turned into the exposition format's floats only at the edge.
            volume.add_metric([grade.code], float(sum((s.volume for s in mine), Decimal(0))))
            amount.add_metric([grade.code], float(sum((s.amount for s in mine), Decimal(0))))
            count.add_metric([grade.code], float(len(mine)))
        yield volume
        yield amount
        yield count


def render_metrics(station: Station, *, sales: bool) -> tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StationCollector(station, sales=sales))
    return generate_latest(registry), CONTENT_TYPE_LATEST
