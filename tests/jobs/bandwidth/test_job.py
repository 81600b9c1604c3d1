"""The bandwidth job: what it records, and bytes charged even when a test fails."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from monitor.config import parse
from monitor.jobs.bandwidth.job import BandwidthJob, record
from monitor.jobs.bandwidth.metrics import BandwidthMetrics
from monitor.jobs.bandwidth.result import BandwidthError, BandwidthResult, ByteTally
from monitor.jobs.base import JobSkipped
from monitor.metrics import Metrics


def test_record_sets_only_what_was_measured():
    metrics = Metrics(CollectorRegistry())
    record(BandwidthResult(backend="http", server="s", download_bps=5e7, latency_seconds=0.01,
                           loaded_rtt_seconds={"download": 0.06}),
           BandwidthMetrics(metrics.registry))
    get = metrics.registry.get_sample_value
    labels = {"backend": "http", "server": "s"}
    assert get("homemon_bandwidth_download_bits_per_second", labels) == 5e7
    assert get("homemon_bandwidth_upload_bits_per_second", labels) is None  # absent, not 0
    assert get("homemon_bandwidth_loaded_rtt_seconds", {"direction": "download"}) == 0.06
    assert get("homemon_bandwidth_loaded_rtt_seconds", {"direction": "upload"}) is None
    assert get("homemon_bandwidth_idle_rtt_seconds") is None  # no idle ping this test


def test_idle_rtt_is_absent_until_a_test_measured_it():
    registry = CollectorRegistry()
    metrics = BandwidthMetrics(registry)
    assert b"homemon_bandwidth_idle_rtt_seconds " not in generate_latest(registry)
    record(BandwidthResult(backend="http", server="s", download_bps=5e7,
                           idle_rtt_seconds=0.012), metrics)
    assert registry.get_sample_value("homemon_bandwidth_idle_rtt_seconds") == 0.012
    assert b"# TYPE homemon_bandwidth_idle_rtt_seconds gauge" in generate_latest(registry)


class FailingBackend:
    """A backend that moved data, then failed: the job must still charge the bytes."""

    name = "http"

    def measure(self, stop, tally: ByteTally, probe):
        tally.add("download", 4000)
        raise BandwidthError("download: HTTP 403 Forbidden")


def make_job(tmp_path: Path, backend, **bandwidth) -> tuple[BandwidthJob, Metrics]:
    config = parse({"jobs": {"latency": {"targets": [{"host": "10.0.0.1"}]},  # not internet
                             "bandwidth": bandwidth}}, "test.yml")
    metrics = Metrics(CollectorRegistry())
    return BandwidthJob(config.jobs.bandwidth, BandwidthMetrics(metrics.registry),
                        state_dir=tmp_path, rtt_targets=config.jobs.latency.targets,
                        backend=backend), metrics


def test_failed_test_charges_its_bytes_and_the_budget_then_skips(tmp_path: Path):
    job, metrics = make_job(tmp_path, FailingBackend(), monthly_data_budget="3KB",
                            plan={"download_mbps": 500, "upload_mbps": 50})
    get = metrics.registry.get_sample_value
    assert get("homemon_bandwidth_plan_bits_per_second", {"direction": "download"}) == 5e8
    assert get("homemon_bandwidth_plan_bits_per_second", {"direction": "upload"}) == 5e7
    with pytest.raises(BandwidthError, match="403"):
        job.run(threading.Event())
    assert get("homemon_bandwidth_bytes_total", {"direction": "download"}) == 4000
    assert get("homemon_bandwidth_bytes_total", {"direction": "upload"}) == 0
    with pytest.raises(JobSkipped, match="budget"):
        job.run(threading.Event())
