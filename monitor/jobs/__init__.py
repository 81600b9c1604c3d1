"""The four jobs. Modules are imported only when their job is enabled (boto3 is heavy)."""

from __future__ import annotations

import importlib

from monitor.jobs.base import Job, JobEnv

_MODULES = {
    "latency": "monitor.jobs.latency",
    "bandwidth": "monitor.jobs.bandwidth",
    "iperf": "monitor.jobs.iperf",
    "aqi": "monitor.jobs.aqi",
}


def build_job(name: str, env: JobEnv) -> Job:
    """Each job module has `build(env) -> Job`."""
    module = importlib.import_module(_MODULES[name])
    return module.build(env)
