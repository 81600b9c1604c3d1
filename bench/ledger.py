"""The ledger's cost: bytes written per day, report time, the 24 h read, a year's size.

- bytes per day: a day of 1 s probes to three targets (the default target list), a speed test
  an hour and an air-quality mean an hour, through the ledger's API on a simulated clock, the
  writer flushing every write interval; counted as the bytes this process hands to write()
  (/proc/self/io wchar: the WAL appends and the checkpoints into the database file).
- log bytes per day: the daemon's own "job latency success" line, taken from a real
  `home-monitor once latency` run against loopback targets, times the runs a day at the default
  15 s interval; also as Docker's json-file driver stores it (the compose stack).
- report: render_report for a month (three targets' minutes, hourly tests), html/csv/json.
- 24 h read: Reader.series_24h with 30 days in the ledger (what the status page reads).
- a year: every minute of three targets for 365 days, pruned as configured (40 days).
Goals (issue 23): <= 20 MB/day with logs, report <= 1 s, 24 h read p99 <= 20 ms.
Run: .venv/bin/python -m bench.ledger
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from monitor.ledger import AirQualityHour, LatencyMinute, Ledger, Reader, SpeedTestRow
from monitor.ledger.render import render_report
from monitor.ledger.report import Plan
from tests.support.clock import Clock
from tests.support.procs import REPO

DAY = 86400
TARGETS = ("cloudflare", "google", "quad9")
T0 = 1_790_000_000 - 1_790_000_000 % DAY
MB = 1e6


def wchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise RuntimeError("no wchar in /proc/self/io")


def bytes_per_day(write_interval: float) -> tuple[float, float]:
    """(bytes written in a simulated day, seconds of CPU it took)."""
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        clock = Clock(T0)
        ledger = Ledger(Path(tmp) / "ledger.db", write_interval=write_interval, clock=clock)
        ledger.open(start_thread=False)
        ledger.flush()
        before, cpu = wchar(), time.process_time()
        next_flush = T0 + write_interval
        for second in range(DAY):
            at = T0 + second
            for target in TARGETS:
                ledger.record_probe(target, at + 0.1, None if rng.random() < 0.002
                                    else 0.008 + rng.random() * 0.01)
            if second % 3600 == 1800:
                ledger.record_speed_test(SpeedTestRow(at, "bandwidth", "speedtest", "Vodafone",
                                                      9e7, 2e7, 0.011, 150_000_000,
                                                      against_plan=True))
                ledger.record_air_quality_hour(AirQualityHour(at - 1800, "12345", 4.2, 8.1, 12))
            if at >= next_flush:
                clock.now = at
                ledger.flush()
                next_flush += write_interval
        clock.now = T0 + DAY
        ledger.close()
        return wchar() - before, time.process_time() - cpu


def log_line_bytes() -> tuple[int, int]:
    """(bytes of one "job latency success" line, the same line in Docker's json-file log)."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "c.yml"
        targets = [{"host": host, "name": name, "internet": True}
                   for host, name in zip(("127.0.0.1", "127.0.0.2", "::1"), TARGETS,
                                         strict=True)]
        config.write_text(json.dumps({"state_dir": tmp, "jobs": {
            "latency": {"targets": targets}, "bandwidth": {"enabled": False}}}))
        done = subprocess.run([sys.executable, "-m", "monitor", "once", "latency", "--config",
                               str(config)], cwd=REPO, capture_output=True, text=True,
                              timeout=60, check=False)
    line = next(text for text in done.stdout.splitlines() if '"job latency success"' in text)
    docker = json.dumps({"log": line + "\n", "stream": "stdout",
                         "time": "2026-12-06T04:40:00.123456789Z"}) + "\n"
    return len(line) + 1, len(docker)


def seed_month(path: Path, tz: ZoneInfo, days: int, end: float) -> None:
    rng = random.Random(2)
    start = end - days * DAY
    clock = Clock(start - 3600)
    ledger = Ledger(path, clock=clock)
    ledger.open(start_thread=False)
    for minute in range(int(start), int(end), 60):
        for target in TARGETS:
            mean = 0.01 + rng.random() * 0.01
            ledger.record_latency_minute(LatencyMinute(minute, target, 60, 60, mean,
                                                       mean * 1.4, 0.001))
        if minute % 3600 == 0:
            ledger.record_speed_test(SpeedTestRow(minute + 30, "bandwidth", "speedtest", "s",
                                                  rng.uniform(6e7, 1.1e8), 2e7, 0.01, 10**8,
                                                  against_plan=True))
        if minute % DAY == 0:
            clock.now = minute
            ledger.flush()
    clock.now = end
    ledger.close()


def bench_report() -> None:
    tz = ZoneInfo("Europe/London")
    end = datetime(2026, 11, 1, tzinfo=tz).timestamp()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.db"
        seed_month(path, tz, 31, end)
        reader = Reader(path)
        render_report(reader, "2026-10", "json", tz, Plan(100, 20), now=end)  # warm caches
        for fmt in ("html", "csv", "json"):
            times = []
            for _ in range(3):
                began = time.perf_counter()
                _, body = render_report(reader, "2026-10", fmt, tz, Plan(100, 20), now=end)
                times.append(time.perf_counter() - began)
            print(f"report for a month ({len(TARGETS)} targets' minutes, hourly tests), {fmt}: "
                  f"{statistics.median(times) * 1000:.0f} ms (median of 3), "
                  f"{len(body) / 1000:.0f} kB  [goal <= 1000 ms]")
        now = end
        times = []
        for _ in range(300):
            began = time.perf_counter()
            series = reader.series_24h(now)
            times.append(time.perf_counter() - began)
        times.sort()
        print(f"24 h read with 31 days in the ledger ({len(series.latency)} 5-minute slots): "
              f"p50 {times[150] * 1000:.1f} ms, p99 {times[296] * 1000:.1f} ms  "
              f"[goal p99 <= 20 ms]")


def bench_year() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.db"
        clock = Clock(T0)
        ledger = Ledger(path, clock=clock)
        ledger.open(start_thread=False)
        for day in range(365):
            base = T0 + day * DAY
            for minute in range(base, base + DAY, 60):
                for target in TARGETS:
                    ledger.record_latency_minute(LatencyMinute(minute, target, 60, 59, 0.0123,
                                                               0.0187, 0.0011))
            for hour in range(24):
                at = base + hour * 3600
                ledger.record_speed_test(SpeedTestRow(at, "bandwidth", "speedtest", "Vodafone",
                                                      9.1e7, 1.9e7, 0.011, 150_000_000,
                                                      against_plan=True))
                ledger.record_air_quality_hour(AirQualityHour(at, "12345", 4.2, 8.1, 12))
            clock.now = base + DAY
            ledger.flush()
        ledger.close()
        size = sum(p.stat().st_size for p in Path(tmp).glob("ledger.db*"))
        print(f"database after a simulated year (3 targets' minutes kept 40 days, hourly tests "
              f"and air quality kept 400 days): {size / MB:.1f} MB")


def main() -> None:
    line, docker_line = log_line_bytes()
    runs = DAY / 15
    print(f"daemon log: one 'job latency success' line (3 targets) is {line} B, "
          f"{docker_line} B in Docker's json-file log; at the default 15 s interval "
          f"{runs * line / MB:.1f} MB/day on stdout, {runs * docker_line / MB:.1f} MB/day "
          f"in the compose stack (at a 5 s interval: {3 * runs * docker_line / MB:.1f} MB/day)")
    for interval in (30.0, 60.0):
        written, cpu = bytes_per_day(interval)
        print(f"ledger, 1 s probes to 3 targets, writes every {interval:g} s: "
              f"{written / MB:.1f} MB/day written (CPU {cpu:.1f} s per simulated day); "
              f"with the Docker log: {(written + runs * docker_line) / MB:.1f} MB/day  "
              f"[goal <= 20 MB/day]")
    bench_report()
    bench_year()


if __name__ == "__main__":
    main()
