"""What every job looks like to the daemon: the Job Protocol and what a job is built with.

Each job module has one constructor for the daemon, `build(env: JobEnv) -> Job`. It is the
only code that reads `env`: it hands the job class its own config, its metrics and anything it
needs from elsewhere (another job's config included) as explicit arguments.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

from monitor.cards import Card
from monitor.jobconfig import JobConfig
from monitor.metrics import Metrics


class JobSkipped(Exception):
    """Raised by a job that decided not to run (e.g. the data budget is used up)."""


class Aborted(Exception):
    """The job was told to stop (its run timed out or the daemon is shutting down)."""


C = TypeVar("C", bound=JobConfig)


class SiteConfig(Protocol):
    """What a job sees of the whole config (monitor.config.Config, which sits above the jobs:
    it gathers their config classes through the registry)."""

    def job(self, name: str) -> JobConfig:
        """The config of the job `name`; KeyError for a name that is no job."""
        ...


@dataclass
class JobEnv:
    """What `build(env)` gets: the whole config, the metrics, a place for state, shutdown."""

    config: SiteConfig
    metrics: Metrics
    state_dir: Path
    shutdown: threading.Event = field(default_factory=threading.Event)

    def job_config(self, name: str, kind: type[C]) -> C:
        """The config of the job `name` as its class `kind` (a job's own, or another job's it
        reads, such as the latency job's targets)."""
        config = self.config.job(name)
        if not isinstance(config, kind):
            raise TypeError(f"jobs.{name} is a {type(config).__name__}, not a {kind.__name__}")
        return config


@dataclass
class Periodic:
    """A light background task a job asks the daemon to schedule (e.g. the EC2 watchdog)."""

    name: str
    interval: float
    func: Callable[[], None]


class Job(Protocol):
    """A job class subclasses this Protocol, so the optional hooks default to doing nothing."""

    name: str  # the key under `jobs:`; the `job` label of the homemon_job_* metrics
    uses_link: bool  # saturates the link: such jobs (bandwidth, iperf) never overlap

    def run(self, stop: threading.Event) -> Mapping[str, Any]:
        """Measure and record once. Return the key figures (JSON-serialisable) for the log
        line, the status page and `home-monitor once`. Raise on failure, JobSkipped to skip.
        `stop` is set when the run times out or the daemon shuts down: return promptly."""
        ...

    def on_start(self) -> None:
        """Called once before the first run, in the daemon's thread (and by `once`). Must be
        quick and bounded and must not raise: log a problem, the runs will meet it again."""
        return

    def periodic(self) -> Sequence[Periodic]:
        """Background tasks to schedule beside the runs, asked once at start. Each `func` must
        be bounded, must not raise, and may run while a run is going on."""
        return ()

    def card(self) -> Card | None:
        """What the job adds to the history, /api/status and the status page
        (monitor/cards.py), asked once at start; None: only its row in the jobs table."""
        return None

    def close(self) -> None:
        """Called once at shutdown (and after `once`), after the last run ended or was given
        up on: release sockets and sessions. Must not raise."""
        return


class AnyEvent:
    """Set when any of the events is, e.g. a run's stop event or the daemon's shutdown."""

    def __init__(self, *events: threading.Event) -> None:
        self.events = events

    def is_set(self) -> bool:
        return any(e.is_set() for e in self.events)

    def wait(self, timeout: float) -> bool:
        """Like Event.wait: True as soon as one event is set, False after `timeout`."""
        deadline = time.monotonic() + timeout
        while not self.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.events[0].wait(min(0.1, left))
        return True


def module_name(name: str, config: JobConfig) -> str:
    """Where the job `name` keeps `build(env) -> Job`: its config class says, else its job.py."""
    return type(config).module or f"monitor.jobs.{name}.job"


def build_job(name: str, env: JobEnv) -> Job:
    """Build the job `name` of env.config (enabled or not) with its module's `build(env)`. The
    job's modules (and their libraries) are imported here, so a disabled job costs nothing."""
    module = importlib.import_module(module_name(name, env.config.job(name)))
    return cast(Job, module.build(env))
