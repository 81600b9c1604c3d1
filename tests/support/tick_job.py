"""A tiny job written by following docs/architecture.md's "how to add a job" checklist, to
prove that a job needs nothing outside its own files. It counts: each run adds `step`.

In the real tree the config class sits in the job's package and its JobsConfig field in
monitor/config.py; a test cannot edit those, so this file also declares the registry line in a
JobsConfig subclass (and the Config that uses it).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from monitor.config import Config, JobConfig, JobsConfig
from monitor.configschema import Duration, bounded
from monitor.jobs.base import Job, JobEnv, Periodic


@dataclass
class TickConfig(JobConfig):
    enabled: bool = False
    interval: Duration = bounded(Duration(60), positive=True)
    timeout: Duration = bounded(Duration(5), positive=True)
    step: int = bounded(1, min=1)
    label: str = "tick"
    module = __name__  # where build(env) is; a job under monitor/jobs/ leaves this out

    def validate(self) -> list[tuple[str, str]]:
        return [("label", "must not be empty")] if self.enabled and not self.label else []


@dataclass
class TickJobs(JobsConfig):
    tick: TickConfig = field(default_factory=TickConfig)  # the registry line


@dataclass
class TickSiteConfig(Config):
    jobs: TickJobs = field(default_factory=TickJobs)


class TickMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.total = Gauge("homemon_tick_total", "Sum of the steps so far", ["label"],
                           registry=registry)
        self.heartbeats = Counter("homemon_tick_heartbeats", "Periodic task calls",
                                  registry=registry)


class TickJob(Job):
    name = "tick"
    uses_link = False

    def __init__(self, config: TickConfig, metrics: TickMetrics) -> None:
        self.config = config
        self.metrics = metrics
        self.total = 0
        self.hooks: list[str] = []

    def run(self, stop: threading.Event) -> dict[str, Any]:
        self.total += self.config.step
        self.metrics.total.labels(label=self.config.label).set(self.total)
        return {"total": self.total}

    def on_start(self) -> None:
        self.hooks.append("on_start")

    def periodic(self) -> list[Periodic]:
        return [Periodic("heartbeat", 0.2, self.metrics.heartbeats.inc)]

    def close(self) -> None:
        self.hooks.append("close")


def build(env: JobEnv) -> TickJob:
    config = env.config.job("tick")
    assert isinstance(config, TickConfig)
    return TickJob(config, TickMetrics(env.metrics.registry))
