"""Status page cost with a full day of history: p50/p99 of `/` and `/api/status`, daemon RSS.

A real daemon process (`python -m bench.web --serve CONFIG`) is given 24 h of history first:
latency every 15 s for three targets with a few outages, a speed test every hour, iperf every
6 h, air quality every 5 min, fed through the same History.observe the runner results take.
Its own jobs then run on loopback stand-ins (latency pings 127.0.0.1 and ::1, one speed test and
one iperf3 test at start-up, aqi polls a local Sensor.Community stand-in) while the page is
requested. Targets (issue 17): p99 <= 20 ms for both, RSS <= 45 MB.
Then /metrics again while 300 idle sockets and 20 slow-header clients are held open (issue 25:
p99 <= 50 ms; monitor/httpserver.py keeps them off the worker threads).
Run: .venv/bin/python -m bench.web [--requests 300]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.daemon import rss_mb
from monitor.history import History
from monitor.jobs.latency.card import LatencyCard
from monitor.jobs.latency.cause import decide
from tests.support.aqi_server import record
from tests.support.procs import (
    REPO,
    daemon,
    free_port,
    minimal_config,
    stop_process,
    write_config,
)
from tests.support.web_abuse import idle_sockets, latencies_ms, slow_clients
from tests.support.web_abuse import p99 as percentile_99

DAY = 24 * 3600


def fill(history: History, now: float, seed: int = 17) -> int:
    """24 h of plausible results; returns how many were fed."""
    rng = random.Random(seed)
    fed = 0
    latency = history.cards.get("latency")  # its outage list is the card's
    first = int(now - DAY)
    outages = {first + k * 14400 for k in range(6)}  # every 4 h, a 30 s to 3 min outage
    down_left, was_down, went_down = 0, False, 0.0
    causes = [decide("192.168.1.1", True, "100.64.0.1", False),  # where each outage broke
              decide("192.168.1.1", False, "100.64.0.1", None),
              decide("192.168.1.1", True, "100.64.0.1", True)]
    for at in range(first, int(now), 15):
        if at in outages:
            down_left = rng.randint(2, 12)
        down = down_left > 0
        down_left -= down
        targets = {}
        for label, base in (("router", 0.6), ("isp", 11.0)):
            internet = label != "router"
            if down and internet:
                targets[label] = {"avg_ms": None, "jitter_ms": None, "loss": 1.0}
                continue
            loss = 0.2 if rng.random() < 0.002 else 0.0
            targets[label] = {"avg_ms": round(base + rng.expovariate(1 / (base * 0.15)), 3),
                              "jitter_ms": round(rng.expovariate(1 / (base * 0.05)), 3),
                              "loss": loss, "sent": 5, "received": 5 - round(loss * 5)}
        if was_down and not down and isinstance(latency, LatencyCard):
            with history.lock:  # what the latency job's outage log would hand over
                cause = causes[len(latency.outages) % len(causes)]
                latency.add_outage(went_down, at, cause.cause, cause.detail)
        if down and not was_down:
            went_down = at
        was_down = down
        path = {"home": {"address": "192.168.1.1", "avg_ms": round(0.4 + rng.random() / 5, 3),
                         "loss": 0.0},
                "isp": {"address": "100.64.0.1", "avg_ms": round(6 + rng.random(), 3),
                        "loss": 0.0}}
        dns = {"system": {"ok": 1, "lookup_ms": round(rng.expovariate(1 / 12), 3),
                          "error": None}}
        history.observe("latency", "success", {"internet_up": 0 if down else 1,
                                               "round_seconds": 1.0, "targets": targets,
                                               "path": path, "dns": dns}, at)
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


def render_costs(config_path: Path, count: int) -> dict[str, float]:
    """In this process, without HTTP: what building `/` (with its cached charts, and with the
    charts rebuilt as after a job run) and `/api/status` costs with the same day of history.
    The HTTP figures include the machine's scheduling noise; /healthz, which does nothing,
    shows that floor."""
    from monitor.config import load
    from monitor.daemon import Daemon

    instance = Daemon(load(str(config_path)))
    instance.server.stop()
    fill(instance.history, time.time())
    costs: dict[str, list[float]] = {"render_page": [], "render_page_new_charts": [],
                                     "render_api": []}
    for _ in range(count):
        for name, call in (("render_page", instance.page.html),
                           ("render_page_new_charts", instance.page.html),
                           ("render_api", instance.page.api)):
            if name == "render_page_new_charts":
                instance.history.version += 1  # what a request pays after a job run
            started = time.perf_counter()
            call()
            costs[name].append((time.perf_counter() - started) * 1000)
    out = {}
    for name, values in costs.items():
        values.sort()
        out[f"{name}_p50_ms"] = round(statistics.median(values), 2)
        out[f"{name}_p99_ms"] = round(values[int(len(values) * 0.99) - 1], 2)
    return out


def timings(url: str, count: int) -> tuple[float, float, int]:
    latencies, size = [], 0
    for _ in range(count):
        started = time.perf_counter()
        with urllib.request.urlopen(url) as response:
            size = len(response.read())
        latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    return statistics.median(latencies), latencies[int(len(latencies) * 0.99) - 1], size


class OneSensor(BaseHTTPRequestHandler):
    """Sensor.Community's /airrohr/v1/sensor/1/: one fresh SDS011 record."""

    def do_GET(self) -> None:  # noqa: N802
        body = json.dumps([record(1, time.time() - 30, {"P1": "24.0", "P2": "11.5"})]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def stand_ins() -> Iterator[dict[str, int]]:
    """Loopback stand-ins: sensor API, HTTP speed server, iperf3 server; yields their ports."""
    sensors = ThreadingHTTPServer(("127.0.0.1", 0), OneSensor)
    threading.Thread(target=sensors.serve_forever, daemon=True).start()
    ports = {"sensors": sensors.server_port, "speed": free_port(), "iperf": free_port()}
    speed = subprocess.Popen([sys.executable, "-m", "tests.support.bandwidth_server", "--host",
                              "127.0.0.1", "--port", str(ports["speed"])], cwd=REPO,
                             stdout=subprocess.PIPE)
    iperf = subprocess.Popen(["iperf3", "-s", "-B", "127.0.0.1", "-p", str(ports["iperf"])],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert speed.stdout is not None
        speed.stdout.readline()  # "ready"
        yield ports
    finally:
        for proc in (speed, iperf):
            stop_process(proc)
        sensors.shutdown()


def bench_config(tmp: Path, port: int, ports: dict[str, int],
                 link_tests: bool = True) -> dict[str, object]:
    """Every job on (iperf with a fixed host, not EC2); link tests once, at start-up. Without
    `link_tests` (for the README picture) bandwidth and iperf stay off: loopback speeds would
    dwarf the day's synthetic ones."""
    local = f"http://127.0.0.1:{ports['speed']}"
    config = minimal_config(
        tmp, port,
        latency={"interval": "15s", "targets": [
            {"host": "127.0.0.1", "name": "router"},
            {"host": "::1", "name": "isp", "internet": True}]},
        bandwidth={"enabled": True, "interval": "1d", "backend": "http",
                   "monthly_data_budget": "50GB",
                   "http": {"download_url": f"{local}/download", "upload_url": f"{local}/upload",
                            "duration": "1s", "warmup": "0s", "max_bytes": "20MB"}},
        iperf={"enabled": True, "interval": "1d", "host": "127.0.0.1", "port": ports["iperf"],
               "duration": "1s", "omit": "0s", "streams": 1},
        aqi={"enabled": True, "interval": "5m", "sensors": [1],
             "api_url": f"http://127.0.0.1:{ports['sensors']}"})
    config["log"] = {"level": "info", "format": "json"}
    if not link_tests:
        for job in ("bandwidth", "iperf"):
            config["jobs"][job]["enabled"] = False  # type: ignore[index]
    return config


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", metavar="CONFIG", help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--settle", type=float, default=20, help="seconds before measuring")
    parser.add_argument("--screenshots", type=Path, help="also save the page as PNGs here "
                        "(headless Chromium at 390 and 1280 px) and /api/status as JSON")
    parser.add_argument("--picture", action="store_true", help="no loopback link tests (for "
                        "the README screenshot; the figures then lack them)")
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve)
    port = free_port()
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, stand_ins() as ports:
        path = write_config(Path(tmp) / "bench.yml", bench_config(
            Path(tmp), port, ports, link_tests=not args.picture))
        with daemon(path, port=port, log_path=Path(tmp) / "daemon.log",
                    command=[sys.executable, "-m", "bench.web", "--serve", str(path)]) as proc:
            time.sleep(args.settle)  # imports, and every job's first run (link tests: ~3 s)
            for name, route in (("page", "/"), ("api", "/api/status"), ("healthz", "/healthz")):
                p50, p99, size = timings(f"http://127.0.0.1:{port}{route}", args.requests)
                results |= {f"{name}_p50_ms": round(p50, 2), f"{name}_p99_ms": round(p99, 2),
                            f"{name}_kb": round(size / 1024, 1)}
            results["rss_mb"] = round(rss_mb(proc.pid), 1)
            metrics_url = f"http://127.0.0.1:{port}/metrics"
            quiet = latencies_ms(metrics_url, args.requests)
            with idle_sockets(port, 300), slow_clients(port, 20):
                abused = latencies_ms(metrics_url, args.requests)
            results |= {"metrics_p50_ms": round(quiet[len(quiet) // 2], 2),
                        "metrics_p99_ms": round(percentile_99(quiet), 2),
                        "metrics_abused_p50_ms": round(abused[len(abused) // 2], 2),
                        "metrics_abused_p99_ms": round(percentile_99(abused), 2)}
            del results["healthz_kb"]
            if args.screenshots:
                from tests.support.web_lab import browse

                seen = browse(f"http://127.0.0.1:{port}/", args.screenshots)
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status") as response:
                    (args.screenshots / "api-status.json").write_bytes(response.read())
                for width, page in seen["widths"].items():
                    print(f"screenshot {width} px: {page['screenshot']}, console: "
                          f"{page['console'] or 'clean'}", file=sys.stderr)
        results |= render_costs(path, args.requests)
    print(json.dumps(results, indent=2))
    for key, limit in {"page_p99_ms": 20, "api_p99_ms": 20, "rss_mb": 45,
                       "metrics_abused_p99_ms": 50}.items():
        print(f"{key}: {results[key]} (target <= {limit}) "
              f"{'OK' if results[key] <= limit else 'OVER'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
