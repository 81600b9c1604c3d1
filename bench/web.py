"""Status page cost with a full day of history: p50/p99 of `/` and `/api/status`, daemon RSS.

A real daemon process (`python -m bench.web --serve CONFIG`) is given 24 h of history first:
latency every 15 s for three targets with a few outages, a speed test every hour, iperf every
6 h, air quality every 5 min, fed through the same History.observe the runner results take.
Its own jobs then run on loopback (latency pings 127.0.0.1 and ::1; aqi polls a local stand-in)
while the page is requested. Targets (issue 17): p99 <= 20 ms for both, RSS <= 45 MB.
Run: .venv/bin/python -m bench.web [--requests 300]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import ThreadingHTTPServer
from pathlib import Path

from bench.daemon import EmptyArea, rss_mb
from monitor.history import History
from tests.support.procs import daemon, free_port, minimal_config, write_config

DAY = 24 * 3600


def fill(history: History, now: float, seed: int = 17) -> int:
    """24 h of plausible results; returns how many were fed."""
    rng = random.Random(seed)
    fed = 0
    first = int(now - DAY)
    outages = {first + k * 14400 for k in range(6)}  # every 4 h, a 30 s to 3 min outage
    down_left = 0
    for at in range(first, int(now), 15):
        if at in outages:
            down_left = rng.randint(2, 12)
        down = down_left > 0
        down_left -= down
        targets = {}
        for label, base in (("router", 0.6), ("1.1.1.1", 11.0), ("8.8.8.8", 14.0)):
            internet = label != "router"
            if down and internet:
                targets[label] = {"avg_ms": None, "jitter_ms": None, "loss": 1.0}
                continue
            loss = 0.2 if rng.random() < 0.01 else 0.0
            targets[label] = {"avg_ms": round(base + rng.expovariate(1 / (base * 0.15)), 3),
                              "jitter_ms": round(rng.expovariate(1 / (base * 0.05)), 3),
                              "loss": loss, "sent": 5, "received": 5 - round(loss * 5)}
        history.observe("latency", "success", {"internet_up": 0 if down else 1,
                                               "round_seconds": 1.0, "targets": targets}, at)
        fed += 1
        if (at - first) % 3600 == 0:
            history.observe("bandwidth", "success", {
                "download_mbps": round(rng.gauss(480, 30), 1),
                "upload_mbps": round(rng.gauss(95, 8), 1), "backend": "http",
                "server": "bench"}, at)
        if (at - first) % (6 * 3600) == 1800:
            history.observe("iperf", "success", {
                "server": "bench", "download_bits_per_second": rng.gauss(420e6, 20e6),
                "upload_bits_per_second": rng.gauss(90e6, 5e6)}, at)
        if (at - first) % 300 == 0:
            pm25 = max(1.0, 14 + 10 * rng.random() + 20 * ((at // 3600) % 24 in (7, 8, 18)))
            history.observe("aqi", "success", {"pm25_median": round(pm25, 1),
                                               "pm10_median": round(pm25 * 1.6, 1),
                                               "uk_daqi_worst": 2, "uk_daqi_band": "Low"}, at)
    return fed


def serve(config_path: str) -> int:
    """The daemon, pre-filled (runs in its own process so its RSS is the daemon's)."""
    from monitor import logs
    from monitor.config import load
    from monitor.daemon import Daemon

    config = load(config_path)
    logs.setup(config.log.level, config.log.format)
    instance = Daemon(config)
    fill(instance.history, time.time())
    return instance.run_until_signalled()


def timings(url: str, count: int) -> tuple[float, float, int]:
    latencies, size = [], 0
    for _ in range(count):
        started = time.perf_counter()
        with urllib.request.urlopen(url) as response:
            size = len(response.read())
        latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    return statistics.median(latencies), latencies[int(len(latencies) * 0.99) - 1], size


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", metavar="CONFIG", help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--settle", type=float, default=20, help="seconds before measuring")
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve)
    sensor_api = ThreadingHTTPServer(("127.0.0.1", 0), EmptyArea)
    threading.Thread(target=sensor_api.serve_forever, daemon=True).start()
    port = free_port()
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        config = minimal_config(
            Path(tmp), port,
            latency={"targets": ["127.0.0.1", "::1"], "interval": "15s"},
            aqi={"enabled": True, "interval": "5m", "sensors": [1],
                 "api_url": f"http://127.0.0.1:{sensor_api.server_port}"})
        config["log"] = {"level": "info", "format": "json"}
        path = write_config(Path(tmp) / "bench.yml", config)
        with daemon(path, port=port, log_path=Path(tmp) / "daemon.log",
                    command=[sys.executable, "-m", "bench.web", "--serve", str(path)]) as proc:
            time.sleep(args.settle)
            for name, route in (("page", "/"), ("api", "/api/status")):
                p50, p99, size = timings(f"http://127.0.0.1:{port}{route}", args.requests)
                results |= {f"{name}_p50_ms": round(p50, 2), f"{name}_p99_ms": round(p99, 2),
                            f"{name}_kb": round(size / 1024, 1)}
            results["rss_mb"] = round(rss_mb(proc.pid), 1)
    sensor_api.shutdown()
    print(json.dumps(results, indent=2))
    for key, limit in {"page_p99_ms": 20, "api_p99_ms": 20, "rss_mb": 45}.items():
        print(f"{key}: {results[key]} (target <= {limit}) "
              f"{'OK' if results[key] <= limit else 'OVER'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
