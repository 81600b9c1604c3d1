"""The last 24 h of each job's key figures, in memory, for the status page and /api/status.

Fed with the outcomes the runner already has (no scraping of our own /metrics). Each job has a
Table of 5-minute slots holding count, sum and max of each figure (`array('d')`, 8 bytes a
value): 24 h of any job is 288 slots, a few kB, whatever its interval. The latest result of each
job is kept whole. Nothing here survives a restart; what already persists (the month's data
budget) is read from its own file.
"""

from __future__ import annotations

import math
import threading
from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

WINDOW = 24 * 3600.0
SLOT = 300.0  # a chart's point: 288 a day, about one per pixel of a phone-width chart
MAX_OUTAGES = 500


class OutageLike(Protocol):
    start: float
    end: float


class OutageSource(Protocol):
    """monitor.outages.RecentOutages (the latency job's outage log)."""

    def recent(self) -> list[Any]: ...


@dataclass(frozen=True)
class Span:
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


class Table:
    """Per SLOT seconds of time: count, sum and max of each figure. A day is 288 slots, so the
    page draws a chart without walking every run, and memory does not grow with the interval."""

    def __init__(self, window: float = WINDOW, slot: float = SLOT) -> None:
        self.window, self.slot = window, slot
        self.starts = array("d")  # each slot's start time, ascending
        self.at_sums = array("d")  # with self.runs: a slot's point sits at its runs' mean time
        self.runs = array("d")
        self.columns: dict[str, tuple[array[float], array[float], array[float]]] = {}

    def add(self, at: float, row: Mapping[str, float | None]) -> None:
        start = at - at % self.slot
        if not self.starts or start > self.starts[-1]:
            self.starts.append(start)
            self.at_sums.append(0.0)
            self.runs.append(0.0)
            for sums, counts, highs in self.columns.values():
                sums.append(0.0)
                counts.append(0.0)
                highs.append(-math.inf)
        # a late result (clock stepped back) counts in the newest slot
        index = len(self.starts) - 1
        self.at_sums[index] += at
        self.runs[index] += 1
        for name, value in row.items():
            if name not in self.columns:
                size = len(self.starts)
                self.columns[name] = (array("d", [0.0]) * size, array("d", [0.0]) * size,
                                      array("d", [-math.inf]) * size)
            if value is None or value != value:  # no figure (NaN) this run
                continue
            sums, counts, highs = self.columns[name]
            sums[index] += value
            counts[index] += 1
            highs[index] = max(highs[index], value)
        self.prune(at)

    def prune(self, now: float) -> None:
        drop = bisect_left(self.starts, now - self.window - self.slot)
        if drop > 0:
            for values in (self.starts, self.at_sums, self.runs):
                del values[:drop]
            for column in self.columns.values():
                for values in column:
                    del values[:drop]

    def points(self, name: str, how: str = "mean") -> list[tuple[float, float]]:
        """(mean time of the slot's runs, mean or max) of the slots that have the figure."""
        if name not in self.columns:
            return []
        sums, counts, highs = self.columns[name]
        at_sums, runs = self.at_sums, self.runs
        return [(at_sums[i] / runs[i], highs[i] if how == "max" else sums[i] / counts[i])
                for i in range(len(self.starts)) if counts[i]]

    def names(self) -> list[str]:
        return list(self.columns)

    def __len__(self) -> int:
        return len(self.starts)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class History:
    """What the page shows over time. `observe(job, outcome)` after every run."""

    def __init__(self, window: float = WINDOW, outage_source: OutageSource | None = None) -> None:
        self.window = window
        self.outage_source = outage_source
        self.lock = threading.Lock()
        self.version = 0  # bumped on every change: the page caches its charts by it
        self.tables: dict[str, Table] = {}
        self.last: dict[str, tuple[float, dict[str, Any]]] = {}  # job -> (at, summary) success
        self.outages: deque[Span] = deque(maxlen=MAX_OUTAGES)
        self._seen_outages: set[tuple[float, float]] = set()
        self.internet_up: bool | None = None
        self.internet_since: float | None = None  # when the current up/down state was first seen
        self.extra: dict[str, Any] = {}  # figures read elsewhere (budget), kept for the page

    def table(self, job: str) -> Table:
        if job not in self.tables:
            self.tables[job] = Table(self.window)
        return self.tables[job]

    def observe(self, job: str, result: str, summary: Mapping[str, Any], at: float) -> None:
        with self.lock:
            if result == "success":
                self.last[job] = (at, dict(summary))
                row = ROWS.get(job, _no_row)(summary)
                if row:
                    self.table(job).add(at, row)
            if job == "latency":
                self._internet(result, summary, at)
            for table in self.tables.values():
                table.prune(at)
            self.version += 1

    def set_extra(self, key: str, value: Any) -> None:
        with self.lock:
            self.extra[key] = value
            self.version += 1

    def _internet(self, result: str, summary: Mapping[str, Any], at: float) -> None:
        up_figure = summary.get("internet_up") if result == "success" else None
        up = None if up_figure is None else bool(up_figure)
        if up is not None and up != self.internet_up:
            # a round samples the link from its start: the state changed about then
            started = at - (_number(summary.get("round_seconds")) or 0.0)
            self.internet_up, self.internet_since = up, started
        if self.outage_source is not None:
            self._add_outages(self.outage_source.recent())
        cutoff = at - self.window
        while self.outages and self.outages[0].end < cutoff:
            self.outages.popleft()

    def _add_outages(self, found: Iterable[OutageLike]) -> None:
        for outage in sorted(found, key=lambda o: o.start):
            self.add_outage(outage.start, outage.end)

    def add_outage(self, start: float, end: float) -> None:
        """Call with self.lock held (observe does)."""
        key = (round(start, 3), round(end, 3))
        if key in self._seen_outages:
            return
        if len(self._seen_outages) > 4 * MAX_OUTAGES:
            self._seen_outages = {(round(o.start, 3), round(o.end, 3)) for o in self.outages}
        self._seen_outages.add(key)
        self.outages.append(Span(start, end))
        if len(self.outages) > 1 and self.outages[-2].start > start:
            self.outages = deque(sorted(self.outages, key=lambda o: o.start),
                                 maxlen=MAX_OUTAGES)


# --- which figures of each job's summary become columns ----------------------------------------


def _no_row(summary: Mapping[str, Any]) -> dict[str, float | None]:
    return {}


def latency_row(summary: Mapping[str, Any]) -> dict[str, float | None]:
    row: dict[str, float | None] = {"internet_up": _number(summary.get("internet_up"))}
    for label, figures in (summary.get("targets") or {}).items():
        if isinstance(figures, Mapping):
            for key in ("avg_ms", "jitter_ms", "loss"):
                row[f"{label}\0{key}"] = _number(figures.get(key))
    return row


def bandwidth_row(summary: Mapping[str, Any]) -> dict[str, float | None]:
    return {"download_mbps": _number(summary.get("download_mbps")),
            "upload_mbps": _number(summary.get("upload_mbps"))}


def iperf_row(summary: Mapping[str, Any]) -> dict[str, float | None]:
    def mbps(key: str) -> float | None:
        bps = _number(summary.get(key))
        return None if bps is None else bps / 1e6

    return {"download_mbps": mbps("download_bits_per_second"),
            "upload_mbps": mbps("upload_bits_per_second")}


def aqi_row(summary: Mapping[str, Any]) -> dict[str, float | None]:
    return {"pm2.5": _number(summary.get("pm25_median")),
            "pm10": _number(summary.get("pm10_median")),
            "uk_daqi": _number(summary.get("uk_daqi_worst"))}


ROWS: dict[str, Callable[[Mapping[str, Any]], dict[str, float | None]]] = {
    "latency": latency_row, "bandwidth": bandwidth_row, "iperf": iperf_row, "aqi": aqi_row}
