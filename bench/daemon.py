"""Idle daemon footprint: RSS after 60 s, CPU seconds over 60 s, /metrics latency p50/p99.

Jobs point at loopback only: latency pings 127.0.0.1 and ::1 once a second each; aqi polls a local
stand-in of Sensor.Community; bandwidth and iperf are off (they would saturate the link).
Targets (issue 2): RSS <= 45 MB, CPU <= 0.3 s per 60 s, p99 <= 20 ms.
Run: .venv/bin/python -m bench.daemon [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.support.procs import daemon, free_port, minimal_config, write_config

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class EmptyArea(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = b"[]"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--scrapes", type=int, default=200)
    args = parser.parse_args()
    sensor_api = ThreadingHTTPServer(("127.0.0.1", 0), EmptyArea)
    threading.Thread(target=sensor_api.serve_forever, daemon=True).start()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = minimal_config(
            Path(tmp), port,
            latency={"targets": ["127.0.0.1", "::1"], "interval": "15s"},
            aqi={"enabled": True, "interval": "5m", "sensors": [1],
                 "api_url": f"http://127.0.0.1:{sensor_api.server_port}"})
        config["log"] = {"level": "info", "format": "json"}
        path = write_config(Path(tmp) / "bench.yml", config)
        with daemon(path, port=port, log_path=Path(tmp) / "daemon.log") as proc:
            time.sleep(2)  # imports and first runs done
            cpu_start = cpu_seconds(proc.pid)
            time.sleep(args.seconds)
            cpu = cpu_seconds(proc.pid) - cpu_start
            rss = rss_mb(proc.pid)
            latencies = []
            for _ in range(args.scrapes):
                started = time.perf_counter()
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
                    response.read()
                latencies.append((time.perf_counter() - started) * 1000)
            log_lines = (Path(tmp) / "daemon.log").read_text().splitlines()
    sensor_api.shutdown()
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    results = {"idle_seconds": args.seconds, "rss_mb": round(rss, 1),
               "cpu_seconds": round(cpu, 3),
               "cpu_seconds_per_60s": round(cpu * 60 / args.seconds, 3),
               "metrics_p50_ms": round(p50, 2), "metrics_p99_ms": round(p99, 2),
               "job_log_lines": sum('"job run' in line or '"msg": "job ' in line
                                    for line in log_lines)}
    print(json.dumps(results, indent=2))
    targets = {"rss_mb": 45, "cpu_seconds_per_60s": 0.3, "metrics_p99_ms": 20}
    for key, limit in targets.items():
        print(f"{key}: {results[key]} (target <= {limit}) "
              f"{'OK' if results[key] <= limit else 'OVER'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
