"""The ledger's self-metrics and the monitor_off gauge the phone notification reads.

`homemon_monitor_off_recent_seconds{last_seen, restarted}` is the gap found at this start
(the monitor's own downtime), exported for an hour after the start when it is at least
`ledger.monitor_off_report_after`: Prometheus on the same box comes back after a power cut at
about the same time and must still scrape it. The rule `MonitorOffReport` turns it into a
notification, routed like `InternetOutageReport` (prometheus/rules/alerts.yml).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.ledger.store import Ledger
from monitor.outages import local_iso

MONITOR_OFF_METRIC = "homemon_monitor_off_recent_seconds"
MONITOR_OFF_EXPORTED_FOR = 3600.0


class LedgerCollector(Collector):
    def __init__(self, ledger: Ledger, registry: CollectorRegistry, report_after: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.ledger, self.report_after, self.clock = ledger, report_after, clock
        registry.register(self)

    def describe(self) -> list[Metric]:
        return self.collect()

    def collect(self) -> list[Metric]:
        stats = self.ledger.stats
        counters = (
            ("homemon_ledger_rows_written", "Rows the ledger wrote to its database",
             stats.rows_written),
            ("homemon_ledger_write_errors", "Ledger writes that failed (read-only, full disk, "
             "I/O error); the rows stay in memory", stats.write_errors),
            ("homemon_ledger_rows_dropped", "Rows dropped because the memory buffer was full "
             "while the database could not be written", stats.rows_dropped),
            ("homemon_ledger_databases_moved_aside", "Unusable (corrupt or newer) ledger files "
             "moved aside for a fresh one", stats.databases_moved_aside),
        )
        found: list[Metric] = []
        for name, text, value in counters:
            counter = CounterMetricFamily(name, text)
            counter.add_metric([], value)
            found.append(counter)
        buffered = GaugeMetricFamily("homemon_ledger_buffered_rows",
                                     "Rows waiting in memory for the next ledger write",
                                     value=stats.buffered)
        size = GaugeMetricFamily("homemon_ledger_database_bytes",
                                 "Size of the ledger's files (database and write-ahead log)",
                                 value=self.ledger.database_bytes())
        found += [buffered, size, self._monitor_off()]
        return found

    def _monitor_off(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            MONITOR_OFF_METRIC, "The monitor's own downtime found at this start (no data: "
            "power cut or restart), exported for an hour when it reached the report threshold",
            labels=("last_seen", "restarted"))
        gap = self.ledger.monitor_off()
        if (gap is not None and gap.seconds >= self.report_after
                and self.clock() - gap.restarted_at < MONITOR_OFF_EXPORTED_FOR):
            family.add_metric([local_iso(gap.last_seen), local_iso(gap.restarted_at)],
                              round(gap.seconds, 3))
        return family
