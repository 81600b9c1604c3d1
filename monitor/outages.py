"""The outages of the last hour, with their exact edges, for the outage report.

The latency job adds one when the internet comes back (and one when names resolve again after
a DNS outage); a custom collector exports each as
`homemon_internet_recent_outage_seconds{start, end, cause, detail}` = its length, where
`cause` is where it broke (home, isp, upstream, dns, unknown: monitor/jobs/latency/cause.py)
and `detail` the sentence the report shows. The Prometheus rule
`InternetOutageReport` turns a new series into a notification after recovery, so the figures
in the message are the daemon's (to the probe slot), not reconstructed from counters.
Labels are local time (the TZ of the process), ISO-8601 to the second with the UTC offset,
so a notification reads in the user's time zone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

METRIC = "homemon_internet_recent_outage_seconds"


@dataclass(frozen=True)
class Outage:
    start: float  # epoch seconds, first silent probe slot
    end: float  # epoch seconds, first reply again
    cause: str = "unknown"
    detail: str = ""

    @property
    def seconds(self) -> float:
        return self.end - self.start


def local_iso(epoch: float) -> str:
    """2026-12-01T02:13:05+01:00: local time of this process, to the second, with offset."""
    return datetime.fromtimestamp(round(epoch)).astimezone().isoformat(timespec="seconds")


class RecentOutages:
    """Thread-safe: the latency job adds, scrapes and the status page read."""

    def __init__(self, keep_seconds: float = 3600, max_items: int = 50,
                 clock: Callable[[], float] = time.time) -> None:
        self.keep_seconds = keep_seconds
        self.max_items = max_items
        self.clock = clock
        self._items: list[Outage] = []  # newest first
        self._lock = threading.Lock()

    def add(self, start: float, end: float, cause: str = "unknown", detail: str = "") -> None:
        if end < start:
            raise ValueError(f"outage ends ({end}) before it starts ({start})")
        with self._lock:
            self._items.insert(0, Outage(start, end, cause, detail))
            self._items.sort(key=lambda outage: outage.end, reverse=True)
            del self._items[self.max_items:]

    def recent(self) -> list[Outage]:
        """Newest first; only those that ended within keep_seconds."""
        horizon = self.clock() - self.keep_seconds
        with self._lock:
            self._items = [outage for outage in self._items if outage.end >= horizon]
            return list(self._items)


class RecentOutagesCollector(Collector):
    def __init__(self, outages: RecentOutages, registry: CollectorRegistry) -> None:
        self.outages = outages
        registry.register(self)

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(METRIC, "Length of each internet outage that ended within the "
                                 "last hour, labelled with its local start and end, where it "
                                 "broke (cause) and what answered (detail)",
                                 labels=("start", "end", "cause", "detail"))

    def describe(self) -> list[Metric]:
        return [self._family()]

    def collect(self) -> list[Metric]:
        family = self._family()
        seen: set[tuple[str, str]] = set()
        for outage in self.outages.recent():
            edges = (local_iso(outage.start), local_iso(outage.end))
            if edges not in seen:  # two outages within one second: one series, the newest
                seen.add(edges)
                family.add_metric([*edges, outage.cause, outage.detail],
                                  round(outage.seconds, 3))
        return [family]
