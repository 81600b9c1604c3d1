"""A tiny job written by following docs/architecture.md's "how to add a job" checklist, to
prove that a job needs nothing outside its own files. It counts: each run adds `step`.

In the real tree these pieces are files of the job's package (config.py, metrics.py, card.py,
job.py) and its registration line is a field of JobsConfig in monitor/jobs/registry.py; a test
cannot edit that file, so this one declares the line in a JobsConfig subclass (and the Config
that uses it). Nothing else names the job: the status page, /api/status, the Home Assistant
entities (MQTT) and the generated dashboards take it from its card and `PANELS`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from monitor.cards import Card, Figure, JobView, PanelSpec
from monitor.charts import Chart, Line
from monitor.config import Config, JobConfig, JobsConfig
from monitor.configschema import Duration, bounded
from monitor.entities import Entity, rounded
from monitor.htmlparts import num
from monitor.jobs.base import Job, JobEnv, Periodic
from monitor.series import SeriesKey, number

TOTAL = SeriesKey("total")
# its Grafana panel (it has no grafana/jobs/tick.py): on the generated Jobs dashboard
PANELS = (PanelSpec("Tick total", (("homemon_tick_total", "{{label}}"),),
                    description="Sum of the steps so far."),)


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


class TickCard(Card):
    job = "tick"

    def series(self, summary: Mapping[str, Any]) -> dict[SeriesKey, float | None]:
        return {TOTAL: number(summary.get("total"))}

    def status(self, view: JobView, now: float) -> dict[str, Any]:
        return {"tick": None if view.latest is None else {"total": view.latest.summary["total"]}}

    def figures(self, view: JobView) -> list[Figure]:
        return [Figure("tick total", number(view.latest.summary["total"]) if view.latest
                       else None)]

    def entities(self) -> list[Entity]:
        # its Home Assistant entity, published when `mqtt:` is configured
        return [Entity("total", "Tick total", lambda reading: rounded(reading.summary["total"]),
                       state_class="total_increasing", icon="mdi:counter")]

    def charts(self, view: JobView) -> list[Chart]:
        return [Chart("Tick total", "steps", [Line("total", "s0", view.table.points(TOTAL))])]

    def section(self, status: Mapping[str, Any], charts: Sequence[str], now: float) -> str:
        tick = status.get("tick") or {}
        return (f'<section id="tick"><h2>Tick</h2><p>{num(tick.get("total"), "steps", 0)}</p>'
                f'{"".join(charts)}</section>')


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

    def card(self) -> TickCard:
        return TickCard()

    def periodic(self) -> list[Periodic]:
        return [Periodic("heartbeat", 0.2, self.metrics.heartbeats.inc)]

    def close(self) -> None:
        self.hooks.append("close")


def build(env: JobEnv) -> TickJob:
    return TickJob(env.job_config("tick", TickConfig), TickMetrics(env.metrics.registry))
