"""Stand-in jobs for testing the runner and the daemon (not the jobs themselves)."""

from __future__ import annotations

import threading
import time
from typing import Any

from monitor.jobs.base import Job


class CountingJob(Job):
    """Succeeds, or raises when `fail` is set; counts its runs."""

    def __init__(self, name: str, *, fail: bool = False, uses_link: bool = False) -> None:
        self.name = name
        self.uses_link = uses_link
        self.fail = fail
        self.runs: list[float] = []

    def run(self, stop: threading.Event) -> dict[str, Any]:
        self.runs.append(time.monotonic())
        if self.fail:
            raise RuntimeError("the test asked this job to fail")
        return {"runs": len(self.runs)}


class HangingJob(Job):
    """Blocks until released; `obey_stop` decides whether it honours the stop event."""

    def __init__(self, name: str, *, obey_stop: bool = False, uses_link: bool = False) -> None:
        self.name = name
        self.uses_link = uses_link
        self.obey_stop = obey_stop
        self.release = threading.Event()
        self.started = threading.Event()
        self.runs = 0

    def run(self, stop: threading.Event) -> dict[str, Any]:
        self.runs += 1
        self.started.set()
        while not self.release.wait(0.05):
            if self.obey_stop and stop.is_set():
                raise TimeoutError("stopped")
        return {}
