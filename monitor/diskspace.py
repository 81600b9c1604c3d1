"""Disk space where the daemon keeps its state, and failed state writes.

Both are computed or counted where they happen and registered on the registry passed in, so
an alert (DiskAlmostFull) can fire before a full disk stops the data budget from being saved.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class DiskSpaceCollector(Collector):
    """`homemon_disk_free_bytes` / `homemon_disk_size_bytes` per path, from statvfs at scrape
    time. A path that cannot be read (not created yet) has no sample, not a 0."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = [os.path.abspath(path) for path in paths]

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        free, size = self._families()
        for path in self.paths:
            try:
                stat = os.statvfs(path)
            except OSError:
                continue
            free.add_metric([path], stat.f_bavail * stat.f_frsize)
            size.add_metric([path], stat.f_blocks * stat.f_frsize)
        return [free, size]

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily("homemon_disk_free_bytes", "Bytes free to the daemon (as an "
                              "unprivileged user) on the filesystem holding path", labels=["path"]),
            GaugeMetricFamily("homemon_disk_size_bytes", "Size of the filesystem holding path",
                              labels=["path"])]


class StateWriteMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.failures = Counter("homemon_state_write_failures_total", "Writes of a state file "
                                "under state_dir that failed (full disk, read-only, ...); the "
                                "value is kept in memory and written again later", ["file"],
                                registry=registry)
