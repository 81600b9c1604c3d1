"""The HTTP backend's pure parts: when a rate is stable, the rate after the warm-up, labels."""

from __future__ import annotations

import pytest

from monitor.config import parse
from monitor.jobs.bandwidth.http import is_stable, rate_after_warmup, server_label
from monitor.jobs.bandwidth.result import BandwidthError


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


def test_io_timeout_is_configurable():
    config = parse({"jobs": {"bandwidth": {"http": {"io_timeout": "3s"}}}}, "t.yml")
    assert config.jobs.bandwidth.http.io_timeout == 3.0
