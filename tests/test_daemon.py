"""The daemon as a whole: schedule, health, shutdown, and a real Prometheus scraping it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from monitor.config import parse
from monitor.daemon import Daemon
from tests.support.fake_jobs import CountingJob, HangingJob
from tests.support.procs import (
    REPO,
    daemon,
    free_port,
    http_get,
    minimal_config,
    prom_query,
    prometheus,
    scrape_config,
    wait_until,
    write_config,
)


def _sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_hanging_job_times_out_while_another_keeps_its_schedule(tmp_path: Path) -> None:
    port = free_port()
    config = parse(minimal_config(
        tmp_path, port, bandwidth={"interval": "1s", "timeout": "300ms"},
        aqi={"enabled": True, "interval": "500ms", "sensors": [1]}), "test")
    hanging = HangingJob("bandwidth", obey_stop=False)
    counting = CountingJob("aqi")
    registry = CollectorRegistry()
    the_daemon = Daemon(config, registry, jobs={"bandwidth": hanging, "aqi": counting})
    the_daemon.start()
    try:
        wait_until(lambda: _sample(registry, "homemon_job_runs_total", job="bandwidth",
                                   result="timeout") >= 1, 10, what="a timeout")
        assert http_get(f"http://127.0.0.1:{port}/healthz")[0] == 503
        assert b"bandwidth" in http_get(f"http://127.0.0.1:{port}/healthz")[1]
        counted_at_stuck = len(counting.runs)
        time.sleep(2.6)
        # 0.5 s interval: about five more runs while bandwidth is stuck
        assert len(counting.runs) - counted_at_stuck >= 4
        gaps = [b - a for a, b in zip(counting.runs, counting.runs[1:], strict=False)]
        assert max(gaps) < 1.0, gaps
        assert _sample(registry, "homemon_job_runs_total", job="bandwidth",
                       result="skipped") >= 1
        hanging.release.set()
        wait_until(lambda: http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200, 5,
                   what="healthy again")
        jobs = {job["name"]: job for job in json.loads(
            http_get(f"http://127.0.0.1:{port}/api/status")[1])["jobs"]}
        assert (jobs["aqi"]["health"], jobs["aqi"]["interval_seconds"]) == ("ok", 0.5)
        assert jobs["bandwidth"]["health"] in ("skipped", "ok")
    finally:
        hanging.release.set()
        the_daemon.stop()


def test_failing_job_is_counted_and_runs_again(tmp_path: Path) -> None:
    config = parse(minimal_config(tmp_path, free_port(), aqi={
        "enabled": True, "interval": "300ms", "sensors": [1]}), "test")
    failing = CountingJob("aqi", fail=True)
    registry = CollectorRegistry()
    the_daemon = Daemon(config, registry, jobs={"aqi": failing})
    the_daemon.start()
    try:
        wait_until(lambda: _sample(registry, "homemon_job_runs_total", job="aqi",
                                   result="failure") >= 3, 10, what="three failures")
    finally:
        the_daemon.stop()
    assert len(failing.runs) >= 3
    assert _sample(registry, "homemon_job_runs_total", job="aqi", result="success") == 0


def test_sigterm_during_a_hanging_job_exits_within_10_s(tmp_path: Path) -> None:
    port = free_port()
    config_path = write_config(tmp_path / "c.yml", minimal_config(
        tmp_path, port, latency={"interval": "1s", "timeout": "60s", "targets": ["127.0.0.1"]}))
    flag = tmp_path / "started"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.hanging_daemon", str(config_path), str(flag)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until(flag.exists, 15, what="the hanging job to start")
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(12)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0
    assert took < 10, took
    output = proc.stdout.read().decode() if proc.stdout else ""
    assert "home-monitor stopped" in output


def test_real_prometheus_scrapes_the_daemon(tmp_path: Path) -> None:
    port = free_port()
    config_path = write_config(tmp_path / "c.yml", minimal_config(tmp_path, port))
    with daemon(config_path, port=port), prometheus(tmp_path, {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [scrape_config("home-monitor", f"127.0.0.1:{port}")],
    }) as url:
        up = wait_until(lambda: prom_query(url, 'up{job="home-monitor"} == 1'), 30,
                        what="up == 1")
        assert up[0]["value"][1] == "1"
        info = wait_until(lambda: prom_query(url, "homemon_build_info"), 10)
        from monitor import __version__
        assert info[0]["metric"]["version"] == __version__


def test_promtool_check_metrics_is_silent(tmp_path: Path) -> None:
    port = free_port()
    config_path = write_config(tmp_path / "c.yml", minimal_config(tmp_path, port, aqi={
        "enabled": True, "sensors": [1], "interval": "1h"}))
    with daemon(config_path, port=port):
        status, body = http_get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    assert b"homemon_build_info" in body
    checked = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True,
                             timeout=30)
    assert checked.returncode == 0, checked
    assert checked.stdout == b"", checked
    assert checked.stderr == b"", checked


def test_run_refuses_a_port_in_use(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config_path = write_config(tmp_path / "c.yml", minimal_config(tmp_path, port))
        result = subprocess.run([sys.executable, "-m", "monitor", "run", "--config",
                                 str(config_path)], capture_output=True, text=True,
                                timeout=30, cwd=REPO, env=os.environ | {"PYTHONPATH": str(REPO)})
    assert result.returncode == 2
    assert f"{config_path}: listen: cannot listen on 127.0.0.1:{port}" in result.stderr
