"""The job registry: JobsConfig's fields are the jobs; each builds through its module."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from prometheus_client import CollectorRegistry

from monitor.config import JOB_NAMES, Config, JobConfig, JobsConfig
from monitor.jobs.base import Job, JobEnv, build_job
from monitor.metrics import Metrics


def test_every_jobs_config_field_is_a_job_config() -> None:
    assert [f.name for f in fields(JobsConfig)] == list(JOB_NAMES)
    for name, config in Config().job_configs().items():
        assert isinstance(config, JobConfig), name
        assert config.interval > 0
        assert config.timeout > 0


def test_every_job_builds_from_the_registry_under_its_name(tmp_path: Path) -> None:
    env = JobEnv(Config(), Metrics(CollectorRegistry()), tmp_path)
    for name in JOB_NAMES:
        job = build_job(name, env)
        try:
            assert Job in type(job).__mro__  # hooks default to doing nothing
            assert job.name == name
            assert list(job.periodic()) == []  # no EC2 instance configured
        finally:
            job.close()
