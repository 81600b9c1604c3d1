"""The status page at / and its JSON twin at /api/status."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence

from monitor.config import Config
from monitor.history import WINDOW, History
from monitor.metrics import Metrics
from monitor.runner import JobRunner
from monitor.webpage import charts_data, page
from monitor.webpage.status import snapshot


class StatusPage:
    def __init__(self, history: History, runners: Sequence[JobRunner], config: Config,
                 metrics: Metrics) -> None:
        self.history, self.runners, self.config, self.metrics = history, runners, config, metrics
        self._lock = threading.Lock()
        self._charts: tuple[tuple[int, int], list[str]] | None = None

    def status(self, now: float | None = None) -> dict:
        return snapshot(self.history, self.runners, self.config, self.metrics, now)

    def api(self) -> bytes:
        return json.dumps(self.status(), indent=1).encode()

    def html(self) -> bytes:
        now = time.time()
        return page.render(self.status(now), self.charts(now), now).encode()

    def charts(self, now: float) -> list[str]:
        """Rebuilt when the history changed or the time axis moved on a minute."""
        key = (self.history.version, int(now // 60))
        with self._lock:
            if self._charts is None or self._charts[0] != key:
                end = (key[1] + 1) * 60.0
                self._charts = (key, charts_data.build(self.history, end - WINDOW, end))
            return self._charts[1]

    @staticmethod
    def favicon() -> bytes:
        return page.FAVICON_SVG.format(colour=page.COLOURS[True]).encode()
