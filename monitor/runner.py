"""Runs one job: a hard timeout, the link lock, self-metrics and one log line per run.

Python threads cannot be killed, so a run that hangs past its timeout is counted as
`timeout`, told to stop through its event, and left to finish in the background; until it
does, the job is "stuck" (/healthz says 503) and later runs are `skipped`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor.errors import describe
from monitor.jobs.base import Job, JobSkipped
from monitor.logs import event
from monitor.metrics import Metrics

log = logging.getLogger("monitor.runner")


@dataclass
class RunOutcome:
    result: str  # success | failure | timeout | skipped
    duration: float
    summary: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    finished_at: float = field(default_factory=time.time)


class JobRunner:
    def __init__(self, job: Job, metrics: Metrics, *, interval: float, timeout: float,
                 link_lock: threading.Lock, shutdown: threading.Event) -> None:
        self.job = job
        self.name = job.name
        self.interval = interval
        self.timeout = timeout
        self._metrics = metrics.daemon
        self._link_lock = link_lock
        self._shutdown = shutdown
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()  # the run ended, or the daemon is shutting down
        self._run_started = 0.0
        self.last: RunOutcome | None = None
        self.last_success: float | None = None
        self._metrics.declare_job(self.name, interval)

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    @property
    def stuck(self) -> bool:
        """A run is still going past its timeout."""
        return self.running and time.monotonic() - self._run_started > self.timeout

    def signal_stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def join(self, timeout: float) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def run_once(self) -> RunOutcome:
        """Run the job and wait for it (at most its timeout). Called by the scheduler."""
        if self.running:
            return self._finish("skipped", 0.0, error="the previous run is still stuck")
        if self.job.uses_link and not self._link_lock.acquire(timeout=self._lock_wait()):
            return self._finish("skipped", 0.0, error="another link test holds the link")
        self._stop, self._wake = threading.Event(), threading.Event()
        if self._shutdown.is_set():
            self._stop.set()
        box: dict[str, Any] = {}
        thread = threading.Thread(target=self._call, args=(self._stop, self._wake, box),
                                  name=f"job-{self.name}", daemon=True)
        self._run_started = time.monotonic()
        thread.start()
        self._thread = thread  # only once started: join() at shutdown may read it any time
        # Not thread.join(timeout): shutdown must not wait for a hanging job.
        self._wake.wait(self.timeout)
        duration = time.monotonic() - self._run_started
        if "done" not in box:
            self._stop.set()
            if self._shutdown.is_set():
                return self._finish("failure", duration, error="interrupted by shutdown")
            return self._finish("timeout", duration, error=f"no result after {self.timeout:g} s")
        if "skipped" in box:
            return self._finish("skipped", duration, error=box["skipped"])
        if "error" in box:
            return self._finish("failure", duration, error=box["error"])
        return self._finish("success", duration, summary=box.get("summary") or {})

    def _lock_wait(self) -> float:
        return min(self.timeout, max(1.0, self.interval / 4))

    def _call(self, stop: threading.Event, done: threading.Event, box: dict[str, Any]) -> None:
        try:
            box["summary"] = self.job.run(stop)
        except JobSkipped as exc:
            box["skipped"] = str(exc) or "skipped"
        except Exception as exc:  # noqa: BLE001 - any failure is a counted fact
            box["error"] = describe(exc)
            log.debug("job %s raised", self.name, exc_info=True)
        finally:
            if self.job.uses_link:
                self._link_lock.release()
            box["done"] = True
            done.set()

    def _finish(self, result: str, duration: float, *, summary: Mapping[str, Any] | None = None,
                error: str | None = None) -> RunOutcome:
        outcome = RunOutcome(result, duration, dict(summary or {}), error)
        self._metrics.job_runs.labels(job=self.name, result=result).inc()
        if result != "skipped":
            self._metrics.job_duration.labels(job=self.name).observe(duration)
        if result == "success":
            self.last_success = outcome.finished_at
            self._metrics.job_last_success.labels(job=self.name).set(outcome.finished_at)
        self.last = outcome
        level = logging.INFO if result in ("success", "skipped") else logging.WARNING
        fields: dict[str, Any] = {"job": self.name, "result": result,
                                  "duration_seconds": round(duration, 3)}
        if error:
            fields["error"] = error
        fields.update(outcome.summary)
        event(log, level, f"job {self.name} {result}", **fields)
        return outcome
