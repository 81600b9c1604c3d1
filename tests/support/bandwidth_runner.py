"""Runs the bandwidth job the way the daemon does (JobRunner), inside a namespace.

    python -m tests.support.bandwidth_runner --config c.yml --control http://10.77.0.2:8080 \
        ok 403 429

Before each run it puts the stand-in server (`--control`) into that mode and zeroes its
counters; after it, it reads what the server saw. Prints one JSON document: every run's
outcome and server stats, and every homemon_bandwidth_* / homemon_job_runs_total sample.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from monitor.config import load_file
from monitor.jobs.base import JobEnv, build_job
from monitor.metrics import Metrics
from monitor.runner import JobRunner


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - test namespace
        return response.read()


def settled_stats(control: str, timeout: float = 5.0) -> dict[str, Any]:
    """The server's counters once they stop moving (its last acks may still be arriving)."""
    last: dict[str, Any] | None = None
    deadline = time.monotonic() + timeout
    while True:
        stats = json.loads(_get(f"{control}/_stats"))
        stats.pop("requests", None)
        if stats == last or time.monotonic() > deadline:
            return stats
        last = stats
        time.sleep(0.3)


def samples(metrics: Metrics) -> list[dict[str, Any]]:
    out = []
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name.startswith(("homemon_bandwidth_", "homemon_job_runs_total")):
                out.append({"name": sample.name, "labels": sample.labels,
                            "value": sample.value})
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--control", help="base URL of tests.support.bandwidth_server")
    parser.add_argument("modes", nargs="*", default=["ok"])
    args = parser.parse_args()
    config = load_file(args.config)
    metrics = Metrics()
    env = JobEnv(config, metrics, Path(config.state_dir))
    env.state_dir.mkdir(parents=True, exist_ok=True)
    job = build_job("bandwidth", env)
    runner = JobRunner(job, metrics, interval=config.jobs.bandwidth.interval,
                       timeout=config.jobs.bandwidth.timeout, link_lock=threading.Lock(),
                       shutdown=env.shutdown)
    runs = []
    for mode in args.modes:
        if args.control:
            _get(f"{args.control}/_mode?set={mode}")
            _get(f"{args.control}/_reset")
        outcome = runner.run_once()
        runs.append({"mode": mode, "result": outcome.result, "error": outcome.error,
                     "duration": outcome.duration, "summary": outcome.summary,
                     "server": settled_stats(args.control) if args.control else None})
    print(json.dumps({"runs": runs, "samples": samples(metrics)}, default=str))


if __name__ == "__main__":
    main()
