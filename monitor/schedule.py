"""Runs functions every N seconds, each in a thread of its own.

What the daemon needs of a scheduler, without APScheduler (which with its imports,
multiprocessing, asyncio's siblings and tzlocal, was 2 MiB of the daemon's 32 MiB RSS):
a first run at a chosen delay, then every `interval` on a monotonic clock; one run of a
function at a time, and a run that overran its slots skips them (the next run is the next slot
still ahead).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

log = logging.getLogger("monitor.schedule")


class IntervalScheduler:
    def __init__(self) -> None:
        self._entries: list[tuple[str, float, Callable[[], object], float]] = []
        self._stop = threading.Event()
        self.running = False

    def add(self, name: str, interval: float, func: Callable[[], object], delay: float) -> None:
        """Call `func` `delay` seconds after start, then every `interval` seconds."""
        self._entries.append((name, interval, func, delay))

    def start(self) -> None:
        started = time.monotonic()
        for name, interval, func, delay in self._entries:
            threading.Thread(target=self._loop, args=(interval, func, started + delay),
                             name=f"schedule-{name}", daemon=True).start()
        self.running = True

    def shutdown(self) -> None:
        """No run starts after this; running ones are not waited for."""
        self.running = False
        self._stop.set()

    def _loop(self, interval: float, func: Callable[[], object], due: float) -> None:
        while not self._stop.wait(max(0.0, due - time.monotonic())):
            try:
                func()
            except Exception:  # a job's failure is the runner's to count; this is a bug
                log.exception("scheduled call failed")
            due += interval
            late = time.monotonic() - due
            if late > 0:  # overran: skip the slots that passed
                due += math.ceil(late / interval) * interval
