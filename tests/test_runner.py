"""The runner: failures, hard timeouts, stuck jobs, the shared link lock."""

from __future__ import annotations

import threading
import time

from monitor.metrics import Metrics
from monitor.runner import JobRunner
from tests.support.fake_jobs import CountingJob, HangingJob


def _runner(job: object, metrics: Metrics, lock: threading.Lock | None = None, *,
            timeout: float = 0.3, interval: float = 1.0) -> JobRunner:
    return JobRunner(job, metrics, interval=interval, timeout=timeout,  # type: ignore[arg-type]
                     link_lock=lock or threading.Lock(), shutdown=threading.Event())


def runs(metrics: Metrics, job: str, result: str) -> float | None:
    return metrics.registry.get_sample_value("homemon_job_runs_total",
                                             {"job": job, "result": result})


def test_success_sets_last_success_and_summary() -> None:
    metrics = Metrics()
    runner = _runner(CountingJob("aqi"), metrics)
    before = time.time()
    outcome = runner.run_once()
    assert outcome.result == "success"
    assert outcome.summary == {"runs": 1}
    assert runs(metrics, "aqi", "success") == 1
    stamp = metrics.registry.get_sample_value("homemon_job_last_success_timestamp_seconds",
                                              {"job": "aqi"})
    assert stamp is not None
    assert stamp >= before
    assert metrics.registry.get_sample_value("homemon_job_interval_seconds",
                                             {"job": "aqi"}) == 1.0


def test_failure_is_counted_and_the_next_run_happens() -> None:
    metrics = Metrics()
    job = CountingJob("aqi", fail=True)
    runner = _runner(job, metrics)
    first, second = runner.run_once(), runner.run_once()
    assert (first.result, second.result) == ("failure", "failure")
    assert first.error == "RuntimeError: the test asked this job to fail"
    assert len(job.runs) == 2
    assert runs(metrics, "aqi", "failure") == 2
    assert runs(metrics, "aqi", "success") == 0
    assert metrics.registry.get_sample_value("homemon_job_last_success_timestamp_seconds",
                                             {"job": "aqi"}) is None


def test_hang_is_a_timeout_then_skipped_while_stuck_then_runs_again() -> None:
    metrics = Metrics()
    job = HangingJob("latency", obey_stop=False)
    runner = _runner(job, metrics, timeout=0.3)
    started = time.monotonic()
    assert runner.run_once().result == "timeout"
    assert time.monotonic() - started < 1.0
    assert runner.stuck
    assert runner.run_once().result == "skipped"
    assert job.runs == 1
    job.release.set()
    runner.join(2)
    assert not runner.stuck
    job.release.clear()
    assert runner.run_once().result == "timeout"
    assert job.runs == 2
    assert runs(metrics, "latency", "timeout") == 2
    assert runs(metrics, "latency", "skipped") == 1
    job.release.set()


def test_a_job_that_obeys_stop_ends_soon_after_its_timeout() -> None:
    metrics = Metrics()
    job = HangingJob("latency", obey_stop=True)
    runner = _runner(job, metrics, timeout=0.2)
    assert runner.run_once().result == "timeout"
    runner.join(1)
    assert not runner.running


def test_link_jobs_never_overlap() -> None:
    metrics = Metrics()
    lock = threading.Lock()
    holder = HangingJob("iperf", uses_link=True)
    waiter = CountingJob("bandwidth", uses_link=True)
    holder_runner = _runner(holder, metrics, lock, timeout=30)
    waiter_runner = _runner(waiter, metrics, lock, interval=1.0)
    thread = threading.Thread(target=holder_runner.run_once)
    thread.start()
    assert holder.started.wait(5)
    outcome = waiter_runner.run_once()
    assert outcome.result == "skipped"
    assert "another link test" in (outcome.error or "")
    assert waiter.runs == []
    holder.release.set()
    thread.join(5)
    assert waiter_runner.run_once().result == "success"
    assert runs(metrics, "bandwidth", "skipped") == 1


def test_a_job_that_does_not_use_the_link_ignores_the_lock() -> None:
    metrics = Metrics()
    lock = threading.Lock()
    lock.acquire()
    try:
        assert _runner(CountingJob("latency"), metrics, lock).run_once().result == "success"
    finally:
        lock.release()
