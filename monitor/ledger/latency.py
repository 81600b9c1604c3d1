"""Per-probe latency results folded into one row per target and minute, and air-quality
readings into one mean per sensor and hour, in memory until written."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from monitor.ledger.records import AirQualityHour, LatencyMinute


def nearest_rank(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of sorted `values` (not empty): no interpolation, so the
    figure is always one that was measured."""
    return values[max(0, math.ceil(fraction * len(values)) - 1)]


Entry = TypeVar("Entry")


class _Periods(Generic[Entry]):
    """Entries per (name, period start) for the periods not yet closed: `close(before)`
    forgets periods that ended earlier; an item for a closed period is late: counted, not
    stored."""

    def __init__(self, seconds: int, entry: Callable[[], Entry]) -> None:
        self.seconds, self._new_entry = seconds, entry
        self._open: dict[tuple[str, int], Entry] = {}
        self.closed_before = -math.inf
        self.late = 0

    def _entry(self, name: str, at: float) -> Entry | None:
        start = int(at // self.seconds) * self.seconds
        if start < self.closed_before:  # +inf once closed for good
            self.late += 1
            return None
        return self._open.setdefault((name, start), self._new_entry())

    def _by_start(self) -> list[tuple[tuple[str, int], Entry]]:
        return sorted(self._open.items(), key=lambda item: item[0][1])

    def close(self, before: float) -> None:
        """Forget periods that end at or before `before` (their last rows were written)."""
        if math.isinf(before):
            self.closed_before = before
            self._open.clear()
            return
        self.closed_before = max(self.closed_before, int(before // self.seconds) * self.seconds)
        for key in [key for key in self._open if key[1] + self.seconds <= before]:
            del self._open[key]

    def is_open(self, name: str, start: int) -> bool:
        return (name, start) in self._open

    def __len__(self) -> int:
        return len(self._open)


@dataclass
class _Minute:
    sent: int = 0
    rtts: list[float] = field(default_factory=list)  # in arrival order, for jitter


class MinuteAccumulator(_Periods[_Minute]):
    """Probes of the minutes not yet closed; `rows()` gives each open minute's figures so far
    (the writer stores them as they grow)."""

    def __init__(self) -> None:
        super().__init__(60, _Minute)

    def add(self, target: str, at: float, rtt: float | None) -> None:
        entry = self._entry(target, at)
        if entry is None:
            return
        entry.sent += 1
        if rtt is not None:
            entry.rtts.append(rtt)

    def rows(self) -> list[LatencyMinute]:
        return [summarise(target, minute, entry.sent, entry.rtts)
                for (target, minute), entry in self._by_start()]


def summarise(target: str, minute: int, sent: int, rtts: list[float]) -> LatencyMinute:
    if not rtts:
        return LatencyMinute(minute, target, sent, 0, None, None, None)
    ordered = sorted(rtts)
    jitter = (sum(abs(b - a) for a, b in zip(rtts, rtts[1:], strict=False)) / (len(rtts) - 1)
              if len(rtts) > 1 else None)
    return LatencyMinute(minute, target, sent, len(rtts), sum(rtts) / len(rtts),
                         nearest_rank(ordered, 0.95), jitter)


@dataclass
class _Hour:
    samples: int = 0
    pm25: list[float] = field(default_factory=list)
    pm10: list[float] = field(default_factory=list)


class HourAccumulator(_Periods[_Hour]):
    """Air-quality readings of the hours not yet closed, like MinuteAccumulator per hour."""

    def __init__(self) -> None:
        super().__init__(3600, _Hour)

    def add(self, sensor: str, at: float, pm25: float | None, pm10: float | None) -> None:
        entry = self._entry(sensor, at)
        if entry is None:
            return
        entry.samples += 1
        if pm25 is not None:
            entry.pm25.append(pm25)
        if pm10 is not None:
            entry.pm10.append(pm10)

    def rows(self) -> list[AirQualityHour]:
        return [AirQualityHour(hour, sensor, _mean(entry.pm25), _mean(entry.pm10), entry.samples)
                for (sensor, hour), entry in self._by_start()]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
