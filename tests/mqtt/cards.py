"""The enabled jobs' cards of a config, built the daemon's way (each job's `build(env)` and
`card()`), for tests of the publisher without a daemon."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry

from monitor.cards import Card
from monitor.config import Config
from monitor.jobs.base import Job, JobEnv, build_job
from monitor.metrics import Metrics


@contextmanager
def built_jobs(config: Config, state_dir: Path,
               registry: CollectorRegistry | None = None) -> Iterator[dict[str, Job]]:
    """The enabled jobs of `config`, closed afterwards."""
    env = JobEnv(config, Metrics(registry or CollectorRegistry()), state_dir)
    jobs = {name: build_job(name, env)
            for name, job_config in config.job_configs().items() if job_config.enabled}
    try:
        yield jobs
    finally:
        for job in jobs.values():
            job.close()


def cards(jobs: dict[str, Job]) -> list[Card]:
    return [card for job in jobs.values() if (card := job.card()) is not None]
