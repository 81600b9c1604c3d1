"""A job's last 24 h of figures in memory: typed series keys, 5-minute slots, the latest result.

Each job has a Table of 5-minute slots holding count, sum and max of each series
(`array('d')`, 8 bytes a value): 24 h of any job is 288 slots, a few kB, whatever its interval.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

WINDOW = 24 * 3600.0
SLOT = 300.0  # a chart's point: 288 a day, about one per pixel of a phone-width chart


@dataclass(frozen=True)
class SeriesKey:
    """One series of a job: a figure (e.g. "rtt_ms"), per label (a target, a direction)."""

    figure: str
    label: str = ""


@dataclass(frozen=True)
class Latest:
    """A job's last successful run: when it finished and its key figures."""

    at: float
    summary: Mapping[str, Any]


class Table:
    """Per SLOT seconds of time: count, sum and max of each series. A day is 288 slots, so the
    page draws a chart without walking every run, and memory does not grow with the interval."""

    def __init__(self, window: float = WINDOW, slot: float = SLOT) -> None:
        self.window, self.slot = window, slot
        self.starts = array("d")  # each slot's start time, ascending
        self.at_sums = array("d")  # with self.runs: a slot's point sits at its runs' mean time
        self.runs = array("d")
        self.columns: dict[SeriesKey, tuple[array[float], array[float], array[float]]] = {}

    def add(self, at: float, row: Mapping[SeriesKey, float | None]) -> None:
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
        for key, value in row.items():
            if key not in self.columns:
                size = len(self.starts)
                self.columns[key] = (array("d", [0.0]) * size, array("d", [0.0]) * size,
                                     array("d", [-math.inf]) * size)
            if value is None or value != value:  # no figure (NaN) this run
                continue
            sums, counts, highs = self.columns[key]
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

    def points(self, key: SeriesKey,
               how: Literal["mean", "max"] = "mean") -> list[tuple[float, float]]:
        """(mean time of the slot's runs, mean or max) of the slots that have the series."""
        if key not in self.columns:
            return []
        sums, counts, highs = self.columns[key]
        at_sums, runs = self.at_sums, self.runs
        return [(at_sums[i] / runs[i], highs[i] if how == "max" else sums[i] / counts[i])
                for i in range(len(self.starts)) if counts[i]]

    def series_keys(self) -> list[SeriesKey]:
        return list(self.columns)

    def __len__(self) -> int:
        return len(self.starts)


def number(value: Any) -> float | None:
    """A summary's figure as a float; None for a missing or non-numeric one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
