"""The last 24 h of each job for the status page and /api/status, read from the ledger.

Fed with the outcomes the runner already has (no scraping of our own /metrics). Each enabled
job's card says which typed series a result adds (monitor/cards.py); the history keeps them in
a Table per job (monitor/series.py) with the job's latest success, and knows no job by name.

With a ledger, each run's records go to it (`Card.ledger_rows`) and the Tables of the cards
that keep their history there are rebuilt from its last 24 h (`Card.from_ledger`) whenever it
has committed new rows, so a restart, a kill -9 or a power cut keeps the charts and the outage
list. The runs seen since that commit are added on top from memory, so the page does not lag
the ledger's write interval. Without one (ledger.enabled: false), or for a card that keeps
nothing there, the Table is filled in memory from each run and a restart empties it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from monitor.cards import Card, JobView
from monitor.ledger.store import Ledger
from monitor.logs import event
from monitor.series import WINDOW, Latest, SeriesKey, Table

log = logging.getLogger("monitor.history")

# runs kept per job between two reads of the ledger (a commit every write interval, 5 min at
# most); while the ledger cannot be written the Table keeps them anyway
MAX_SINCE_READ = 1000


class History:
    """What the page shows over time. `observe(job, result, summary, at)` after every run."""

    def __init__(self, cards: Sequence[Card] = (), window: float = WINDOW,
                 ledger: Ledger | None = None, clock: Callable[[], float] = time.time) -> None:
        self.window = window
        self.cards = {card.job: card for card in cards}
        self.ledger = ledger
        self.lock = threading.Lock()
        self.version = 0  # bumped on every change: the page caches its charts by it
        self.tables: dict[str, Table] = {}
        self.latest: dict[str, Latest] = {}
        self.from_ledger: set[str] = set()  # the jobs whose Table is the ledger's
        self._commits: int | None = None  # the ledger's commit count the tables were read at
        self.clock = clock
        # with a ledger: each run's row since the last read, (seen at, finished at, row)
        self._since_read: dict[str, deque[tuple[float, float, Mapping[SeriesKey, float | None]]]]
        self._since_read = {}

    def table(self, job: str) -> Table:
        if job not in self.tables:
            self.tables[job] = Table(self.window)
        return self.tables[job]

    def observe(self, job: str, result: str, summary: Mapping[str, Any], at: float) -> None:
        card = self.cards.get(job)
        if card is not None and self.ledger is not None:
            try:
                for record in card.ledger_rows(result, summary, at):
                    self.ledger.record(record)
            except Exception as exc:  # noqa: BLE001 - a card's bug must not stop the history
                event(log, logging.ERROR, "history: a card's ledger rows failed", job=job,
                      error=repr(exc))
        with self.lock:
            if result == "success":
                self.latest[job] = Latest(at, dict(summary))
                row = card.series(summary) if card is not None else {}
                if row:
                    self.table(job).add(at, row)
                    if self.ledger is not None:
                        recent = self._since_read.setdefault(job, deque(maxlen=MAX_SINCE_READ))
                        recent.append((self.clock(), at, row))
            if card is not None:
                card.observe(result, summary, at)
            for table in self.tables.values():
                table.prune(at)
            self.version += 1

    def refresh(self, now: float | None = None) -> None:
        """Rebuild the ledger-backed Tables when the ledger committed since the last read (a
        commit every write interval). The daemon calls it after each job run and each write
        interval, so a page request never pays for the query."""
        if self.ledger is None or self.ledger.stats.commits == self._commits:
            return
        now = self.clock() if now is None else now
        commits, committed_at = self.ledger.stats.commits, self.ledger.stats.last_commit_at
        series = self.ledger.series_24h(now)
        with self.lock:
            for job, card in self.cards.items():
                rows = card.from_ledger(series)
                recent = self._since_read.get(job, deque())
                if rows is None:
                    recent.clear()  # its Table is the memory one: nothing to add again
                    continue
                table = Table(self.window)
                for at, row in sorted(rows, key=lambda item: item[0]):
                    table.add(at, row)
                # runs recorded after that commit are not in what was read: add them again
                while recent and committed_at is not None and recent[0][0] < committed_at:
                    recent.popleft()
                for _, at, row in recent:
                    table.add(at, row)
                table.prune(now)
                self.tables[job] = table
                self.from_ledger.add(job)
            self._commits = commits
            self.version += 1

    def view(self, job: str) -> JobView:
        """Call with self.lock held."""
        return JobView(self.table(job), self.latest.get(job))
