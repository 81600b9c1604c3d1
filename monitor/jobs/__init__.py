"""The jobs. A job's module is imported only when the job is built (boto3 is heavy)."""

from __future__ import annotations

import importlib
from typing import cast

from monitor.config import JobConfig
from monitor.jobs.base import Job, JobEnv


def module_name(name: str, config: JobConfig) -> str:
    """Where the job `name` keeps `build(env) -> Job`: its config class says, else by name."""
    return type(config).module or f"{__name__}.{name}"


def build_job(name: str, env: JobEnv) -> Job:
    """Build the job `name` of env.config (enabled or not) with its module's `build(env)`."""
    module = importlib.import_module(module_name(name, env.config.job(name)))
    return cast(Job, module.build(env))
