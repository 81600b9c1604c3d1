"""Benchmark of the aqi job. Prints figures; asserts nothing (the goals are in the issue).

1. CPU time to process a 1,000-sensor area response (goal <= 0.2 s): JSON decode, parsing,
   running means, gauges and the state save; on a first response and in the steady state,
   when the means already hold a full day (288 readings per sensor and size).
2. /metrics latency of the real daemon with 200 sensors (goal <= 20 ms p50 and p99), with the
   default scale and with all three; and generate_latest() in-process, for attribution.

Run: .venv/bin/python bench/aqi.py
"""

from __future__ import annotations

import gc
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402

from monitor.jobs.aqi.config import AqiConfig, AreaConfig  # noqa: E402
from monitor.jobs.aqi.job import AqiJob, AqiResult, Source, SourceOutcome  # noqa: E402
from monitor.jobs.aqi.metrics import AqiMetrics  # noqa: E402
from monitor.jobs.aqi.sources import parse_records  # noqa: E402
from tests.support.aqi_server import aqi_server, area_path, record  # noqa: E402
from tests.support.procs import (  # noqa: E402
    daemon,
    free_port,
    http_get,
    minimal_config,
    wait_until,
    write_config,
)

AREA = AreaConfig(latitude=51.5, longitude=-0.12, radius_km=10)


def area_body(sensors: int, now: float, records_per_sensor: int = 2) -> bytes:
    """Like the real area endpoint: the last 5 minutes, so ~2 records per sensor."""
    records = []
    for n in range(sensors):
        for k in range(records_per_sensor):
            records.append(record(10_000 + n, now - 30 - 145 * k,
                                  {"P1": f"{10 + n % 40}.{k}", "P2": f"{5 + n % 20}.{k}"},
                                  location_id=50_000 + n, latitude=f"51.{n:04d}",
                                  longitude=f"-0.{n:04d}"))
    return json.dumps(records).encode()


def process_once(job: AqiJob, body: bytes, now: float) -> tuple[float, float]:
    """CPU seconds for decode+parse+record, and for the state save inside record()."""
    source = Source("area", "bench")
    start = time.process_time()
    parsed = parse_records(json.loads(body))
    result = AqiResult([SourceOutcome(source, parsed)], now)
    save = job.means.save
    saved = [0.0]

    def timed_save() -> None:
        t = time.process_time()
        save()
        saved[0] = time.process_time() - t

    job.means.save = timed_save  # type: ignore[method-assign]
    job.record(result)
    job.means.save = save  # type: ignore[method-assign]
    return time.process_time() - start, saved[0]


def bench_processing(sensors: int = 1000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        now = time.time()
        clock = [now]
        config = AqiConfig(enabled=True, area=AREA, scales=["uk_daqi", "us_epa", "eu_eaqi"])
        job = AqiJob(config, AqiMetrics(CollectorRegistry()), Path(tmp), clock=lambda: clock[0])
        body = area_body(sensors, now)
        print(f"area response: {sensors} sensors, {2 * sensors} records, "
              f"{len(body) / 1e6:.2f} MB of JSON")
        first = [process_once(job, area_body(sensors, now + i), now + i) for i in range(5)]
        total = statistics.median(t for t, _ in first)
        save = statistics.median(s for _, s in first)
        print(f"  first responses:  CPU {total * 1000:.0f} ms per response "
              f"(of which state save {save * 1000:.0f} ms)   goal <= 200 ms")
        # fill a day of history: 288 readings per sensor and size
        for i in range(288):
            ts = now - 86_400 + 300 * i
            for n in range(sensors):
                job.means.add(str(10_000 + n), ts, {"pm2.5": 5.0 + i % 7, "pm10": 9.0 + i % 5})
        clock[0] = now + 300
        steady = [process_once(job, area_body(sensors, now + 300 + i), now + 300 + i)
                  for i in range(5)]
        total = statistics.median(t for t, _ in steady)
        save = statistics.median(s for _, s in steady)
        size = (Path(tmp) / "aqi-means.json").stat().st_size
        print(f"  with a full day of means: CPU {total * 1000:.0f} ms per response "
              f"(of which state save {save * 1000:.0f} ms, state file {size / 1e6:.1f} MB)"
              f"   goal <= 200 ms")


def bench_exposition(sensors: int = 200, rounds: int = 300) -> None:
    """generate_latest() alone, in-process: what /metrics costs before HTTP."""
    with tempfile.TemporaryDirectory() as tmp:
        now = time.time()
        registry = CollectorRegistry()
        config = AqiConfig(enabled=True, area=AREA, scales=["uk_daqi", "us_epa", "eu_eaqi"])
        job = AqiJob(config, AqiMetrics(registry), Path(tmp), clock=lambda: now)
        process_once(job, area_body(sensors, now), now)
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            generate_latest(registry)
            times.append(time.perf_counter() - start)
        times.sort()
        p50, p99 = times[rounds // 2] * 1000, times[int(rounds * 0.99) - 1] * 1000
        print(f"generate_latest in-process, {sensors} sensors, all scales: "
              f"p50 {p50:.1f} ms, p99 {p99:.1f} ms")


def bench_metrics_latency(scales: list[str], sensors: int = 200, scrapes: int = 500) -> None:
    with tempfile.TemporaryDirectory() as tmp, aqi_server() as server:
        tmp_path = Path(tmp)
        now = time.time()
        server.set(area_path(AREA.latitude, AREA.longitude, AREA.radius_km),
                   json.loads(area_body(sensors, now)))
        port = free_port()
        config = minimal_config(tmp_path, port, aqi={
            "enabled": True, "interval": "1h", "api_url": server.url,
            "area": {"latitude": AREA.latitude, "longitude": AREA.longitude,
                     "radius_km": AREA.radius_km},
            "scales": scales})
        config["log"]["level"] = "warning"
        path = write_config(tmp_path / "home-monitor.yml", config)
        with daemon(path, port=port):
            wait_until(lambda: b'sensor="10199"' in http_get(
                f"http://127.0.0.1:{port}/metrics")[1], 30, what="first aqi run")
            # the client's own garbage collector must not show up in the daemon's figures
            gc.collect()
            gc.freeze()
            times = []
            body = b""
            for _ in range(scrapes):
                start = time.perf_counter()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/metrics")
                body = conn.getresponse().read()
                conn.close()
                times.append(time.perf_counter() - start)
        times.sort()
        p50 = times[len(times) // 2] * 1000
        p99 = times[int(len(times) * 0.99) - 1] * 1000
        series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
        print(f"/metrics with {sensors} sensors, scales {'+'.join(scales)} ({series} series, "
              f"{len(body) / 1e3:.0f} kB): "
              f"p50 {p50:.1f} ms, p99 {p99:.1f} ms over {scrapes} scrapes   goal <= 20 ms")


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    bench_processing()
    bench_exposition()
    bench_metrics_latency(["uk_daqi"])
    bench_metrics_latency(["uk_daqi", "us_epa", "eu_eaqi"])
