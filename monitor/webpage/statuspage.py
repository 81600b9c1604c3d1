"""The status page at / and its JSON twin at /api/status, over the enabled jobs' cards."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from html import escape
from typing import Any

from monitor.cards import Card
from monitor.charts import legend, render
from monitor.history import History
from monitor.runner import JobRunner
from monitor.series import WINDOW
from monitor.webpage import page
from monitor.webpage.status import snapshot


class StatusPage:
    def __init__(self, history: History, runners: Sequence[JobRunner],
                 cards: Sequence[Card]) -> None:
        self.history, self.runners, self.cards = history, runners, list(cards)
        self._lock = threading.Lock()
        self._charts: tuple[tuple[int, int], dict[str, list[str]]] | None = None

    def status(self, now: float | None = None) -> dict[str, Any]:
        return snapshot(self.history, self.runners, self.cards, now)

    def api(self) -> bytes:
        return json.dumps(self.status(), indent=1).encode()

    def html(self) -> bytes:
        now = time.time()
        status, charts = self.status(now), self.charts(now)
        sections = [card.section(status, charts.get(card.job, []), now) for card in self.cards]
        return page.render(status, sections, now).encode()

    def charts(self, now: float) -> dict[str, list[str]]:
        """Each card's charts as HTML figures, by job. Rebuilt when the history changed or
        the time axis moved on a minute."""
        key = (self.history.version, int(now // 60))
        with self._lock:
            if self._charts is None or self._charts[0] != key:
                end = (key[1] + 1) * 60.0
                self._charts = (key, self._draw(end - WINDOW, end))
            return self._charts[1]

    def _draw(self, start: float, end: float) -> dict[str, list[str]]:
        with self.history.lock:
            charts = {card.job: list(card.charts(self.history.view(card.job)))
                      for card in self.cards}
        return {job: [f'<figure><figcaption>{escape(chart.title)}</figcaption>'
                      f'{render(chart, start, end)}{legend(chart)}</figure>' for chart in found]
                for job, found in charts.items()}

    @staticmethod
    def favicon() -> bytes:
        return page.FAVICON_SVG.format(colour=page.COLOURS[True]).encode()
