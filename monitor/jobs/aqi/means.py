"""Running means of PM2.5 and PM10 per sensor, from the readings the daemon has seen.

Each reading counts once (keyed by its own timestamp, so the same sensor+timestamp fetched
twice is one reading). The history of the longest window (24 h) is kept and persisted as JSON
under the state directory (written atomically) so a restart does not restart the means. When
the window is not yet full the mean is over what is available.

Timestamps and values live in sorted float arrays and are saved base64-encoded (little-endian
float64): a 1,000-sensor area holds ~600,000 numbers a day, which as JSON numbers cost ~10x
the CPU to write (bench/aqi.py).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sys
from array import array
from bisect import bisect_left, bisect_right
from pathlib import Path

from monitor.logs import event
from monitor.statefile import write_atomic

log = logging.getLogger("monitor.jobs.aqi")

MEAN_SIZES = ("pm2.5", "pm10")
WINDOWS = {"24h": 24 * 3600.0, "1h": 3600.0}
KEEP = max(WINDOWS.values())
STATE_VERSION = 2


def _encode(numbers: array[float]) -> str:
    if sys.byteorder == "big":
        numbers = array("d", numbers)
        numbers.byteswap()
    return base64.b64encode(numbers.tobytes()).decode("ascii")


def _decode(text: str) -> array[float]:
    numbers = array("d", base64.b64decode(text, validate=True))
    if sys.byteorder == "big":
        numbers.byteswap()
    return numbers


class Series:
    """Readings of one sensor and size, sorted by timestamp, each timestamp once."""

    __slots__ = ("times", "values")

    def __init__(self, times: array[float] | None = None,
                 values: array[float] | None = None) -> None:
        self.times = times if times is not None else array("d")
        self.values = values if values is not None else array("d")
        if len(self.times) != len(self.values):
            raise ValueError("timestamps and values differ in length")
        if any(a >= b for a, b in zip(self.times, self.times[1:], strict=False)):
            raise ValueError("timestamps are not strictly increasing")

    def add(self, timestamp: float, value: float) -> bool:
        times = self.times
        if not times or timestamp > times[-1]:
            times.append(timestamp)
            self.values.append(value)
            return True
        at = bisect_left(times, timestamp)
        if at < len(times) and times[at] == timestamp:
            return False
        times.insert(at, timestamp)
        self.values.insert(at, value)
        return True

    def mean(self, start: float, end: float) -> float | None:
        """Mean of readings with start < timestamp <= end."""
        first, last = bisect_right(self.times, start), bisect_right(self.times, end)
        return sum(self.values[first:last]) / (last - first) if last > first else None

    def prune(self, start: float) -> None:
        cut = bisect_right(self.times, start)
        if cut:
            del self.times[:cut]
            del self.values[:cut]


class RunningMeans:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._history: dict[str, dict[str, Series]] = {}

    def add(self, sensor: str, timestamp: float, values: dict[str, float]) -> bool:
        """Remember one reading; False when this sensor+timestamp was already counted."""
        new = False
        sizes = self._history.setdefault(sensor, {})
        for size in MEAN_SIZES:
            if size in values:
                series = sizes.get(size)
                if series is None:
                    series = sizes[size] = Series()
                new = series.add(timestamp, values[size]) or new
        return new

    def mean(self, sensor: str, size: str, window: str, now: float) -> float | None:
        """Mean over readings in (now - window, now]; None when there is none."""
        series = self._history.get(sensor, {}).get(size)
        return None if series is None else series.mean(now - WINDOWS[window], now)

    def means(self, sensor: str, window: str, now: float) -> dict[str, float]:
        found = {size: self.mean(sensor, size, window, now) for size in MEAN_SIZES}
        return {size: value for size, value in found.items() if value is not None}

    def prune(self, now: float) -> None:
        start = now - KEEP
        for sensor in list(self._history):
            sizes = self._history[sensor]
            for size in list(sizes):
                sizes[size].prune(start)
                if not sizes[size].times:
                    del sizes[size]
            if not sizes:
                del self._history[sensor]

    def count(self, sensor: str, size: str) -> int:
        series = self._history.get(sensor, {}).get(size)
        return 0 if series is None else len(series.times)

    # --- persistence ---------------------------------------------------------------------------

    def to_json(self) -> dict[str, object]:
        return {"version": STATE_VERSION, "encoding": "base64 float64 little-endian",
                "sensors": {sensor: {size: {"t": _encode(series.times),
                                            "v": _encode(series.values)}
                                     for size, series in sizes.items()}
                            for sensor, sizes in self._history.items()}}
    def save(self) -> None:
        if self.path is None:
            return
        # dumps, not dump: only the one-shot encoder is the fast C one
        write_atomic(self.path, json.dumps(self.to_json(), separators=(",", ":")))

    def load(self) -> None:
        """Read the saved history; a missing file is a first start, a damaged one is logged
        and set aside (renamed *.bad) so the daemon starts with empty means."""
        if self.path is None or not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text())
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"unknown state version {data.get('version')!r}")
            history = {
                str(sensor): {size: Series(_decode(pair["t"]), _decode(pair["v"]))
                              for size, pair in sizes.items() if size in MEAN_SIZES}
                for sensor, sizes in data["sensors"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            bad = self.path.with_suffix(self.path.suffix + ".bad")
            os.replace(self.path, bad)
            event(log, logging.WARNING, "aqi state unreadable; starting with empty means",
                  path=str(self.path), moved_to=str(bad), error=str(exc))
            return
        self._history = history
