"""Running means of PM2.5 and PM10 per sensor, from the readings the daemon has seen.

Each reading counts once (keyed by its own timestamp, so the same sensor+timestamp fetched
twice is one reading). The history of the longest window (24 h) is kept and persisted as JSON
under the state directory (written atomically) so a restart does not restart the means. When
the window is not yet full the mean is over what is available.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from monitor.logs import event

log = logging.getLogger("monitor.jobs.aqi")

MEAN_SIZES = ("pm2.5", "pm10")
WINDOWS = {"24h": 24 * 3600.0, "1h": 3600.0}
KEEP = max(WINDOWS.values())
STATE_VERSION = 1


class RunningMeans:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        # sensor -> size -> {timestamp: value}
        self._history: dict[str, dict[str, dict[float, float]]] = {}

    def add(self, sensor: str, timestamp: float, values: dict[str, float]) -> bool:
        """Remember one reading; False when this sensor+timestamp was already counted."""
        new = False
        sizes = self._history.setdefault(sensor, {})
        for size in MEAN_SIZES:
            if size in values:
                series = sizes.setdefault(size, {})
                if timestamp not in series:
                    series[timestamp] = values[size]
                    new = True
        return new

    def mean(self, sensor: str, size: str, window: str, now: float) -> float | None:
        """Mean over readings in (now - window, now]; None when there is none."""
        start = now - WINDOWS[window]
        series = self._history.get(sensor, {}).get(size, {})
        picked = [value for ts, value in series.items() if start < ts <= now]
        return sum(picked) / len(picked) if picked else None

    def means(self, sensor: str, window: str, now: float) -> dict[str, float]:
        found = {size: self.mean(sensor, size, window, now) for size in MEAN_SIZES}
        return {size: value for size, value in found.items() if value is not None}

    def prune(self, now: float) -> None:
        start = now - KEEP
        for sensor in list(self._history):
            sizes = self._history[sensor]
            for size in list(sizes):
                sizes[size] = {ts: v for ts, v in sizes[size].items() if ts > start}
                if not sizes[size]:
                    del sizes[size]
            if not sizes:
                del self._history[sensor]

    def count(self, sensor: str, size: str) -> int:
        return len(self._history.get(sensor, {}).get(size, {}))

    # --- persistence ---------------------------------------------------------------------------

    def to_json(self) -> dict[str, object]:
        return {"version": STATE_VERSION, "sensors": {
            sensor: {size: [[ts, v] for ts, v in sorted(series.items())]
                     for size, series in sizes.items()}
            for sensor, sizes in self._history.items()}}

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp",
                                   dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(self.to_json(), handle, separators=(",", ":"))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self) -> None:
        """Read the saved history; a missing file is a first start, a damaged one is logged
        and set aside (renamed *.bad) so the daemon starts with empty means."""
        if self.path is None or not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text())
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"unknown state version {data.get('version')!r}")
            history: dict[str, dict[str, dict[float, float]]] = {}
            for sensor, sizes in data["sensors"].items():
                history[str(sensor)] = {
                    size: {float(ts): float(v) for ts, v in pairs}
                    for size, pairs in sizes.items() if size in MEAN_SIZES}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            bad = self.path.with_suffix(self.path.suffix + ".bad")
            os.replace(self.path, bad)
            event(log, logging.WARNING, "aqi state unreadable; starting with empty means",
                  path=str(self.path), moved_to=str(bad), error=str(exc))
            return
        self._history = history
