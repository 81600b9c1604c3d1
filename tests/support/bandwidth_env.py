"""Namespace set-up shared by the bandwidth tests and bench/bandwidth.py."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.netns import NetnsPair
from tests.support.procs import REPO, write_config

SERVER_PORT = 8080


def start_server(pair: NetnsPair, *, testlength: int = 10) -> str:
    """tests.support.bandwidth_server in namespace b; returns its base URL."""
    proc = pair.popen_b([sys.executable, "-m", "tests.support.bandwidth_server", "--port",
                         str(SERVER_PORT), "--advertise", pair.ip_b, "--testlength",
                         str(testlength)], cwd=REPO, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != b"ready":
        raise RuntimeError("bandwidth_server did not start")
    return f"http://{pair.ip_b}:{SERVER_PORT}"


def iperf3_mbps(pair: NetnsPair, *, download: bool, seconds: int = 4, streams: int = 4) -> float:
    """Ground truth: iperf3 receiver-side goodput on the same link (server in b)."""
    server = pair.popen_b(["iperf3", "-s", "-1", "-p", "5201"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)  # iperf3 -s needs a moment to listen
        out = pair.run_a(["iperf3", "-c", pair.ip_b, "-t", str(seconds), "-O", "1", "-P",
                          str(streams), "-J", *(["-R"] if download else [])], timeout=seconds + 20)
    finally:
        server.wait(timeout=10)
    return json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"] / 1e6


def bandwidth_config(path: Path, state_dir: Path, base_url: str, ping_target: str, *,
                     backend: str = "http", duration: str = "4s", warmup: str = "1s",
                     io_timeout: str = "2s", timeout: str = "60s", download: bool = True,
                     upload: bool = True, max_bytes: str = "200MB", **extra: Any) -> Path:
    http: dict[str, Any] = {"duration": duration, "warmup": warmup, "io_timeout": io_timeout,
                            "streams": 4, "max_bytes": max_bytes}
    if download:
        http["download_url"] = f"{base_url}/download"
    if upload:
        http["upload_url"] = f"{base_url}/upload"
    bandwidth = {"backend": backend, "timeout": timeout, "speedtest": {"secure": False},
                 "http": http} | extra
    return write_config(path, {
        "state_dir": str(state_dir), "log": {"level": "warning", "format": "json"},
        "jobs": {
            "latency": {"enabled": False, "targets": [{"host": ping_target, "internet": True}]},
            "bandwidth": bandwidth,
        }})


def run_job(pair: NetnsPair, config: Path, modes: list[str], *, control: str | None = None,
            proxy: str | None = None) -> dict[str, Any]:
    """tests.support.bandwidth_runner in namespace a (the measuring side)."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    if proxy:
        env["http_proxy"] = proxy
    cmd = ["ip", "netns", "exec", pair.ns_a, sys.executable, "-m",
           "tests.support.bandwidth_runner", "--config", str(config)]
    if control:
        cmd += ["--control", control]
    done = subprocess.run([*cmd, *modes], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bandwidth_runner failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def sample(doc: dict[str, Any], name: str, **labels: str) -> float | None:
    """The value of one sample in run_job's output, or None if the series is absent."""
    for item in doc["samples"]:
        if item["name"] == name and all(item["labels"].get(k) == v for k, v in labels.items()):
            return float(item["value"])
    return None
