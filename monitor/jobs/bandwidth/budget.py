"""The month's data usage of bandwidth tests, kept in a JSON file so a restart keeps it."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from monitor.logs import event
from monitor.statefile import write_atomic

log = logging.getLogger("monitor.jobs.bandwidth")


def current_month(now: float | None = None) -> str:
    return time.strftime("%Y-%m", time.gmtime(time.time() if now is None else now))


class UsageStore:
    """`{"month": "2026-11", "bytes": 123}`; a new UTC month starts again from 0.

    Bytes that could not be written (full disk, read-only state_dir) are kept in memory and
    count towards `used()` all the same, so the budget still skips runs; the next `add()`
    writes them too. Each failure calls `on_write_failure`; only the first of a streak is
    logged."""

    def __init__(self, path: Path,
                 on_write_failure: Callable[[OSError], None] | None = None) -> None:
        self.path = path
        self.on_write_failure = on_write_failure
        self._unsaved: dict[str, int] = {}  # month -> bytes not on disk yet
        self._failing = False
        self._lock = threading.Lock()

    def used(self, month: str | None = None) -> int:
        month = month or current_month()
        return self._saved(month) + self._unsaved.get(month, 0)

    def _saved(self, month: str) -> int:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            # a damaged file must not stop tests forever; say so and start the month again
            event(log, logging.WARNING, "bandwidth usage file unreadable; counting from 0",
                  path=str(self.path), error=str(exc))
            return 0
        if not isinstance(data, dict) or data.get("month") != month:
            return 0
        used = data.get("bytes")
        return used if isinstance(used, int) and used >= 0 else 0

    def add(self, count: int, month: str | None = None) -> int:
        """Charge `count` bytes; returns the month's total. Never raises for a failed write."""
        month = month or current_month()
        with self._lock:
            unsaved = self._unsaved.get(month, 0) + max(0, count)
            self._unsaved = {month: unsaved}  # an older month's bytes no longer matter
            total = self._saved(month) + unsaved
            try:
                write_atomic(self.path, json.dumps({"month": month, "bytes": total}))
            except OSError as exc:
                self._write_failed(exc, total)
                return total
            self._unsaved = {}
            if self._failing:
                event(log, logging.INFO, "bandwidth usage file written again",
                      path=str(self.path), month_bytes=total)
            self._failing = False
            return total

    def _write_failed(self, exc: OSError, total: int) -> None:
        if self.on_write_failure is not None:
            self.on_write_failure(exc)
        if not self._failing:
            event(log, logging.WARNING, "cannot write the bandwidth usage file; keeping the "
                  "month's usage in memory and retrying after each test", path=str(self.path),
                  error=exc.strerror or str(exc), month_bytes=total)
        self._failing = True
