"""The figures of the status page as one JSON-able dict: /api/status serves it as is and the
HTML page is rendered from it, so both always say the same. Each enabled job's card adds its
keys; this module names no job."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from monitor import __version__
from monitor.cards import Card
from monitor.history import History
from monitor.htmlparts import iso
from monitor.runner import JobRunner


def snapshot(history: History, runners: Sequence[JobRunner], cards: Sequence[Card],
             now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    status: dict[str, Any] = {"version": __version__, "generated_at": iso(now),
                              "internet": None}  # the latency card's, when that job runs
    with history.lock:
        for card in cards:
            status.update(card.status(history.view(card.job), now))
    status["jobs"] = [_job(runner) for runner in runners]
    return status


def _job(runner: JobRunner) -> dict[str, Any]:
    last = runner.last
    if runner.stuck:
        health = "stuck"
    elif last is None:
        health = "waiting"
    elif last.result == "success":
        health = "ok"
    elif last.result == "skipped":
        health = "skipped"
    else:
        health = "failing"
    return {"name": runner.name, "health": health, "interval_seconds": runner.interval,
            "last_result": last.result if last else None,
            "last_run": iso(last.finished_at) if last else None,
            "last_duration_seconds": round(last.duration, 3) if last else None,
            "last_success": iso(runner.last_success),
            "error": last.error if last else None}
