"""The daemon's own metrics and the shared metric helpers, on one registry passed in (tests
make their own); each job's families are in monitor/jobs/<name>/metrics.py.

Names and labels are the contract in docs/metrics.md: dashboards and alerts read them.
A failed measurement leaves gauges absent or NaN, never 0.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor import __version__
from monitor.diskspace import StateWriteMetrics

JOB_RESULTS = ("success", "failure", "timeout", "skipped")

JOB_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200)


class SelfMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.build_info = Gauge("homemon_build_info", "Always 1; the version label tells which "
                                "build runs", ["version"], registry=registry)
        self.build_info.labels(version=__version__).set(1)
        self.job_runs = Counter("homemon_job_runs_total", "Job runs by result", ["job", "result"],
                                registry=registry)
        self.job_duration = Histogram("homemon_job_duration_seconds", "Wall time of a job run",
                                      ["job"], buckets=JOB_DURATION_BUCKETS, registry=registry)
        self.job_last_success = Gauge("homemon_job_last_success_timestamp_seconds",
                                      "When the job last succeeded (Unix seconds)", ["job"],
                                      registry=registry)
        self.job_interval = Gauge("homemon_job_interval_seconds", "Configured interval of the job",
                                  ["job"], registry=registry)

    def declare_job(self, job: str, interval: float) -> None:
        """Make every result series exist from the start, so rate() sees the first one."""
        self.job_interval.labels(job=job).set(interval)
        for result in JOB_RESULTS:
            self.job_runs.labels(job=job, result=result)
        self.job_duration.labels(job=job)


class UnsetGauge(Collector):
    """An unlabelled gauge that is absent until first set: "not measured yet" is no 0."""

    def __init__(self, name: str, documentation: str, registry: CollectorRegistry) -> None:
        self.name, self.documentation = name, documentation
        self._value: float | None = None
        registry.register(self)

    def set(self, value: float) -> None:
        self._value = float(value)

    def get(self) -> float | None:
        return self._value

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily(self.name, self.documentation)]

    def collect(self) -> list[Metric]:
        value = self._value
        return [] if value is None else [GaugeMetricFamily(self.name, self.documentation, value)]


class SnapshotGauge(Collector):
    """A labelled gauge for many slowly changing series (one per air sensor): the exposition
    is built once after a change instead of on every scrape, which keeps /metrics fast with
    hundreds of series (see bench/). Labels are passed as a tuple in `labelnames` order."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str],
                 registry: CollectorRegistry) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, tuple(labelnames)
        self._values: dict[tuple[str, ...], float] = {}
        self._cache: list[Metric] | None = None
        self._lock = threading.Lock()
        registry.register(self)

    def set(self, labels: tuple[str, ...], value: float) -> None:
        if len(labels) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {labels}")
        with self._lock:
            self._values[tuple(str(v) for v in labels)] = float(value)
            self._cache = None

    def remove(self, labels: tuple[str, ...]) -> None:
        with self._lock:
            if self._values.pop(tuple(labels), None) is not None:
                self._cache = None

    def get(self, labels: tuple[str, ...]) -> float | None:
        with self._lock:
            return self._values.get(tuple(labels))

    def items(self) -> list[tuple[tuple[str, ...], float]]:
        with self._lock:
            return list(self._values.items())

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> list[Metric]:
        with self._lock:
            if self._cache is None:
                family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
                for labels, value in self._values.items():
                    family.add_metric(labels, value)
                self._cache = [family]
            return self._cache


class Metrics:
    """The registry every metric goes on, and the daemon's own metrics. Each job declares its
    families in its own metrics.py, on this registry, when it is built."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.daemon = SelfMetrics(self.registry)
        self.state_writes = StateWriteMetrics(self.registry)
