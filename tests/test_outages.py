"""The recent-outage log and its exposition: the figures the outage report is made of."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from monitor.jobs.latency.config import LatencyConfig, PingTarget
from monitor.jobs.latency.job import LatencyJob
from monitor.jobs.latency.metrics import LatencyMetrics
from monitor.outages import METRIC, RecentOutages, RecentOutagesCollector, local_iso
from tests.support.clock import Clock


@pytest.fixture
def berlin(monkeypatch):
    """Local time = Europe/Berlin for this process (libc reads TZ on tzset)."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_recent_is_newest_first_and_forgets_after_keep_seconds():
    clock = Clock(10_000.0)
    outages = RecentOutages(keep_seconds=3600, clock=clock)
    outages.add(9_000.0, 9_090.0)
    outages.add(9_500.0, 9_512.5)
    assert [(o.start, o.end, o.seconds) for o in outages.recent()] == [
        (9_500.0, 9_512.5, 12.5), (9_000.0, 9_090.0, 90.0)]
    clock.now = 9_090.0 + 3600 + 1  # the older one ended more than an hour ago
    assert [o.end for o in outages.recent()] == [9_512.5]
    clock.now = 9_512.5 + 3600 + 1
    assert outages.recent() == []


def test_only_the_newest_max_items_are_kept():
    clock = Clock(1_000.0)
    outages = RecentOutages(max_items=3, clock=clock)
    for k in range(5):
        outages.add(100.0 + 10 * k, 105.0 + 10 * k)
    assert [o.start for o in outages.recent()] == [140.0, 130.0, 120.0]


def test_an_outage_cannot_end_before_it_starts():
    with pytest.raises(ValueError, match="before it starts"):
        RecentOutages().add(20.0, 10.0)


def test_labels_are_local_iso_time_to_the_second_with_offset(berlin):
    winter = datetime(2026, 12, 1, 1, 13, 5, 400_000, tzinfo=UTC).timestamp()
    assert local_iso(winter) == "2026-12-01T02:13:05+01:00"
    summer = datetime(2026, 6, 30, 22, 0, 59, 600_000, tzinfo=UTC).timestamp()  # rounds up
    assert local_iso(summer) == "2026-07-01T00:01:00+02:00"


def test_collector_exports_each_recent_outage_with_its_length(berlin):
    registry = CollectorRegistry()
    start = datetime(2026, 12, 1, 1, 13, 5, tzinfo=UTC).timestamp()
    clock = Clock(start + 600)
    outages = RecentOutages(clock=clock)
    RecentOutagesCollector(outages, registry)
    assert f"{METRIC}{{".encode() not in generate_latest(registry)  # nothing before one ends
    outages.add(start, start + 90.0, "isp", "your router answered, the ISP's first hop did not")
    labels = {"start": "2026-12-01T02:13:05+01:00", "end": "2026-12-01T02:14:35+01:00",
              "cause": "isp", "detail": "your router answered, the ISP's first hop did not"}
    assert registry.get_sample_value(METRIC, labels) == 90.0
    clock.now = start + 90 + 3601
    assert registry.get_sample_value(METRIC, labels) is None


def _job(metrics: LatencyMetrics) -> LatencyJob:
    return LatencyJob(LatencyConfig(targets=[PingTarget("192.0.2.1", name="isp",
                                                        internet=True)]), metrics)


def _slots(job: LatencyJob, start: float, pattern: str) -> None:
    """One decided probe slot a second from `start`: '.' answered after 5 ms, 'x' silent."""
    for index, mark in enumerate(pattern):
        at = start + index
        job._on_slot(index, at, at + 0.005 if mark == "." else None)


def test_the_latency_job_logs_an_outage_at_the_internet_back_edge():
    registry = CollectorRegistry()
    metrics = LatencyMetrics(registry)
    job = _job(metrics)
    start = time.time() - 60
    _slots(job, start, ".xxxx")
    assert metrics.recent_outages.recent() == []  # never during the outage
    _slots(job, start + 5, ".")
    [outage] = metrics.recent_outages.recent()
    # first silent slot to the first reply, wall-clock seconds
    assert (outage.start, outage.end) == (start + 1, pytest.approx(start + 5.005))
    samples = [s for family in registry.collect() if family.name == METRIC
               for s in family.samples]
    assert [(s.labels, s.value) for s in samples] == [
        ({"start": local_iso(outage.start), "end": local_iso(outage.end), "cause": "unknown",
          "detail": "the home router is not known yet, so where it broke is unknown"},
         pytest.approx(4.005))]
    _slots(job, start + 6, "...")
    assert len(metrics.recent_outages.recent()) == 1  # staying up adds nothing


def test_a_second_outage_is_a_second_series():
    metrics = LatencyMetrics(CollectorRegistry())
    job = _job(metrics)
    _slots(job, time.time() - 60, ".xxxx.xxx.")
    assert [round(o.seconds) for o in metrics.recent_outages.recent()] == [3, 4]


def test_promtool_accepts_the_exposition():
    registry = CollectorRegistry()
    outages = RecentOutages()
    RecentOutagesCollector(outages, registry)
    outages.add(time.time() - 100, time.time() - 10)
    checked = subprocess.run(["promtool", "check", "metrics"], input=generate_latest(registry),
                             capture_output=True)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout + checked.stderr == b""
