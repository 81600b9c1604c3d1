"""The ledger's self-metrics and the monitor_off gauge the phone notification reads.

`homemon_monitor_off_recent_seconds{last_seen, restarted}` is the gap found at this start
(the monitor's own downtime), exported for an hour after the start when it is at least
`ledger.monitor_off_report_after`: Prometheus on the same box comes back after a power cut at
about the same time and must still scrape it. The rule `MonitorOffReport` turns it into a
notification, routed like `InternetOutageReport` (prometheus/rules/alerts.yml).

`homemon_monthly_report_info{month, text}` (with `ledger.monthly_report: true`) carries the
finished month's headline figures (`render.phone_text`) from local midnight on the 1st until
noon, the same way: the rule `MonthlyReport` puts the text in its summary, sent once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.ledger.render import current_month, phone_text, previous_month, report_for
from monitor.ledger.report import Plan
from monitor.ledger.store import Ledger
from monitor.outages import local_iso

MONITOR_OFF_METRIC = "homemon_monitor_off_recent_seconds"
MONITOR_OFF_EXPORTED_FOR = 3600.0
MONTHLY_METRIC = "homemon_monthly_report_info"
MONTHLY_UNTIL_HOUR = 12  # local time on the 1st: a box that was off at midnight still sends it


class MonthlyReport:
    """The finished month's phone text on the morning of the 1st, computed once a month."""

    def __init__(self, ledger: Ledger, plan: Plan, tz: ZoneInfo) -> None:
        self.ledger, self.plan, self.tz = ledger, plan, tz
        self._cached: tuple[str, str] | None = None

    def due(self, now: float) -> tuple[str, str] | None:
        """(month, text) while the report is exported; None otherwise."""
        local = datetime.fromtimestamp(now, self.tz)
        if local.day != 1 or local.hour >= MONTHLY_UNTIL_HOUR:
            return None
        month = previous_month(current_month(self.tz, now))
        if self._cached is None or self._cached[0] != month:
            report, _ = report_for(self.ledger, month, self.tz, self.plan, now)
            self._cached = (month, phone_text(report))
        return self._cached


class LedgerCollector(Collector):
    def __init__(self, ledger: Ledger, registry: CollectorRegistry, report_after: float,
                 clock: Callable[[], float] = time.time,
                 monthly: MonthlyReport | None = None) -> None:
        """`monthly`: export the monthly phone report (ledger.monthly_report)."""
        self.ledger, self.report_after, self.clock = ledger, report_after, clock
        self.monthly = monthly
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
        if self.monthly is not None:
            found.append(self._monthly(self.monthly))
        return found

    def _monthly(self, monthly: MonthlyReport) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            MONTHLY_METRIC, "The finished month's headline figures for the phone (text), "
            "exported on the 1st until noon local time", labels=("month", "text"))
        due = monthly.due(self.clock())
        if due is not None:
            family.add_metric(list(due), 1)
        return family

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
