"""What every job looks like to the daemon."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from monitor.config import Config
from monitor.metrics import Metrics


class JobSkipped(Exception):
    """Raised by a job that decided not to run (e.g. the data budget is used up)."""


@dataclass
class JobEnv:
    """What a job is built with: the whole config, the metrics and a place for state."""

    config: Config
    metrics: Metrics
    state_dir: Path
    shutdown: threading.Event = field(default_factory=threading.Event)


@dataclass
class Periodic:
    """A light background task a job asks the daemon to schedule (e.g. the EC2 watchdog)."""

    name: str
    interval: float
    func: Callable[[], None]


class Job(Protocol):
    name: str
    uses_link: bool  # saturates the link: bandwidth and iperf never overlap

    def run(self, stop: threading.Event) -> Mapping[str, Any]:
        """Measure and record once. Return the key figures (JSON-serialisable) for the log
        line, the status page and `home-monitor once`. Raise on failure, JobSkipped to skip.
        `stop` is set when the run times out or the daemon shuts down: return promptly."""
        ...


def on_start(job: Job) -> None:
    """Call the job's optional start-up hook (e.g. stop an orphaned EC2 instance)."""
    hook = getattr(job, "on_start", None)
    if hook is not None:
        hook()


def periodic_tasks(job: Job) -> list[Periodic]:
    tasks = getattr(job, "periodic", None)
    return list(tasks()) if tasks is not None else []


def close(job: Job) -> None:
    hook = getattr(job, "close", None)
    if hook is not None:
        hook()
