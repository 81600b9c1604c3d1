"""The last 24 h of each job, in memory, for the status page and /api/status.

Fed with the outcomes the runner already has (no scraping of our own /metrics). Each enabled
job's card says which typed series a result adds (monitor/cards.py); the history keeps them in
a Table per job (monitor/series.py) with the job's latest success, and knows no job by name.
Nothing here survives a restart: this class is the seam a persistent store can sit behind.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from monitor.cards import Card, JobView
from monitor.series import WINDOW, Latest, Table


class History:
    """What the page shows over time. `observe(job, result, summary, at)` after every run."""

    def __init__(self, cards: Sequence[Card] = (), window: float = WINDOW) -> None:
        self.window = window
        self.cards = {card.job: card for card in cards}
        self.lock = threading.Lock()
        self.version = 0  # bumped on every change: the page caches its charts by it
        self.tables: dict[str, Table] = {}
        self.latest: dict[str, Latest] = {}

    def table(self, job: str) -> Table:
        if job not in self.tables:
            self.tables[job] = Table(self.window)
        return self.tables[job]

    def observe(self, job: str, result: str, summary: Mapping[str, Any], at: float) -> None:
        card = self.cards.get(job)
        with self.lock:
            if result == "success":
                self.latest[job] = Latest(at, dict(summary))
                row = card.series(summary) if card is not None else {}
                if row:
                    self.table(job).add(at, row)
            if card is not None:
                card.observe(result, summary, at)
            for table in self.tables.values():
                table.prune(at)
            self.version += 1

    def view(self, job: str) -> JobView:
        """Call with self.lock held."""
        return JobView(self.table(job), self.latest.get(job))
