"""``GET /metrics``: station figures in the Prometheus text format.

Values are read at scrape time from the live objects (a custom collector), so there is nothing to
keep in step and nothing counted twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from edge.station import Station


class StationCollector(Collector):
    def __init__(self, station: Station) -> None:
        self.station = station

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
        for line_id, line in station.forecourt.lines.items():
            bus = line.stats.bus
            exchanges.add_metric([line_id], float(bus.exchanges))
            timeouts.add_metric([line_id], float(bus.timeouts))
            noise.add_metric([line_id], float(station.forecourt.line_noise.get(line_id, 0)))
        yield exchanges
        yield timeouts
        yield noise
        yield CounterMetricFamily("forecourt_sales_recorded",
                                  "sales recorded since the daemon started",
                                  value=float(station.ledger.sales_recorded))
        yield GaugeMetricFamily("forecourt_store_writable",
                                "1 when sales can be recorded (0: authorizations refused)",
                                value=1.0 if station.ledger.writable else 0.0)
        yield GaugeMetricFamily("forecourt_outbox_backlog", "events not yet acknowledged",
                                value=float(station.store.outbox_backlog()))
        yield GaugeMetricFamily("forecourt_console_sessions", "open console sessions",
                                value=float(len(station.sessions)))
        yield GaugeMetricFamily("forecourt_event_subscribers", "live event subscribers",
                                value=float(station.hub.subscribers))


def render_metrics(station: Station) -> tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StationCollector(station))
    return generate_latest(registry), CONTENT_TYPE_LATEST
