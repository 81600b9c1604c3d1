"""Pure parts of the bandwidth job: stability, rates, labels, the usage file, recording."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitor.config import parse
from monitor.jobs.bandwidth import BandwidthJob, record
from monitor.jobs.bandwidth_budget import UsageStore, current_month
from monitor.jobs.bandwidth_http import is_stable, rate_after_warmup, server_label
from monitor.jobs.bandwidth_model import BandwidthError, BandwidthResult, ByteTally
from monitor.jobs.bandwidth_speedtest import _PatternReader
from monitor.jobs.base import JobSkipped
from monitor.metrics import Metrics


def steady(rate: float, seconds: float, step: float = 0.1) -> list[tuple[float, int]]:
    return [(i * step, int(rate * i * step)) for i in range(int(seconds / step) + 1)]


def ramp(seconds: float, step: float = 0.1) -> list[tuple[float, int]]:
    """Throughput doubling every second (slow start)."""
    out, total = [], 0.0
    for i in range(int(seconds / step) + 1):
        t = i * step
        total += 1e6 * 2 ** t * step
        out.append((t, int(total)))
    return out


@pytest.mark.parametrize(("samples", "stable"), [
    ([], False),
    (steady(5e6, 1.0), False),          # not enough history for three windows
    (steady(5e6, 3.2), True),
    (ramp(4.0), False),
    ([(0.0, 0), (1.0, 0), (2.0, 0), (3.0, 0)], False),  # nothing moving is not "stable"
    ([(0.0, 0), (1.0, 100), (2.0, 200), (3.0, 303)], True),   # within 2 %
    ([(0.0, 0), (1.0, 100), (2.0, 200), (3.0, 310)], False),  # 10 % jump
])
def test_is_stable(samples, stable):
    assert is_stable(samples) is stable


def test_rate_after_warmup_ignores_the_warmup():
    samples = [(0.0, 0), (1.0, 10), (2.0, 1010), (4.0, 3010)]
    assert rate_after_warmup(samples, 2.0) == pytest.approx(1000)
    with pytest.raises(BandwidthError):
        rate_after_warmup(samples, 5.0)


@pytest.mark.parametrize(("url", "label"), [
    ("https://user:secret@speed.example.net/100MB.bin?token=abc", "speed.example.net"),
    ("http://10.77.0.2:8080/download", "10.77.0.2:8080"),
    ("http://[fd77::2]:81/x", "[fd77::2]:81"),
])
def test_server_label_has_no_secrets(url, label):
    assert server_label(url) == label


def test_usage_store_keeps_the_month_and_starts_a_new_one(tmp_path: Path):
    store = UsageStore(tmp_path / "usage.json")
    assert store.used("2026-11") == 0
    store.add(1000, "2026-11")
    assert store.add(500, "2026-11") == 1500
    assert UsageStore(tmp_path / "usage.json").used("2026-11") == 1500  # a "restart"
    assert store.used("2026-12") == 0
    assert store.add(7, "2026-12") == 7
    assert json.loads((tmp_path / "usage.json").read_text()) == {"month": "2026-12", "bytes": 7}
    assert list(tmp_path.iterdir()) == [tmp_path / "usage.json"]  # no temp files left


def test_usage_store_survives_a_damaged_file(tmp_path: Path):
    (tmp_path / "usage.json").write_text("{not json")
    store = UsageStore(tmp_path / "usage.json")
    assert store.used() == 0
    assert store.add(10) == 10


def test_current_month_is_utc():
    assert current_month(0) == "1970-01"


def test_record_sets_only_what_was_measured():
    metrics = Metrics(CollectorRegistry())
    record(BandwidthResult(backend="http", server="s", download_bps=5e7, latency_seconds=0.01,
                           loaded_rtt_seconds={"download": 0.06}), metrics.bandwidth)
    get = metrics.registry.get_sample_value
    labels = {"backend": "http", "server": "s"}
    assert get("homemon_bandwidth_download_bits_per_second", labels) == 5e7
    assert get("homemon_bandwidth_upload_bits_per_second", labels) is None  # absent, not 0
    assert get("homemon_bandwidth_loaded_rtt_seconds", {"direction": "download"}) == 0.06
    assert get("homemon_bandwidth_loaded_rtt_seconds", {"direction": "upload"}) is None


class FailingBackend:
    """A backend that moved data, then failed: the job must still charge the bytes."""

    name = "http"

    def measure(self, stop, tally: ByteTally, probe):
        tally.add("download", 4000)
        raise BandwidthError("download: HTTP 403 Forbidden")


def make_job(tmp_path: Path, backend, **bandwidth) -> tuple[BandwidthJob, Metrics]:
    config = parse({"jobs": {"latency": {"targets": [{"host": "10.0.0.1"}]},  # not internet
                             "bandwidth": bandwidth}}, "test.yml")
    metrics = Metrics(CollectorRegistry())
    return BandwidthJob(config.jobs.bandwidth, metrics.bandwidth, state_dir=tmp_path,
                        rtt_targets=config.jobs.latency.targets, backend=backend), metrics


def test_failed_test_charges_its_bytes_and_the_budget_then_skips(tmp_path: Path):
    job, metrics = make_job(tmp_path, FailingBackend(), monthly_data_budget="3KB",
                            plan={"download_mbps": 500, "upload_mbps": 50})
    get = metrics.registry.get_sample_value
    assert get("homemon_bandwidth_plan_bits_per_second", {"direction": "download"}) == 5e8
    assert get("homemon_bandwidth_plan_bits_per_second", {"direction": "upload"}) == 5e7
    with pytest.raises(BandwidthError, match="403"):
        job.run(threading.Event())
    assert get("homemon_bandwidth_bytes_total", {"direction": "download"}) == 4000
    assert get("homemon_bandwidth_bytes_total", {"direction": "upload"}) == 0
    with pytest.raises(JobSkipped, match="budget"):
        job.run(threading.Event())


def test_pattern_reader_streams_a_fixed_length():
    seen = []
    reader = _PatternReader(200_000, seen.append)
    chunks = []
    while chunk := reader.read(65536):
        chunks.append(chunk)
    body = b"".join(chunks)
    assert len(body) == 200_000 == sum(seen)
    assert body.startswith(b"content1=0123456789ABC")
    assert max(len(c) for c in chunks) <= 65536


def test_io_timeout_is_configurable():
    config = parse({"jobs": {"bandwidth": {"http": {"io_timeout": "3s"}}}}, "t.yml")
    assert config.jobs.bandwidth.http.io_timeout == 3.0
