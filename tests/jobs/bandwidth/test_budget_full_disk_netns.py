"""A full state disk: the daemon runs in a private mount namespace (`unshare -m`) with its
state_dir on a tiny tmpfs the test fills, so the usage file cannot be written. The data budget
must still skip the second run, the failure must be counted, and the disk figure must show
the disk full. Also `max_bytes` is held to within 10 % on loopback, counted by the server.

Root is needed for the mount namespace (hence the `netns` marker by file name)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.configschema import ByteSize, Duration
from monitor.jobs.bandwidth.config import HttpSpeedConfig
from monitor.jobs.bandwidth.http import HttpBackend
from monitor.jobs.bandwidth.result import ByteTally
from tests.support.procs import REPO, free_port, http_get, stop_process, wait_until, write_config


@pytest.fixture
def speed_server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.bandwidth_server", "--host",
                             "127.0.0.1", "--port", str(port)], cwd=REPO, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


def _samples(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    status, body = http_get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(body.decode())
            for s in family.samples}


def test_the_budget_holds_on_a_full_disk_across_two_runs(tmp_path: Path,
                                                         speed_server: str) -> None:
    state = tmp_path / "state"
    state.mkdir()
    port = free_port()
    config = write_config(tmp_path / "c.yml", {
        "listen": f"127.0.0.1:{port}", "state_dir": str(state),
        "log": {"level": "info", "format": "json"},
        "jobs": {
            "latency": {"enabled": False, "targets": [{"host": "127.0.0.1", "internet": True}]},
            "iperf": {"enabled": False}, "aqi": {"enabled": False},
            "bandwidth": {"enabled": True, "interval": "3s", "timeout": "30s",
                          "backend": "http", "monthly_data_budget": "1MB",
                          "http": {"download_url": f"{speed_server}/download",
                                   "upload_url": f"{speed_server}/upload", "duration": "1s",
                                   "warmup": "0s", "max_bytes": "4MB"}}}})
    script = (f"mount -t tmpfs -o size=64k tmpfs {shlex.quote(str(state))} && "
              f"(head -c 1M /dev/zero > {shlex.quote(str(state / 'fill'))} 2>/dev/null; true) "
              f"&& exec {shlex.quote(sys.executable)} -m monitor run --config "
              f"{shlex.quote(str(config))}")
    log_path = tmp_path / "daemon.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c",
                                 script], cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        job = frozenset({("job", "bandwidth")})

        def runs(result: str) -> float:
            return _samples(port).get(
                ("homemon_job_runs_total", job | {("result", result)}), 0.0)

        wait_until(lambda: runs("skipped") >= 1, 60, what="a run skipped by the budget")
        samples = _samples(port)
        assert runs("success") == 1  # the first run moved ~4 MB, over the 1 MB budget
        failures = samples[("homemon_state_write_failures_total",
                            frozenset({("file", "bandwidth_usage.json")}))]
        assert failures == 1
        free = samples[("homemon_disk_free_bytes", frozenset({("path", str(state))}))]
        size = samples[("homemon_disk_size_bytes", frozenset({("path", str(state))}))]
        assert size == 64 * 1024
        assert free == 0
        status, body = http_get(f"http://127.0.0.1:{port}/api/status")
        assert status == 200
        assert b"budget" in body
    finally:
        stop_process(proc)
    log = log_path.read_text()
    assert log.count("cannot write the bandwidth usage file") == 1, log
    assert "monthly data budget used up" in log
    assert not (state / "bandwidth_usage.json").exists()  # on the tmpfs, gone with it


@pytest.mark.parametrize("cap_mb", [5, 20])
def test_max_bytes_is_held_within_10_percent(speed_server: str, cap_mb: int) -> None:
    cap = cap_mb * 1_000_000
    config = HttpSpeedConfig(download_url=f"{speed_server}/download",
                             upload_url=f"{speed_server}/upload", streams=4,
                             duration=Duration(10), warmup=Duration(0), max_bytes=ByteSize(cap))
    tally = ByteTally()
    HttpBackend(config).measure(threading.Event(), tally, None)
    with urllib.request.urlopen(f"{speed_server}/_stats", timeout=10) as response:
        stats = json.loads(response.read())
    counted = tally.get("download") + tally.get("upload")
    sent_by_server = stats["written"]
    print(f"max_bytes {cap_mb} MB: counted {counted / 1e6:.2f} MB, server wrote "
          f"{sent_by_server / 1e6:.2f} MB down, read {stats['upload_bytes'] / 1e6:.2f} MB up")
    assert counted <= cap * 1.1
    assert sent_by_server + stats["upload_bytes"] <= cap * 1.1
    assert counted >= cap * 0.5  # on loopback 10 s is far more than the cap takes
