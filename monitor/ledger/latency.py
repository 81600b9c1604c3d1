"""Per-probe latency results folded into one row per target and minute, and air-quality
readings into one mean per sensor and hour, in memory until written."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from monitor.ledger.records import AirQualityHour, LatencyMinute


def nearest_rank(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of sorted `values` (not empty): no interpolation, so the
    figure is always one that was measured."""
    return values[max(0, math.ceil(fraction * len(values)) - 1)]


@dataclass
class _Minute:
    sent: int = 0
    rtts: list[float] = field(default_factory=list)  # in arrival order, for jitter


class MinuteAccumulator:
    """Probes of the minutes not yet closed; `rows()` gives each open minute's figures so far
    (the writer stores them as they grow), `close(before)` forgets minutes that ended earlier.
    A probe for a closed minute is late: counted, not stored."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, int], _Minute] = {}
        self.closed_before = -math.inf
        self.late = 0

    def add(self, target: str, at: float, rtt: float | None) -> None:
        minute = int(at // 60) * 60
        if minute < self.closed_before:  # +inf once closed for good
            self.late += 1
            return
        entry = self._open.setdefault((target, minute), _Minute())
        entry.sent += 1
        if rtt is not None:
            entry.rtts.append(rtt)

    def rows(self) -> list[LatencyMinute]:
        return [summarise(target, minute, entry.sent, entry.rtts)
                for (target, minute), entry in sorted(self._open.items(),
                                                      key=lambda item: item[0][1])]

    def close(self, before: float) -> None:
        """Forget minutes that end at or before `before` (their last rows were written)."""
        if math.isinf(before):
            self.closed_before = before
            self._open.clear()
            return
        self.closed_before = max(self.closed_before, int(before // 60) * 60)
        for key in [key for key in self._open if key[1] + 60 <= before]:
            del self._open[key]

    def is_open(self, target: str, minute: int) -> bool:
        return (target, minute) in self._open

    def __len__(self) -> int:
        return len(self._open)


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


class HourAccumulator:
    """Air-quality readings of the hours not yet closed, like MinuteAccumulator per hour."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, int], _Hour] = {}
        self.closed_before = -math.inf
        self.late = 0

    def add(self, sensor: str, at: float, pm25: float | None, pm10: float | None) -> None:
        hour = int(at // 3600) * 3600
        if hour < self.closed_before:
            self.late += 1
            return
        entry = self._open.setdefault((sensor, hour), _Hour())
        entry.samples += 1
        if pm25 is not None:
            entry.pm25.append(pm25)
        if pm10 is not None:
            entry.pm10.append(pm10)

    def rows(self) -> list[AirQualityHour]:
        return [AirQualityHour(hour, sensor, _mean(entry.pm25), _mean(entry.pm10), entry.samples)
                for (sensor, hour), entry in sorted(self._open.items(),
                                                    key=lambda item: item[0][1])]

    def close(self, before: float) -> None:
        if math.isinf(before):
            self.closed_before = before
            self._open.clear()
            return
        self.closed_before = max(self.closed_before, int(before // 3600) * 3600)
        for key in [key for key in self._open if key[1] + 3600 <= before]:
            del self._open[key]

    def is_open(self, sensor: str, hour: int) -> bool:
        return (sensor, hour) in self._open


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
