"""The month's data usage of bandwidth tests, kept in a JSON file so a restart keeps it."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from monitor.logs import event
from monitor.statefile import write_atomic

log = logging.getLogger("monitor.jobs.bandwidth")


def current_month(now: float | None = None) -> str:
    return time.strftime("%Y-%m", time.gmtime(time.time() if now is None else now))


class UsageStore:
    """`{"month": "2026-11", "bytes": 123}`; a new UTC month starts again from 0."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def used(self, month: str | None = None) -> int:
        month = month or current_month()
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
        month = month or current_month()
        total = self.used(month) + max(0, count)
        write_atomic(self.path, json.dumps({"month": month, "bytes": total}))
        return total
