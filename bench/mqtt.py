"""MQTT publishing (issue 28): what a job run pays to publish, and the daemon's RSS with MQTT
on vs off. A real Mosquitto broker (Debian's) on loopback takes the messages.

- publish cost: `job_ran` as the daemon calls it after each run (builds the state JSON and
  queues it; the sender thread hands it to paho), for a latency run with 3 targets — the mean
  and p99 of the caller's time, and how long the broker took to acknowledge all of them.
- RSS: the daemon with a 1 s latency job for --seconds, without and with `mqtt:`.
Run: .venv/bin/python -m bench.mqtt [--runs 5000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from bench.daemon import rss_mb
from monitor.config import parse
from monitor.mqtt.publisher import MqttPublisher, _settled
from tests.mqtt.cards import built_jobs, cards
from tests.support.mosquitto import broker
from tests.support.procs import daemon, free_port, minimal_config, wait_until, write_config

TARGETS = ["1.1.1.1", "8.8.8.8", "9.9.9.9"]


def latency_summary(i: int) -> dict[str, Any]:
    return {"internet_up": 1, "socket": "raw", "round_seconds": 0.01, "outages": 0,
            "outage_seconds": 0.0,
            "targets": {t: {"avg_ms": 10 + i % 7, "jitter_ms": 0.5, "loss": 0.0, "sent": 15,
                            "received": 15} for t in TARGETS}}


def publish_cost(url: str, state_dir: Path, runs: int) -> None:
    config = parse({"jobs": {"latency": {"targets": TARGETS}},
                    "mqtt": {"url": url, "queue_size": 100_000}}, "bench")
    registry = CollectorRegistry()
    with built_jobs(config, state_dir, registry) as jobs:
        publisher = MqttPublisher(config, registry, cards(jobs))
        publisher.start()
        try:
            publish_runs(publisher, runs)
        finally:
            publisher.stop()


def publish_runs(publisher: MqttPublisher, runs: int) -> None:
    wait_until(lambda: publisher.own.connected._value.get() == 1, 10, what="connected")
    times = []
    started = time.perf_counter()
    for i in range(runs):
        t0 = time.perf_counter()
        publisher.job_ran("latency", "success", latency_summary(i), time.time())
        times.append((time.perf_counter() - t0) * 1e6)
    queued = time.perf_counter() - started
    wait_until(lambda: not publisher._queue and all(
        _settled(info) for info in list(publisher._in_flight)), 120, 0.01,
        what="everything acknowledged")
    drained = time.perf_counter() - started
    times.sort()
    print(f"mqtt publish cost per latency run (3 targets, {runs} runs): mean "
          f"{statistics.fmean(times):.1f} µs, p99 {times[int(len(times) * 0.99)]:.1f} µs in the "
          f"job's thread; {runs * 2} messages queued in {queued:.2f} s, acknowledged by the "
          f"broker after {drained:.2f} s ({runs * 2 / drained:.0f} msg/s)")


def daemon_rss(tmp: Path, seconds: float, mqtt: dict[str, Any] | None) -> float:
    port = free_port()
    config = minimal_config(tmp, port, latency={
        "interval": "1s", "count": 1, "packet_interval": "200ms",
        "targets": [{"host": "127.0.0.1", "internet": True}]})
    config["log"] = {"level": "info", "format": "json"}
    if mqtt:
        config["mqtt"] = mqtt
    path = write_config(tmp / f"bench-{bool(mqtt)}.yml", config)
    with daemon(path, port=port, log_path=tmp / f"daemon-{bool(mqtt)}.log") as proc:
        time.sleep(seconds)
        return rss_mb(proc.pid)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "broker").mkdir()
        with broker(tmp / "broker") as running:
            publish_cost(running.url, tmp, args.runs)
            off = daemon_rss(tmp, args.seconds, None)
            on = daemon_rss(tmp, args.seconds, {"url": running.url})
    print(f"mqtt daemon RSS after {args.seconds:g} s (1 s latency job): off {off:.1f} MB, "
          f"on {on:.1f} MB (+{on - off:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
